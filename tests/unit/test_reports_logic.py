"""The request metrics report (logic/reports.py) over the fakes, whose counts are the records themselves: totals per
type and outcome, open and past due against today, the median and mean days to close, the range's bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from chatsphere.errors import InvalidInput
from chatsphere.logic import reports
from chatsphere.models.requests import RequestItem
from tests.unit.fakes import World

DAY0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def record(world: World, tenant: str, n: int, type_: str, status: str, days: float | None, due_in: int = 30) -> None:
    received = DAY0 + timedelta(days=n % 20)
    details = {"deletion": {}, "export": {"format": "json"}, "correction": {"fields_changed": ["name"]}}[type_]
    item = RequestItem.model_validate(
        {
            "tenant_id": tenant,
            "request_id": f"r{n:028x}",
            "type": type_,
            "subject_id": f"u-{n}",
            "status": status,
            "received_at": received.isoformat().replace("+00:00", "Z"),
            "due_at": (received + timedelta(days=due_in)).isoformat().replace("+00:00", "Z"),
            "completed_at": None
            if days is None
            else (received + timedelta(days=days)).isoformat().replace("+00:00", "Z"),
            "details": details,
            "result": {"reason": "x"} if status in ("rejected", "failed") else None,
        }
    )
    world.requests.items[(tenant, item.request_id)] = item


def test_counts_outcomes_open_past_due_and_days_to_close_per_type(world: World, tenant: str) -> None:
    # deletions: closed in 1, 2, 3 and 10 days (one with exceptions), one rejected the same day, two open (one late)
    for n, (status, days) in enumerate(
        [("completed", 1), ("completed", 2), ("completed_with_exceptions", 3), ("completed", 10), ("rejected", 0.5)]
    ):
        record(world, tenant, n, "deletion", status, days)
    record(world, tenant, 10, "deletion", "in_progress", None, due_in=5)  # due 2026-03-16: past due on 04-01
    record(world, tenant, 11, "deletion", "received", None, due_in=60)
    record(world, tenant, 12, "export", "failed", 0.25)
    report = reports.request_report(world.wiring.reports, tenant, date(2026, 4, 1), date(2026, 1, 1), date(2026, 4, 1))
    by_type = {t.type: t for t in report.types}
    deletion = by_type["deletion"]
    assert (deletion.received, deletion.completed, deletion.completed_with_exceptions, deletion.rejected) == (
        7,
        3,
        1,
        1,
    )
    assert (deletion.failed, deletion.open, deletion.past_due) == (0, 2, 1)
    assert deletion.median_days_to_close == 2  # whole days 0, 1, 2, 3, 10
    assert deletion.mean_days_to_close == round((1 + 2 + 3 + 10 + 0.5) / 5, 2)
    export = by_type["export"]
    assert (export.received, export.failed, export.open, export.median_days_to_close) == (1, 1, 0, 0)
    assert by_type["correction"].received == 0 and by_type["correction"].median_days_to_close is None


def test_the_range_is_by_day_of_receipt_and_defaults_to_the_last_twelve_months(world: World, tenant: str) -> None:
    record(world, tenant, 1, "deletion", "completed", 1)  # received 2026-03-02
    only_march_1 = reports.request_report(
        world.wiring.reports, tenant, date(2026, 4, 1), date(2026, 3, 1), date(2026, 3, 1)
    )
    assert sum(t.received for t in only_march_1.types) == 0
    default = reports.request_report(world.wiring.reports, tenant, date(2026, 4, 1))
    assert (default.from_day, default.to_day) == (date(2025, 4, 2), date(2026, 4, 1))
    assert sum(t.received for t in default.types) == 1
    with pytest.raises(InvalidInput):
        reports.request_report(world.wiring.reports, tenant, date(2026, 4, 1), date(2026, 4, 2), date(2026, 4, 1))
    with pytest.raises(InvalidInput):
        reports.request_report(world.wiring.reports, tenant, date(2026, 4, 1), date(2020, 1, 1), date(2026, 4, 1))


def test_an_even_count_takes_the_mean_of_the_two_middle_lengths() -> None:
    assert reports._median({1: 1, 4: 1}) == 2.5
    assert reports._median({2: 3}) == 2
    assert reports._median({}) is None
