"""The pure parts of analytics and retention: suppression of small cells, a day's aggregate, the bucket plan and
the watermark rule."""

from __future__ import annotations

from datetime import UTC, datetime

from chatsphere.dal.keyspace import DAY_SHARDS
from chatsphere.logic.analytics import aggregate, suppress
from chatsphere.logic.retention import buckets, watermark_after
from chatsphere.models.retention import DueEntry, RetentionRunItem


def entry(subject: str, channel: str | None = "web", conversation: str = "c", role: str = "customer") -> DueEntry:
    return DueEntry(
        key={"pk": "p", "sk": "s"},
        day_sk="2026-01-01T10:00:00.000000Z#i",
        subject_id=subject,
        channel=channel,
        conversation_id=conversation,
        role=role,
    )


def test_a_cell_of_fewer_subjects_than_k_is_null_even_with_many_interactions() -> None:
    cells = {"web": (50, {"a", "b", "c"}), "sms": (40, {"d"})}
    # sms describes one subject; web must go too, or the total would give sms away
    assert suppress(cells, 3) == {"sms": None, "web": None}


def test_the_complement_is_hidden_only_until_the_hidden_cells_describe_k_subjects() -> None:
    cells = {
        "web": (9, {"a", "b", "c", "d"}),
        "email": (5, {"e", "f", "g"}),
        "sms": (1, {"h"}),
        "fax": (2, {"i"}),
    }
    # sms and fax: 2 subjects < 3, so the smallest published cell (email) is hidden too; then 5 >= 3
    assert suppress(cells, 3) == {"email": None, "fax": None, "sms": None, "web": 9}
    assert suppress({"web": (9, {"a", "b", "c"})}, 3) == {"web": 9}


def test_a_day_of_fewer_than_k_subjects_is_suppressed_whole() -> None:
    day = aggregate("2026-01-01", [entry("a"), entry("b")], 3, "2026-01-02T00:00:00.000000Z")
    assert day.suppressed and day.subjects is None and day.by_channel == {}


def test_a_day_counts_interactions_conversations_and_turns() -> None:
    entries = [entry(s, conversation=f"c-{s}") for s in "abc"] + [entry("a", conversation="c-a", role="agent")]
    entries += [entry(s, channel=None, conversation="shared") for s in "abc"]
    day = aggregate("2026-01-01", entries, 3, "2026-01-02T00:00:00.000000Z")
    assert (day.subjects, day.interactions, day.conversations) == (3, 7, 4)
    assert day.by_channel == {"none": 3, "web": 4}
    assert day.by_role == {"agent": None, "customer": None}  # agent: one subject; customer hidden with it
    # "1" (b, c) and "2" (a) are hidden; together they describe 3 subjects, so "3-5" (a, b, c) stays
    assert day.conversation_turns == {"1": None, "2": None, "3-5": 1}


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
