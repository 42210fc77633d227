"""The pure parts of analytics and retention: the disclosure rule of a day's aggregate (checked by solving for its
hidden cells), the bucket plan and the watermark rule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatsphere.day_index import DAY_SHARDS
from chatsphere.errors import InvalidInput
from chatsphere.logic.analytics import AnalyticsPorts, aggregate, compute_day, daily, run_tenant, suppress
from chatsphere.logic.retention import buckets, watermark_after
from chatsphere.models.analytics import TURN_BUCKETS, DailyAggregate
from chatsphere.models.common import iso
from chatsphere.models.items import InteractionItem, ProfileItem
from chatsphere.models.retention import DueEntry, IndexedRef, RetentionRunItem
from chatsphere.models.settings import TenantSettings
from tests.unit.fakes import World

OTHER = "other"  # the published name of the folded cells
COMPUTED = "2026-01-02T00:00:00.000000Z"


def entry(subject: str, channel: str | None = "web", conversation: str = "c", role: str = "customer") -> DueEntry:
    return DueEntry(
        ref=IndexedRef(kind="interaction", item_id="i", at="2026-01-01T10:00:00.000000Z", subject_id=subject),
        subject_id=subject,
        channel=channel,
        conversation_id=conversation,
        role=role,
    )


# ------------------------------------------------------------------ the attacker
def turn_range(bucket: str) -> tuple[int, int | None]:
    """A bucket's range of turns, read from its published name ("1", "3-5", "11+") as anyone can."""
    if bucket.endswith("+"):
        return int(bucket[:-1]), None
    lo, _, hi = bucket.partition("-")
    return int(lo), int(hi or lo)


Cells = dict[str, tuple[int, frozenset[str | None]]]


@dataclass(frozen=True)
class Truth:
    """What the day really was, recomputed here from its entries (not by the code under test)."""

    subjects: int
    interactions: int
    conversations: int
    dimensions: dict[str, Cells]


def truth_of(entries: list[DueEntry]) -> Truth:
    channels: dict[str, list[DueEntry]] = defaultdict(list)
    roles: dict[str, list[DueEntry]] = defaultdict(list)
    conversations: dict[str, list[DueEntry]] = defaultdict(list)
    for e in entries:
        channels[e.channel or "none"].append(e)
        roles[e.role or "none"].append(e)
        conversations[e.conversation_id or ""].append(e)
    turns: dict[str, list[DueEntry]] = defaultdict(list)
    bucket_count: dict[str, int] = defaultdict(int)
    for conversation in conversations.values():
        bucket = next(b for b in TURN_BUCKETS if within(len(conversation), turn_range(b)))
        turns[bucket].extend(conversation)
        bucket_count[bucket] += 1

    def cells(groups: Mapping[str, list[DueEntry]], count: Mapping[str, int] | None = None) -> Cells:
        return {n: ((count or {}).get(n, len(es)), frozenset(e.subject_id for e in es)) for n, es in groups.items()}

    return Truth(
        subjects=len({e.subject_id for e in entries}),
        interactions=len(entries),
        conversations=len(conversations),
        dimensions={
            "by_channel": cells(channels),
            "by_role": cells(roles),
            "conversation_turns": cells(turns, bucket_count),
        },
    )


def within(turns: int, bounds: tuple[int, int | None]) -> bool:
    return bounds[0] <= turns and (bounds[1] is None or turns <= bounds[1])


def compositions(low: list[int], total: int) -> Iterator[tuple[int, ...]]:
    """Every tuple of integers >= low (element by element) that sums to `total`."""
    if len(low) <= 1:
        if low and total >= low[0]:
            yield (total,)
        elif not low and total == 0:
            yield ()
        return
    for v in range(low[0], total - sum(low[1:]) + 1):
        for tail in compositions(low[1:], total - v):
            yield (v, *tail)


def histograms(fewest: list[int], low: list[int], turns_left: int) -> Iterator[tuple[int, ...]]:
    """Every tuple of bucket counts >= low whose fewest turns (count x the bucket's `fewest`) fit in `turns_left`."""
    if not low:
        yield ()
        return
    v = low[0]
    while v * fewest[0] <= turns_left:
        for tail in histograms(fewest[1:], low[1:], turns_left - v * fewest[0]):
            yield (v, *tail)
        v += 1


def solve(published: Mapping[str, Any], truth: Truth) -> tuple[dict[tuple[str, str], set[int]], bool]:
    """Every integer solution for the hidden cells of a published (not suppressed) day, as an attacker who knows
    the rule, the bucket ranges and every name the day's cells have (not which of them are in `other`) finds them:
    each hidden cell's set of values across the solutions, and whether the truth is one of them.

    Unknowns: each cell not published under its name. A named null cell is at least 1; a cell absent from a
    dimension with an `other` is at least 0 (`other` holds them), without one it is 0. Equations: by_channel and
    by_role sum to `interactions`; the histogram sums to `conversations` (when published: else it is unknown, and
    at least `subjects` when the day's conversations are that many); the cells inside `other` sum to it (at least 1
    if it is null); and `interactions` lies between the histogram's fewest and most turns."""
    interactions = published["interactions"]
    assert isinstance(interactions, int), "a published day publishes interactions (its dimensions sum to it)"
    values: dict[tuple[str, str], set[int]] = {}
    consistent = True
    for dimension, cells in truth.dimensions.items():
        shown = published[dimension]
        histogram = dimension == "conversation_turns"
        names = list(TURN_BUCKETS) if histogram else sorted(cells)
        true = {n: cells[n][0] if n in cells else 0 for n in names}
        fixed = {n: v for n, v in shown.items() if n != OTHER and isinstance(v, int)}
        folded_open = OTHER in shown or (histogram and published["conversations"] is None)
        unknown = [n for n in names if n not in fixed]
        low = {n: 1 if n in shown else 0 for n in unknown}
        absent = [n for n in unknown if n not in shown]
        lows = [low[n] for n in unknown]
        bounds = {n: turn_range(n) for n in names} if histogram else {}
        fewest_each = [bounds[n][0] for n in unknown] if histogram else []
        most_each = [bounds[n][1] or interactions for n in unknown] if histogram else []  # no conversation has more
        fixed_fewest = sum(v * bounds[n][0] for n, v in fixed.items()) if histogram else 0
        fixed_most = sum(v * (bounds[n][1] or interactions) for n, v in fixed.items()) if histogram else 0
        inside = [i for i, n in enumerate(unknown) if n in absent]
        conversations = published["conversations"]
        if histogram:
            candidates = histograms(fewest_each, lows, interactions - fixed_fewest)
        else:
            candidates = compositions(lows, interactions - sum(fixed.values()))
        found: list[tuple[int, ...]] = []
        for candidate in candidates:
            if not other_fits(sum(candidate[i] for i in inside), shown, folded_open):
                continue
            if histogram:
                most = fixed_most + sum(v * m for v, m in zip(candidate, most_each, strict=True))
                total = sum(fixed.values()) + sum(candidate)
                if most < interactions or not conversations_fit(total, conversations, truth):
                    continue
            found.append(candidate)
        consistent &= tuple(true[n] for n in unknown) in found and all(fixed[n] == true[n] for n in fixed)
        for i, n in enumerate(unknown):
            if true[n]:
                values[(dimension, n)] = {c[i] for c in found}
    return values, consistent


def other_fits(in_other: int, shown: Mapping[str, Any], folded_open: bool) -> bool:
    """The cells a candidate folds into `other`, against what the day shows of it: none when nothing can be folded,
    its value when published, at least one when it is null."""
    if not folded_open and in_other:
        return False
    if isinstance(shown.get(OTHER), int) and in_other != shown[OTHER]:
        return False
    return not (OTHER in shown and shown[OTHER] is None and not in_other)


def conversations_fit(total: int, conversations: int | None, truth: Truth) -> bool:
    if conversations is not None:
        return total == conversations
    # unknown: at least one a subject, if the day's conversations were (an attacker may assume it of those days)
    return truth.conversations < truth.subjects or total >= truth.subjects


def disclosures(published: Mapping[str, Any], truth: Truth, k: int) -> list[str]:
    """What the published day gives away: a name of a cell of fewer than k subjects, and every hidden cell whose
    value all solutions agree on, when it describes fewer than k subjects or that value is below k. Empty: safe."""
    if published["suppressed"]:
        return []
    found = []
    for dimension, shown in truth.dimensions.items():
        for name in published[dimension]:
            if name != OTHER and len(shown[name][1]) < k:
                found.append(f"{dimension}: {name} is named")
    values, consistent = solve(published, truth)
    if not consistent:
        found.append("the truth is not a solution: the attacker's model is wrong")
    for (dimension, name), seen in sorted(values.items()):
        count, subjects = truth.dimensions[dimension][name]
        if len(seen) == 1 and (len(subjects) < k or count < k):
            found.append(f"{dimension}: {name} is pinned to {count}")
    return found


def probe() -> list[DueEntry]:
    """Issue 14's day: six subjects with one web interaction each, one alone on helpline-vip (three turns)."""
    entries = [entry(f"s{n}", conversation=f"c{n}") for n in range(6)]
    return entries + [entry("vip", channel="helpline-vip", conversation="v") for _ in range(3)]


# ------------------------------------------------------------------ the rule
def test_the_probes_day_names_no_small_cell_and_pins_none() -> None:
    day = aggregate("2026-01-01", probe(), 5, COMPUTED)
    assert (day.subjects, day.interactions, day.conversations) == (7, 9, 7)
    assert day.by_channel == {"other": 9}  # helpline-vip is one subject: folded, and web with it, unnamed
    assert day.by_role == {"customer": 9}
    assert day.conversation_turns == {"other": 7}
    assert disclosures(day.model_dump(), truth_of(probe()), 5) == []
    values, _ = solve(day.model_dump(), truth_of(probe()))
    assert values[("conversation_turns", "3-5")] == {0, 1}  # 6 x 1 + 1 x 3, or 5 x 1 + 2 x 2


def test_the_solver_recovers_the_probes_conversation_from_what_was_published_before() -> None:
    # the day as the earlier rule published it (issue 14): the solver must find what the probe found
    before = {
        "suppressed": False,
        "subjects": 7,
        "interactions": 9,
        "conversations": 7,
        "by_channel": {"helpline-vip": None, "web": None},
        "by_role": {"customer": 9},
        "conversation_turns": {"1": None, "3-5": None},
    }
    assert disclosures(before, truth_of(probe()), 5) == [
        "by_channel: helpline-vip is named",
        "conversation_turns: 3-5 is named",
        "conversation_turns: 3-5 is pinned to 1",
    ]


def test_a_cell_of_fewer_subjects_than_k_is_folded_into_other_even_with_many_interactions() -> None:
    cells = {"web": (50, {"a", "b", "c"}), "sms": (40, {"d"})}
    # sms describes one subject: unnamed, and web with it (other alone would be sms)
    assert suppress(cells, 3) == {"other": 90}


def test_other_takes_the_smallest_named_cells_only_until_it_describes_k_subjects() -> None:
    cells = {
        "web": (9, {"a", "b", "c", "d"}),
        "email": (5, {"e", "f", "g"}),
        "sms": (1, {"h"}),
        "fax": (2, {"i"}),
    }
    # sms and fax: 2 subjects < 3, so the smallest named cell (email) joins them: 5 subjects
    assert suppress(cells, 3) == {"other": 8, "web": 9}
    assert suppress({"web": (9, {"a", "b", "c"})}, 3) == {"web": 9}
    # small cells that together describe k subjects are published as other, alone
    assert suppress({"web": (9, {"a", "b", "c"}), "sms": (2, {"d", "e"}), "fax": (1, {"f"})}, 3) == {
        "other": 3,
        "web": 9,
    }
    # a channel really called "other" is part of other, never a named cell beside it
    assert suppress({"web": (9, {"a", "b", "c"}), "other": (4, {"d", "e", "f"})}, 3) == {"other": 4, "web": 9}


def test_a_day_of_fewer_than_k_subjects_is_suppressed_whole() -> None:
    day = aggregate("2026-01-01", [entry("a"), entry("b")], 3, COMPUTED)
    assert day.suppressed and day.subjects is None and day.by_channel == {}


def test_a_day_counts_interactions_conversations_and_turns() -> None:
    entries = [entry(s, conversation=f"c-{s}") for s in "abc"] + [entry("a", conversation="c-a", role="agent")]
    entries += [entry(s, channel=None, conversation="shared") for s in "abc"]
    day = aggregate("2026-01-01", entries, 3, COMPUTED)
    assert (day.subjects, day.interactions, day.conversations) == (3, 7, 4)
    assert day.by_channel == {"none": 3, "web": 4}
    assert day.by_role == {"other": 7}  # agent: one subject; customer folded with it
    # "1" (b, c) and "2" (a) fold into other (3 subjects); 3 conversations in 4 turns: 3 x 1 + ... or 2 x 1 + 1 x 2
    assert day.conversation_turns == {"3-5": 1, "other": 3}
    assert disclosures(day.model_dump(), truth_of(entries), 3) == []


def test_a_histogram_the_totals_would_solve_folds_the_next_bucket() -> None:
    # five 1-turn conversations, one of 2 turns (subject x), one of 3 (subject y); k = 2: other = {2, 3-5} describes
    # 2 subjects, but two conversations with 10 - 5 = 5 turns are 2 + 3 only: "1" is folded too
    entries = [entry(f"s{n}", conversation=f"c{n}") for n in range(5)]
    entries += [entry("x", conversation="x") for _ in range(2)] + [entry("y", conversation="y") for _ in range(3)]
    day = aggregate("2026-01-01", entries, 2, COMPUTED)
    assert day.conversation_turns == {"other": 7} and day.conversations == 7
    assert disclosures(day.model_dump(), truth_of(entries), 2) == []
    pinned = day.model_dump() | {"conversation_turns": {"1": 5, "other": 2}}
    assert disclosures(pinned, truth_of(entries), 2) == [
        "conversation_turns: 2 is pinned to 1",
        "conversation_turns: 3-5 is pinned to 1",
    ]


def test_when_even_the_total_of_conversations_would_pin_one_it_goes_with_the_histogram() -> None:
    # two conversations and three interactions: one of 1 turn (a), one of 2 (b, agent c): with `conversations`
    # published, the histogram is pinned whatever it shows
    entries = [entry("a", conversation="1"), entry("b", conversation="2"), entry("c", conversation="2", role="agent")]
    day = aggregate("2026-01-01", entries, 2, COMPUTED)
    assert day.conversations is None and day.conversation_turns == {}
    assert (day.subjects, day.interactions) == (3, 3)
    assert disclosures(day.model_dump(), truth_of(entries), 2) == []
    assert disclosures(day.model_dump() | {"conversations": 2}, truth_of(entries), 2) != []


@st.composite
def days(draw: st.DrawFn) -> tuple[int, list[DueEntry]]:
    """A day of a few subjects, a few conversations each (now and then one shared with other subjects), of 1 to 12
    turns, on common and rare channels, by every role."""
    k = draw(st.integers(2, 5))
    entries = []
    for s in range(draw(st.integers(k - 1, k + 6))):
        for c in range(draw(st.integers(1, 3))):
            conversation = draw(st.sampled_from([f"{s}-{c}"] * 4 + ["shared-1", "shared-2"]))
            turns = draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4, 5, 7, 12]))
            channel = draw(st.sampled_from(["web", "web", "web", "sms", "helpline-vip", None]))
            roles = draw(st.sampled_from(["customer", "customer agent", "customer bot agent", "agent"])).split()
            for turn in range(turns):
                entries.append(
                    entry(f"u{s}", channel=channel, conversation=conversation, role=roles[turn % len(roles)])
                )
    return k, entries[:28]  # small enough for the solver to enumerate every solution


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(days())
@example((5, probe()))
def test_no_day_names_a_small_cell_or_lets_its_published_numbers_pin_a_hidden_one(
    day: tuple[int, list[DueEntry]],
) -> None:
    """Asserts, for each day: no published name (but `other`) is a cell of fewer than k subjects; the truth is among
    the integer solutions of everything published; and no hidden cell's value is pinned to a value below k, nor a
    hidden cell of fewer than k subjects pinned at all (for every such cell, its set of values across all solutions
    is not a single value)."""
    k, entries = day
    published = aggregate("2026-01-01", entries, k, COMPUTED)
    assert disclosures(published.model_dump(), truth_of(entries), k) == []


def test_a_day_stored_under_the_earlier_rule_is_read_without_its_small_cells_names() -> None:
    stored = {
        "day": "2026-01-01",
        "computed_at": COMPUTED,
        "min_count": 5,
        "suppressed": False,
        "subjects": 7,
        "interactions": 9,
        "conversations": 7,
        "by_channel": {"helpline-vip": None, "web": None},
        "by_role": {"customer": 9},
        "conversation_turns": {"1": None, "3-5": None},
    }
    day = DailyAggregate.model_validate(stored)
    assert day.by_channel == {"other": 9} and day.by_role == {"customer": 9}
    assert day.conversation_turns == {} and day.conversations is None
    assert disclosures(day.model_dump(), truth_of(probe()), 5) == []
    whole = {**stored, "suppressed": True, "subjects": None, "interactions": None, "conversations": None}
    whole |= {"by_channel": {}, "by_role": {}, "conversation_turns": {}}
    assert DailyAggregate.model_validate(whole).model_dump() == whole


def run(**cutoffs: str) -> RetentionRunItem:
    return RetentionRunItem(
        tenant_id="t",
        run_id="r",
        as_of="2026-03-10T12:00:00.000000Z",
        started_at="2026-03-10T12:00:00.000000Z",
        cutoffs=cutoffs,
        from_days=dict.fromkeys(cutoffs, "2026-03-01"),
    )


def test_a_run_reads_each_day_after_the_watermark_through_the_cutoffs_day_then_the_late_bucket() -> None:
    plan = buckets(run(interactions="2026-03-04T08:00:00.000000Z"), "interactions")
    days = [day for day, _ in plan]
    assert days == [d for d in ("2026-03-02", "2026-03-03", "2026-03-04", "late") for _ in range(DAY_SHARDS)]
    assert [s for _, s in plan[:DAY_SHARDS]] == list(range(DAY_SHARDS))
    # a cutoff before the watermark: the late bucket only
    assert {d for d, _ in buckets(run(interactions="2026-02-01T00:00:00.000000Z"), "interactions")} == {"late"}


def test_the_watermark_stops_before_the_cutoffs_day_and_two_days_short_of_now() -> None:
    r = run(interactions="2026-03-04T08:00:00.000000Z")
    assert watermark_after(r, "interactions", datetime(2026, 3, 10, tzinfo=UTC)) == "2026-03-03"
    # an as_of in the future: never past two days before now, where today's interactions are still filed
    assert watermark_after(r, "interactions", datetime(2026, 3, 4, tzinfo=UTC)) == "2026-03-02"
    assert watermark_after(r, "interactions", datetime(2026, 3, 2, tzinfo=UTC)) is None


# ------------------------------------------------------------------ the daily run, over the fakes
TODAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class Calendar:
    world: World
    analytics: AnalyticsPorts
    tenant: str

    def say(self, subject: str, occurred: str, received: str | None = None, channel: str = "web") -> None:
        if (self.tenant, subject) not in self.world.subjects.profiles:
            profile = ProfileItem(tenant_id=self.tenant, subject_id=subject, created_at=occurred, updated_at=occurred)
            self.world.subjects.save_profile(profile, None)
        n = sum(len(v) for v in self.world.subjects.interactions.values())
        item = InteractionItem(
            tenant_id=self.tenant,
            subject_id=subject,
            interaction_id=f"i{n:04d}",
            conversation_id=f"c-{subject}",
            role="customer",
            channel=channel,
            occurred_at=occurred,
            received_at=received or occurred,
            text_bytes=1,
            text_sealed=b"sealed",
        )
        self.world.subjects.add_interaction(item)

    def stored(self) -> dict[str, int | None]:
        return {d.day: d.interactions for d in self.analytics.store.days(self.tenant, "2000-01-01", "2100-01-01")}


@pytest.fixture
def cal() -> Calendar:
    world = World()
    tenant = world.new_tenant()[0]
    world.tenants.tenants[tenant] = world.tenants.tenants[tenant].model_copy(
        update={"created_at": "2026-03-07T09:00:00.000000Z"}
    )
    world.tenants.settings[tenant] = TenantSettings(analytics_min_count=2)
    return Calendar(world, world.wiring.analytics, tenant)


def test_the_first_run_stores_each_day_since_the_tenant_began_once_and_the_next_only_the_new_day(cal: Calendar) -> None:
    for subject in ("u-1", "u-2"):
        cal.say(subject, "2026-03-08T10:00:00.000000Z")
    cal.say("u-1", "2026-03-09T10:00:00.000000Z")
    stored = run_tenant(cal.analytics, cal.tenant, TODAY, TODAY)
    assert stored == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert cal.analytics.index.watermark(cal.tenant, "analytics") == "2026-03-09"
    assert cal.stored() == {"2026-03-07": None, "2026-03-08": 2, "2026-03-09": None}  # fewer than k: suppressed
    (day,) = cal.analytics.store.days(cal.tenant, "2026-03-08", "2026-03-08")
    assert (day.subjects, day.by_channel, day.computed_at) == (2, {"web": 2}, iso(TODAY))
    # an interaction of a stored day changes nothing; the next run computes the next day alone
    cal.say("u-2", "2026-03-09T11:00:00.000000Z")
    cal.say("u-2", "2026-03-10T11:00:00.000000Z")
    tomorrow = TODAY + timedelta(days=1)
    assert run_tenant(cal.analytics, cal.tenant, tomorrow, tomorrow) == ["2026-03-10"]
    assert cal.stored()["2026-03-09"] is None and cal.analytics.index.watermark(cal.tenant, "analytics") == "2026-03-10"


def test_a_back_fill_computes_its_missing_day_and_leaves_the_watermark(cal: Calendar) -> None:
    cal.analytics.index.advance_watermark(cal.tenant, "analytics", "2026-03-09")
    for subject in ("u-1", "u-2"):
        cal.say(subject, "2026-03-05T10:00:00.000000Z")
    assert run_tenant(cal.analytics, cal.tenant, datetime(2026, 3, 6, tzinfo=UTC), TODAY) == ["2026-03-05"]
    assert run_tenant(cal.analytics, cal.tenant, datetime(2026, 3, 6, tzinfo=UTC), TODAY) == []  # stored once
    assert cal.stored() == {"2026-03-05": 2}
    assert cal.analytics.index.watermark(cal.tenant, "analytics") == "2026-03-09"


def test_a_day_counts_its_late_bucket_items_and_leaves_out_objecting_and_erased_subjects(cal: Calendar) -> None:
    day = "2026-03-08"
    for subject in ("u-1", "u-2", "objects", "erasing"):
        cal.say(subject, f"{day}T10:00:00.000000Z")
    cal.say("u-3", f"{day}T11:00:00.000000Z", received="2026-03-10T11:00:00.000000Z")  # back-dated: late bucket
    cal.say("u-3", "2026-03-07T11:00:00.000000Z", received="2026-03-10T11:00:00.000000Z")  # late, another day
    profiles = cal.world.subjects.profiles
    objecting = profiles[(cal.tenant, "objects")]
    profiles[(cal.tenant, "objects")] = objecting.model_copy(update={"objections": {"analytics": iso(TODAY)}})
    profiles[(cal.tenant, "erasing")] = profiles[(cal.tenant, "erasing")].model_copy(update={"status": "erasing"})
    aggregate_ = compute_day(cal.analytics, cal.tenant, day, TODAY)
    assert (aggregate_.subjects, aggregate_.interactions) == (3, 3)
    # ensure_day (what anonymize calls) stores it once, as first computed
    cal.analytics.ensure_day(cal.tenant, day, TODAY)
    cal.say("u-4", f"{day}T12:00:00.000000Z", received=f"{day}T12:00:00.000000Z")
    cal.analytics.ensure_day(cal.tenant, day, TODAY + timedelta(hours=1))
    assert cal.stored() == {day: 3}


def test_daily_reads_the_stored_days_of_a_range_of_at_most_366(cal: Calendar) -> None:
    for subject in ("u-1", "u-2"):
        cal.say(subject, "2026-03-08T10:00:00.000000Z")
    run_tenant(cal.analytics, cal.tenant, TODAY, TODAY)
    today = date(2026, 3, 9)
    page = daily(cal.analytics, cal.tenant, date(2026, 3, 8), date(2026, 3, 9), today)
    assert [(d.day, d.interactions) for d in page.items] == [("2026-03-08", 2), ("2026-03-09", None)]
    # without a range: the 30 days up to today; without `from`: the 30 days up to `to`
    default = daily(cal.analytics, cal.tenant, None, None, today)
    assert default == daily(cal.analytics, cal.tenant, date(2026, 2, 8), today, today)
    assert [d.day for d in default.items][-2:] == ["2026-03-08", "2026-03-09"]
    up_to = daily(cal.analytics, cal.tenant, None, date(2026, 4, 6), today)
    assert up_to == daily(cal.analytics, cal.tenant, date(2026, 3, 8), date(2026, 4, 6), today)
    assert up_to.items[0].day == "2026-03-08"
    with pytest.raises(InvalidInput):
        daily(cal.analytics, cal.tenant, date(2026, 3, 9), date(2026, 3, 8), today)
    with pytest.raises(InvalidInput):
        daily(cal.analytics, cal.tenant, date(2025, 3, 8), date(2026, 3, 9), today)
    with pytest.raises(InvalidInput):
        daily(cal.analytics, cal.tenant, date(2025, 3, 8), None, today)
