"""The hourly watch over rights requests: count the overdue, re-queue exports and deletions whose message was lost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chatsphere.logic.ports import JobQueue, RequestStore
from chatsphere.models.common import iso
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.export import ExportJob

STUCK_AFTER = timedelta(minutes=15)  # a queued export starts within seconds; 15 min means its message is gone


@dataclass(frozen=True)
class MonitorPorts:
    requests: RequestStore
    export_jobs: JobQueue[ExportJob]
    deletion_jobs: JobQueue[DeletionJob]


@dataclass
class MonitorReport:
    open: int = 0
    overdue: int = 0
    overdue_by_type: Counter[str] = field(default_factory=Counter)
    requeued: int = 0


def watch_requests(ports: MonitorPorts, now: datetime) -> MonitorReport:
    report = MonitorReport()
    stamp, stuck_before = iso(now), iso(now - STUCK_AFTER)
    for item in ports.requests.open_requests():
        report.open += 1
        if item.due_at < stamp:
            report.overdue += 1
            report.overdue_by_type[item.type] += 1
        if item.status != "received" or item.received_at >= stuck_before:
            continue
        if item.type == "export":
            ports.export_jobs.send(ExportJob.for_request(item))  # the workers ignore duplicates
            report.requeued += 1
        elif item.type == "deletion":
            ports.deletion_jobs.send(DeletionJob.for_request(item))
            report.requeued += 1
    return report
