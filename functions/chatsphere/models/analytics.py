"""Trend analytics: a tenant's anonymous aggregates of one day. No identifier, no text, no hash of either; every
number describes at least `analytics_min_count` distinct subjects, and a cell that would describe fewer is not
named: it is folded into `other` (the rule: logic/analytics.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

# The fixed turn buckets, each with its range of turns (inclusive; None: unbounded). Published: a reader (and an
# attacker) knows them, which is why the histogram is audited against `interactions` (logic/analytics.py).
TURN_RANGES: dict[str, tuple[int, int | None]] = {
    "1": (1, 1),
    "2": (2, 2),
    "3-5": (3, 5),
    "6-10": (6, 10),
    "11+": (11, None),
}
TURN_BUCKETS = tuple(TURN_RANGES)
OTHER = "other"

_FOLDED = (
    f"; '{OTHER}': the cells that describe fewer than min_count subjects, folded together (with the smallest named"
    f" cells while they describe fewer than min_count); the cells sum to the total"
)


class DailyAggregate(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    computed_at: str
    min_count: int = Field(description="The suppression threshold in force when the day was computed")
    suppressed: bool = Field(description="True when the whole day describes too few subjects to publish")
    subjects: int | None = Field(description="Distinct subjects with interactions that day")
    interactions: int | None
    conversations: int | None = Field(
        description="Null (with conversation_turns empty) when, with `interactions`, it would pin the turns of a"
        " conversation bucket of fewer than min_count subjects or conversations"
    )
    by_channel: dict[str, int] = Field(
        description="Interactions per channel used by at least min_count subjects ('none': no channel given)" + _FOLDED
    )
    by_role: dict[str, int] = Field(description="Interactions per role used by at least min_count subjects" + _FOLDED)
    conversation_turns: dict[str, int] = Field(
        description="Conversations per number of turns that day: "
        + ", ".join(TURN_BUCKETS)
        + " (a bucket of at least min_count subjects)"
        + _FOLDED
        + ", `conversations`; buckets fold further while, with `interactions` and the buckets' ranges, the"
        " published counts would pin one inside other"
    )

    @model_validator(mode="before")
    @classmethod
    def _stored_under_the_earlier_rule(cls, data: Any) -> Any:
        """A day stored under the earlier rule named its suppressed cells (null): it is read in this rule's form.
        Those cells fold into `other` (the earlier rule hid them until they described min_count subjects together,
        so their sum, the total minus the published cells, is publishable); a histogram with a null bucket goes
        with `conversations`, since with `interactions` it could pin the bucket."""
        if not isinstance(data, dict) or data.get("suppressed") or not isinstance(data.get("interactions"), int):
            return data
        data = dict(data)
        for dimension in ("by_channel", "by_role"):
            cells = data.get(dimension) or {}
            if any(v is None for v in cells.values()):
                named = {n: v for n, v in cells.items() if v is not None and n != OTHER}
                rest = data["interactions"] - sum(named.values())
                data[dimension] = named | ({OTHER: rest} if rest else {})
        if any(v is None for v in (data.get("conversation_turns") or {}).values()):
            data["conversation_turns"], data["conversations"] = {}, None
        return data


class DailyAggregatePage(BaseModel):
    items: list[DailyAggregate]
