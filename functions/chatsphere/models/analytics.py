"""Trend analytics: a tenant's anonymous aggregates of one day. No identifier, no text, no hash of either; a cell
that would describe fewer than `analytics_min_count` distinct subjects is suppressed (null)."""

from __future__ import annotations

from pydantic import BaseModel, Field

TURN_BUCKETS = ("1", "2", "3-5", "6-10", "11+")


class DailyAggregate(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    computed_at: str
    min_count: int = Field(description="The suppression threshold in force when the day was computed")
    suppressed: bool = Field(description="True when the whole day describes too few subjects to publish")
    subjects: int | None = Field(description="Distinct subjects with interactions that day")
    interactions: int | None
    conversations: int | None
    by_channel: dict[str, int | None] = Field(description="Interactions per channel ('none': no channel given)")
    by_role: dict[str, int | None] = Field(description="Interactions per role")
    conversation_turns: dict[str, int | None] = Field(
        description="Conversations per number of turns that day: " + ", ".join(TURN_BUCKETS)
    )


class DailyAggregatePage(BaseModel):
    items: list[DailyAggregate]
