"""The request metrics report (GET /v1/reports/requests): for the requests received in a range of days, per type,
how many ended in each way, how many are open and past due, and the median and mean days they took to close. It
reads the counters the records' own transactions keep (RequestStore.metrics): one item per day of the range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import get_args

from chatsphere.errors import InvalidInput
from chatsphere.logic.ports import RequestStore
from chatsphere.models.reports import DayCounts, RequestReport, TypeCounts, TypeReport
from chatsphere.models.requests import RequestType

DEFAULT_DAYS = 365  # the last 12 months
MAX_DAYS = 3 * 366  # one answer, not paged: at most 1098 small items


@dataclass(frozen=True)
class ReportsPorts:
    requests: RequestStore


def request_report(
    ports: ReportsPorts, tenant_id: str, today: date, first: date | None = None, last: date | None = None
) -> RequestReport:
    last = last or today
    if first is None:  # a year back, or as far as the calendar goes
        first = last - timedelta(days=DEFAULT_DAYS - 1) if last.toordinal() >= DEFAULT_DAYS else date.min
    if first > last:
        raise InvalidInput("`from` is after `to`")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days")
    days = ports.requests.metrics(tenant_id, first.isoformat(), last.isoformat())
    types = [_type_report(kind, days, today) for kind in get_args(RequestType)]
    return RequestReport(from_day=first, to_day=last, types=types)


def _type_report(kind: str, days: list[DayCounts], today: date) -> TypeReport:
    total = TypeCounts()
    for day in days:
        counts = day.by_type.get(kind)
        if counts is None:
            continue
        total.received += counts.received
        total.close_seconds += counts.close_seconds
        for status, n in counts.closed.items():
            total.closed[status] = total.closed.get(status, 0) + n
        for length, n in counts.close_days.items():
            total.close_days[length] = total.close_days.get(length, 0) + n
        for due, n in counts.open_due.items():
            total.open_due[due] = total.open_due.get(due, 0) + n
    closed = sum(total.closed.values())
    return TypeReport(
        type=kind,
        received=total.received,
        completed=total.closed.get("completed", 0),
        completed_with_exceptions=total.closed.get("completed_with_exceptions", 0),
        rejected=total.closed.get("rejected", 0),
        failed=total.closed.get("failed", 0),
        open=max(0, sum(total.open_due.values())),
        past_due=max(0, sum(n for due, n in total.open_due.items() if due < today.isoformat())),
        median_days_to_close=_median(total.close_days),
        mean_days_to_close=round(total.close_seconds / 86400 / closed, 2) if closed else None,
    )


def _median(histogram: dict[int, int]) -> float | None:
    """The median of the whole days to close, from their histogram (the mean of the two middle ones, if even)."""
    count = sum(histogram.values())
    if count == 0:
        return None
    lengths = sorted(histogram)

    def nth(n: int) -> int:  # the n-th smallest (0-based)
        seen = 0
        for length in lengths:
            seen += histogram[length]
            if n < seen:
                return length
        return lengths[-1]

    return (nth((count - 1) // 2) + nth(count // 2)) / 2
