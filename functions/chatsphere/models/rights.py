"""Rights requests: the tracked record of every export, correction, objection, deactivation and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from chatsphere.models.common import JSON_INTEGER, StrictModel

RequestType = Literal["export", "correction", "objection", "deactivation", "erasure"]
RequestStatus = Literal["received", "in_progress", "completed", "completed_with_exceptions", "rejected", "failed"]
OPEN_STATUSES: tuple[RequestStatus, ...] = ("received", "in_progress")
REQUEST_ID_PATTERN = r"^r[0-9a-f]{28}$"

RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class Extension(BaseModel):
    days: int
    reason: str
    extended_at: datetime


class RequestRecord(BaseModel):
    """The record a tenant reads. `details` names fields and counts, never personal values."""

    request_id: str
    type: RequestType
    subject_id: str
    status: RequestStatus
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="What was done: field names, counts")
    result: dict[str, Any] | None = Field(default=None, description="The outcome; for a refusal, `reason`")
    extension: Extension | None = None
    overdue: bool = Field(description="Open and past due_at")


class RequestPage(BaseModel):
    items: list[RequestRecord]
    next_cursor: str | None


class ExtensionIn(StrictModel):
    days: Annotated[int, Field(ge=1, le=365, description="At most the tenant's extension_days"), JSON_INTEGER]
    reason: Reason


ExportFormat = Literal["json", "csv"]
S3Uri = Annotated[
    str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]{0,512})?$")
]


class ExportIn(StrictModel):
    format: ExportFormat = "json"
    deliver_to: S3Uri | None = Field(default=None, description="One of the tenant's portability_destinations")
