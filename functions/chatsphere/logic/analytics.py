"""Trend analytics without personal data: each tenant's anonymous aggregates of each day.

A day is computed once, from the day index (the day's buckets and the late bucket's items of that day, never a
Scan), and kept: it outlives the interactions it came from, and computing it again changes nothing. Subjects who
object to `analytics`, and erased subjects, are left out entirely (interactions before the objection too).

No aggregate may single a person out: a cell describing fewer than the tenant's `analytics_min_count` distinct
subjects is suppressed (null), and so is the smallest other cell of its dimension while the suppressed cells
together describe fewer than that (so that the total minus the published cells does not reveal them); a day with
fewer subjects than that is suppressed whole."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from chatsphere.dal.keyspace import DAY_SHARDS, LATE
from chatsphere.errors import InvalidInput
from chatsphere.logic.ports import TenantStore
from chatsphere.logic.retention import RetentionStore
from chatsphere.models.analytics import DailyAggregate, DailyAggregatePage
from chatsphere.models.common import iso
from chatsphere.models.retention import DueEntry

WATERMARK = "analytics"
PAGE = 1000
MAX_RANGE_DAYS = 366
EXCLUDED_STATUSES = ("erasing", "restricted")  # restricted: kept for a legal hold, stored and not processed


class AnalyticsStore(Protocol):
    def profiles(self, tenant_id: str, subject_ids: list[str]) -> dict[str, tuple[str, list[str]]]: ...

    def get_day(self, tenant_id: str, day: str) -> DailyAggregate | None: ...

    def put_day(self, tenant_id: str, aggregate: DailyAggregate) -> bool: ...

    def days(self, tenant_id: str, first: str, last: str) -> list[DailyAggregate]: ...


@dataclass(frozen=True)
class Analytics:
    """The ports analytics uses; also what retention's `anonymize` calls (ensure_day)."""

    index: RetentionStore
    store: AnalyticsStore
    tenants: TenantStore

    def ensure_day(self, tenant_id: str, day: str, now: datetime) -> None:
        if self.store.get_day(tenant_id, day) is None:
            self.store.put_day(tenant_id, compute_day(self, tenant_id, day, now))


def day_interactions(index: RetentionStore, tenant_id: str, day: str) -> list[DueEntry]:
    """Every interaction that occurred on `day`: its day buckets, and the late bucket's items of that day."""
    end = f"{day}T23:59:59.999999Z"
    found: list[DueEntry] = []
    for bucket, since in ((day, None), (LATE, day)):
        for shard in range(DAY_SHARDS):
            start: dict[str, str] | None = None
            while True:
                page, start = index.due(tenant_id, "interactions", bucket, shard, end, start, PAGE, since)
                found.extend(page)
                if start is None:
                    break
    return found


def compute_day(ports: Analytics, tenant_id: str, day: str, now: datetime) -> DailyAggregate:
    entries = day_interactions(ports.index, tenant_id, day)
    profiles = ports.store.profiles(tenant_id, sorted({e.subject_id for e in entries if e.subject_id}))
    counted = [
        e
        for e in entries
        if e.subject_id in profiles
        and profiles[e.subject_id][0] not in EXCLUDED_STATUSES
        and "analytics" not in profiles[e.subject_id][1]
    ]
    k = ports.tenants.get_settings(tenant_id).analytics_min_count
    return aggregate(day, counted, k, iso(now))


def aggregate(day: str, entries: list[DueEntry], k: int, computed_at: str) -> DailyAggregate:
    subjects = {e.subject_id for e in entries}
    if len(subjects) < k:
        return DailyAggregate(
            day=day,
            computed_at=computed_at,
            min_count=k,
            suppressed=True,
            subjects=None,
            interactions=None,
            conversations=None,
            by_channel={},
            by_role={},
            conversation_turns={},
        )
    by_channel: dict[str, list[DueEntry]] = defaultdict(list)
    by_role: dict[str, list[DueEntry]] = defaultdict(list)
    conversations: dict[str, list[DueEntry]] = defaultdict(list)
    for e in entries:
        by_channel[e.channel or "none"].append(e)
        by_role[e.role or "none"].append(e)
        conversations[e.conversation_id or ""].append(e)
    turns: dict[str, list[list[DueEntry]]] = defaultdict(list)
    for conversation in conversations.values():
        turns[_turn_bucket(len(conversation))].append(conversation)
    return DailyAggregate(
        day=day,
        computed_at=computed_at,
        min_count=k,
        suppressed=False,
        subjects=len(subjects),
        interactions=len(entries),
        conversations=len(conversations),
        by_channel=suppress({c: (len(es), {e.subject_id for e in es}) for c, es in by_channel.items()}, k),
        by_role=suppress({r: (len(es), {e.subject_id for e in es}) for r, es in by_role.items()}, k),
        conversation_turns=suppress(
            {b: (len(cs), {e.subject_id for c in cs for e in c}) for b, cs in turns.items()}, k
        ),
    )


def _turn_bucket(turns: int) -> str:
    """One of TURN_BUCKETS."""
    if turns <= 2:
        return str(turns)
    return "3-5" if turns <= 5 else "6-10" if turns <= 10 else "11+"


def suppress(cells: Mapping[str, tuple[int, Set[str | None]]], k: int) -> dict[str, int | None]:
    """Counts of the cells that describe at least k distinct subjects; the rest null (see the module's note)."""
    hidden = {name for name, (_, subjects) in cells.items() if len(subjects) < k}

    def hidden_subjects() -> int:
        return len(set().union(*(cells[name][1] for name in hidden))) if hidden else 0

    while hidden and hidden_subjects() < k and len(hidden) < len(cells):
        shown = sorted((len(cells[n][1]), cells[n][0], n) for n in cells if n not in hidden)
        hidden.add(shown[0][2])
    return {name: None if name in hidden else count for name, (count, _) in sorted(cells.items())}


# ------------------------------------------------------------------ the daily run
def run_tenant(ports: Analytics, tenant_id: str, as_of: datetime, now: datetime) -> list[str]:
    """Compute every day after the tenant's analytics watermark up to the day before `as_of` (a back-fill with an
    earlier `as_of` computes that day if it is missing). Returns the days it stored."""
    last = (as_of.date() - timedelta(days=1)).isoformat()
    through = ports.index.watermark(tenant_id, WATERMARK)
    if through is None:  # the first run: from the day the tenant was created
        tenant = ports.tenants.get_tenant(tenant_id)
        first = min(tenant.created_at[:10], last) if tenant else last
    elif through >= last:  # a back-fill: that one day
        first = last
    else:
        first = (date.fromisoformat(through) + timedelta(days=1)).isoformat()
    stored = []
    day = date.fromisoformat(first)
    while day.isoformat() <= last:
        missing = ports.store.get_day(tenant_id, day.isoformat()) is None
        if missing and ports.store.put_day(tenant_id, compute_day(ports, tenant_id, day.isoformat(), now)):
            stored.append(day.isoformat())
        day += timedelta(days=1)
    if through is None or last > through:
        ports.index.advance_watermark(tenant_id, WATERMARK, last)
    return stored


def daily(ports: Analytics, tenant_id: str, first: date, last: date) -> DailyAggregatePage:
    if last < first:
        raise InvalidInput("`to` is before `from`")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(f"at most {MAX_RANGE_DAYS} days a call")
    return DailyAggregatePage(items=ports.store.days(tenant_id, first.isoformat(), last.isoformat()))
