"""Trend analytics without personal data: each tenant's anonymous aggregates of each day.

A day is computed once, from the day index (the day's buckets and the late bucket's items of that day, never a
Scan), and kept: it outlives the interactions it came from, and computing it again changes nothing. Subjects who
object to `analytics`, and erased subjects, are left out entirely (interactions before the objection too).

No aggregate may single a person out (statistical disclosure control). The attacker knows everything published for
the day, this rule, the fixed turn buckets (TURN_RANGES) and every channel and role name the tenant uses; the rule
is that no published number, nor any sum or difference of them, pins a hidden cell of fewer than k =
`analytics_min_count` subjects (nor any hidden cell to a count below k). Cells are judged by the distinct subjects
they describe, never by their count: forty interactions of one subject are one subject.

1. A day of fewer than k subjects is suppressed whole.
2. by_channel and by_role (interactions): a cell is published under its name only if it describes at least k
   subjects. The others are folded into one cell `other`, never named; while `other` describes fewer than k subjects,
   the smallest named cell is folded into it too (complementary suppression, without naming the complement). So
   every number published describes at least k subjects, a dimension sums to `interactions` (which it would give away
   anyway, so the total stays), and a hidden cell is only ever a part of `other`, a sum of two cells or more whose
   split the day does not say. The dimensions share nothing but that total: an interaction has one channel and one
   role, a conversation may span both, and `subjects` enters no sum.
3. conversation_turns (conversations) is folded the same way, but it also forms a linear system with the totals:
   `interactions` is the sum of every conversation's turns, so Σ n_b = conversations and
   Σ n_b·lo_b <= interactions <= Σ n_b·hi_b over the buckets' fixed ranges, which can pin buckets inside `other`
   (two conversations and three interactions: one of one turn, one of two). So each folding is audited: every bucket
   inside `other` that describes fewer than k subjects or conversations must take another value in some other
   solution of that system; if one does not, the next named bucket is folded; if none is left, `conversations` is
   suppressed (null) with the histogram (empty). `interactions` alone then always has two solutions that differ in
   every such bucket: all conversations single-turn, and (when that is the day) one 2-turn conversation fewer.
Days stored under the earlier rule (suppressed cells named, null) are read in this form (models/analytics.py)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import product

from chatsphere.day_index import DAY_SHARDS, LATE
from chatsphere.errors import InvalidInput
from chatsphere.logic.ports import AnalyticsStore, RetentionStore, TenantDirectory
from chatsphere.models.analytics import OTHER, TURN_RANGES, DailyAggregate, DailyAggregatePage
from chatsphere.models.common import iso
from chatsphere.models.retention import DueEntry, IndexedRef

WATERMARK = "analytics"
PAGE = 1000
MAX_RANGE_DAYS = 366
EXCLUDED_STATUSES = ("erasing", "restricted")  # restricted: kept for a legal hold, stored and not processed
RADIUS = 2  # how far from the truth, in conversations a bucket, the audit looks for a second solution


@dataclass(frozen=True)
class AnalyticsPorts:
    """The ports analytics uses; also what retention's `anonymize` calls (ensure_day)."""

    index: RetentionStore
    store: AnalyticsStore
    tenants: TenantDirectory

    def ensure_day(self, tenant_id: str, day: str, now: datetime) -> None:
        if self.store.get_day(tenant_id, day) is None:
            self.store.put_day(tenant_id, compute_day(self, tenant_id, day, now))


def day_interactions(index: RetentionStore, tenant_id: str, day: str) -> list[DueEntry]:
    """Every interaction that occurred on `day`: its day buckets, and the late bucket's items of that day."""
    end = f"{day}T23:59:59.999999Z"
    found: list[DueEntry] = []
    for bucket, since in ((day, None), (LATE, day)):
        for shard in range(DAY_SHARDS):
            after: IndexedRef | None = None
            while True:
                page, after = index.due(tenant_id, "interactions", bucket, shard, end, after, PAGE, since)
                found.extend(page)
                if after is None:
                    break
    return found


def compute_day(ports: AnalyticsPorts, tenant_id: str, day: str, now: datetime) -> DailyAggregate:
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
    histogram, published_conversations = turn_histogram(
        {b: (len(cs), {e.subject_id for c in cs for e in c}) for b, cs in turns.items()}, k, len(entries), len(subjects)
    )
    return DailyAggregate(
        day=day,
        computed_at=computed_at,
        min_count=k,
        suppressed=False,
        subjects=len(subjects),
        interactions=len(entries),
        conversations=published_conversations,
        by_channel=suppress({c: (len(es), {e.subject_id for e in es}) for c, es in by_channel.items()}, k),
        by_role=suppress({r: (len(es), {e.subject_id for e in es}) for r, es in by_role.items()}, k),
        conversation_turns=histogram,
    )


def _turn_bucket(turns: int) -> str:
    """The TURN_RANGES bucket `turns` falls in."""
    return next(b for b, (lo, hi) in TURN_RANGES.items() if lo <= turns and (hi is None or turns <= hi))


Cells = Mapping[str, tuple[int, Set[str | None]]]
"""A dimension's cells: name -> (count, the distinct subjects it describes)."""


def _foldings(cells: Cells, k: int) -> Iterator[set[str]]:
    """The sets of cells that may be published under their names, most informative first: every cell of at least k
    subjects, then without the smallest of them, and so on down to none; a set is skipped while the cells left for
    `other` describe fewer than k subjects together. A cell really called `other` is always folded."""
    named = sorted(
        (n for n, (_, subjects) in cells.items() if len(subjects) >= k and n != OTHER),
        key=lambda n: (-len(cells[n][1]), -cells[n][0], n),
    )
    for size in range(len(named), -1, -1):
        keep = set(named[:size])
        rest = [cells[n][1] for n in cells if n not in keep]
        if not rest or len(set().union(*rest)) >= k or not keep:
            yield keep


def _publish(cells: Cells, keep: set[str]) -> dict[str, int]:
    published = {n: cells[n][0] for n in sorted(keep)}
    folded = sum(count for n, (count, _) in cells.items() if n not in keep)
    return published | ({OTHER: folded} if folded else {})


def suppress(cells: Cells, k: int) -> dict[str, int]:
    """by_channel, by_role: the cells of at least k subjects by name, the rest in `other` (the module's rule 2)."""
    return _publish(cells, next(_foldings(cells, k)))


def turn_histogram(cells: Cells, k: int, interactions: int, subjects: int) -> tuple[dict[str, int], int | None]:
    """conversation_turns and the `conversations` total to publish with it (the module's rule 3): the most
    informative folding under which no protected bucket inside `other` is pinned; if there is none, neither."""
    counts = {b: cells[b][0] if b in cells else 0 for b in TURN_RANGES}
    for keep in _foldings(cells, k):
        protected = {b for b, (n, s) in cells.items() if b not in keep and (len(s) < k or n < k)}
        if not protected or protected <= _movable(counts, keep, interactions):
            return _publish(cells, keep), sum(counts.values())
    # `conversations` unknown too: "every conversation single-turn" is then a solution (with as many conversations
    # as interactions, at least one a subject), and so, when that is the day, is one 2-turn conversation fewer.
    return {}, None


def _movable(counts: Mapping[str, int], keep: Set[str], interactions: int) -> set[str]:
    """The buckets outside `keep` whose count differs from the true one in some other solution of the published
    system (the `keep` buckets' counts, the total of conversations, interactions = the sum of turns within the
    buckets' ranges), looked for within two conversations a bucket of the truth: a sound test (a bucket returned is
    not pinned); one it misses is treated as pinned, which can only suppress more."""
    free = [b for b in TURN_RANGES if b not in keep]
    moved: set[str] = set()
    for delta in product(range(-RADIUS, RADIUS + 1), repeat=len(free)):
        if sum(delta) or not any(delta) or any(counts[b] + d < 0 for b, d in zip(free, delta, strict=True)):
            continue
        solution = dict(counts) | {b: counts[b] + d for b, d in zip(free, delta, strict=True)}
        if _fewest_turns(solution) <= interactions <= _most_turns(solution):
            moved |= {b for b, d in zip(free, delta, strict=True) if d}
    return moved


def _fewest_turns(counts: Mapping[str, int]) -> int:
    return sum(n * TURN_RANGES[b][0] for b, n in counts.items())


def _most_turns(counts: Mapping[str, int]) -> float:
    most = 0.0
    for b, n in counts.items():
        hi = TURN_RANGES[b][1]
        most += 0 if not n else math.inf if hi is None else n * hi
    return most


# ------------------------------------------------------------------ the daily run
def run_tenant(ports: AnalyticsPorts, tenant_id: str, as_of: datetime, now: datetime) -> list[str]:
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


DEFAULT_RANGE_DAYS = 30  # without `from`: the 30 days up to `to` (without `to`: up to today, UTC)


def daily(
    ports: AnalyticsPorts, tenant_id: str, first: date | None, last: date | None, today: date
) -> DailyAggregatePage:
    """The computed days from `first` to `last`, each as stored (a suppressed day says so, with its threshold)."""
    last = last or today
    first = first or last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if last < first:
        raise InvalidInput("`to` is before `from`")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(f"at most {MAX_RANGE_DAYS} days a call")
    return DailyAggregatePage(items=ports.store.days(tenant_id, first.isoformat(), last.isoformat()))
