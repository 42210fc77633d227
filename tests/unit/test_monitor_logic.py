"""The request monitor over in-memory ports: open and overdue counts, and exports whose job was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatsphere.logic.monitor import STUCK_AFTER, watch_requests
from chatsphere.logic.requests import finish, new_request
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.export import ExportJob
from chatsphere.models.requests import (
    CorrectionDetails,
    DeletionDetails,
    ExportDetails,
    RequestDetails,
    RequestItem,
    RequestStatus,
)
from chatsphere.models.settings import TenantSettings
from tests.unit.fakes import World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = TenantSettings(deadline_days=30)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def tenant(world: World) -> str:
    return world.new_tenant()[0]


def add(
    world: World,
    tenant: str,
    received: datetime,
    details: RequestDetails | None = None,
    status: RequestStatus = "received",
) -> RequestItem:
    item = new_request(SETTINGS, tenant, "u-1", received, details or ExportDetails())
    if status != "received":
        item = item.model_copy(update={"status": status})
    world.requests.create(item)
    return item


def test_nothing_open_reports_nothing_and_queues_nothing(world: World, tenant: str) -> None:
    # Given only finished requests, long overdue by date
    old = add(world, tenant, NOW - timedelta(days=90))
    world.requests.set_status(finish(old, "completed", NOW - timedelta(days=89)), expected_status=("received",))
    # When the monitor runs
    report = watch_requests(world.wiring.monitor, NOW)
    # Then nothing is open or overdue, and nothing is re-queued
    assert (report.open, report.overdue, report.requeued) == (0, 0, 0)
    assert world.export_jobs.sent == []


def test_open_and_overdue_requests_are_counted_by_type_across_tenants(world: World, tenant: str) -> None:
    # Given, over two tenants, open requests past and before their due date, and a closed overdue one
    other = world.new_tenant("Globex")[0]
    overdue_at = NOW - timedelta(days=31)
    add(world, tenant, overdue_at, ExportDetails(), status="in_progress")
    add(world, other, overdue_at, ExportDetails(), status="in_progress")
    add(world, tenant, overdue_at, DeletionDetails(), status="in_progress")
    add(world, tenant, NOW - timedelta(days=29), DeletionDetails(), status="in_progress")
    add(world, tenant, NOW - timedelta(minutes=1), ExportDetails())
    closed = add(world, tenant, overdue_at, CorrectionDetails(fields_changed=[]))
    world.requests.set_status(finish(closed, "completed", overdue_at), expected_status=("received",))
    # When the monitor runs
    report = watch_requests(world.wiring.monitor, NOW)
    # Then five are open, three overdue: two exports and one deletion
    assert report.open == 5
    assert report.overdue == 3
    assert dict(report.overdue_by_type) == {"export": 2, "deletion": 1}


def test_a_request_due_exactly_now_is_not_yet_overdue(world: World, tenant: str) -> None:
    add(world, tenant, NOW - timedelta(days=30), status="in_progress")
    report = watch_requests(world.wiring.monitor, NOW)
    assert (report.open, report.overdue) == (1, 0)
    later = watch_requests(world.wiring.monitor, NOW + timedelta(microseconds=1))
    assert later.overdue == 1


def test_an_export_still_received_past_stuck_after_is_queued_again(world: World, tenant: str) -> None:
    # Given an export received just over STUCK_AFTER ago and never started
    stuck = add(world, tenant, NOW - STUCK_AFTER - timedelta(seconds=1))
    # When the monitor runs
    report = watch_requests(world.wiring.monitor, NOW)
    # Then its job is sent again, with its ids, and the record is untouched
    assert report.requeued == 1
    assert world.export_jobs.sent == [ExportJob(tenant_id=tenant, request_id=stuck.request_id)]
    assert world.requests.get(tenant, stuck.request_id) == stuck


def test_only_stuck_jobs_are_queued_again(world: World, tenant: str) -> None:
    # Given a stuck export, and beside it: a fresh one, one exactly STUCK_AFTER old, a running one,
    # a finished one; and an old deletion still received (its message was lost too)
    old = NOW - STUCK_AFTER - timedelta(hours=1)
    stuck = add(world, tenant, old)
    add(world, tenant, NOW - timedelta(minutes=1))
    add(world, tenant, NOW - STUCK_AFTER)
    add(world, tenant, old, status="in_progress")
    done = add(world, tenant, old)
    world.requests.set_status(finish(done, "completed", old), expected_status=("received",))
    stuck_deletion = add(world, tenant, old, DeletionDetails())
    # When the monitor runs
    report = watch_requests(world.wiring.monitor, NOW)
    # Then only the stuck export and the stuck deletion are re-queued, each on its own queue
    assert report.requeued == 2
    assert world.export_jobs.sent == [ExportJob(tenant_id=tenant, request_id=stuck.request_id)]
    assert world.deletion_jobs.sent == [DeletionJob(tenant_id=tenant, request_id=stuck_deletion.request_id)]
    assert report.open == 5


def test_a_stuck_export_is_queued_again_on_every_run_until_it_starts(world: World, tenant: str) -> None:
    # Given a stuck export
    stuck = add(world, tenant, NOW - timedelta(hours=1))
    # When the monitor runs twice, and then the worker starts the export
    watch_requests(world.wiring.monitor, NOW)
    watch_requests(world.wiring.monitor, NOW + timedelta(minutes=5))
    world.requests.set_status(stuck.model_copy(update={"status": "in_progress"}), expected_status=("received",))
    last = watch_requests(world.wiring.monitor, NOW + timedelta(minutes=10))
    # Then it was sent on each run while received, and not after it started
    assert len(world.export_jobs.sent) == 2
    assert last.requeued == 0
