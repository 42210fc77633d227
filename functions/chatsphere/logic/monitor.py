"""The hourly watch over rights requests: count the overdue, re-queue exports whose message was lost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chatsphere.logic.export import export_job
from chatsphere.logic.ports import JobQueue, RequestStore
from chatsphere.models.common import iso
from chatsphere.models.export import ExportJob

STUCK_AFTER = timedelta(minutes=15)  # a queued export starts within seconds; 15 min means its message is gone


@dataclass
class MonitorReport:
    open: int = 0
    overdue: int = 0
    overdue_by_type: Counter[str] = field(default_factory=Counter)
    requeued: int = 0


def watch_requests(requests: RequestStore, export_jobs: JobQueue[ExportJob], now: datetime) -> MonitorReport:
    report = MonitorReport()
    stamp, stuck_before = iso(now), iso(now - STUCK_AFTER)
    for item in requests.open_requests():
        report.open += 1
        if item.due_at < stamp:
            report.overdue += 1
            report.overdue_by_type[item.type] += 1
        if item.type == "export" and item.status == "received" and item.received_at < stuck_before:
            export_jobs.send(export_job(item))  # the worker ignores duplicates
            report.requeued += 1
    return report
