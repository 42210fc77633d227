"""Request metrics (CCPA regulations §7102; a DPO's annual report): per request type, how many were received, how
each ended, how many are open and past due, and how long they took to close.

The counts are kept as they happen (dal/requests.py writes them in each record's own transaction), per day a request
was received, so a report reads one small item per day of its range, however many records the tenant has."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from chatsphere.models.requests import RequestType


class TypeCounts(BaseModel):
    """One request type's counts for the requests received on one day."""

    received: int = 0
    closed: dict[str, int] = Field(default_factory=dict)  # status -> how many ended so
    close_days: dict[int, int] = Field(default_factory=dict)  # whole days to close -> how many
    close_seconds: float = 0  # the sum, for the mean
    open_due: dict[str, int] = Field(default_factory=dict)  # due date (YYYY-MM-DD) -> how many still open


class DayCounts(BaseModel):
    day: str  # YYYY-MM-DD, UTC: the day the requests were received
    by_type: dict[str, TypeCounts] = Field(default_factory=dict)


class TypeReport(BaseModel):
    type: RequestType
    received: int
    completed: int = Field(description="Completed in full")
    completed_with_exceptions: int = Field(description="Completed but for what a legal hold keeps")
    rejected: int
    failed: int
    open: int
    past_due: int = Field(description="Open, and past their due date today")
    median_days_to_close: float | None = Field(description="Whole days; null when none has closed")
    mean_days_to_close: float | None = Field(description="Null when none has closed")


class RequestReport(BaseModel):
    """Requests received from `from` to `to` (both days included, UTC)."""

    from_day: date = Field(alias="from")
    to_day: date = Field(alias="to")
    types: list[TypeReport]
    model_config = {"populate_by_name": True, "serialize_by_alias": True}
