"""Retention: the run record (one per tenant per run, listed by GET /v1/retention/runs), the RetentionQueue job,
and what the day index returns. Counts and times only: no personal value, no subject id in a run record."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatsphere.models.common import DateTimeText

Category = Literal["interactions", "export_packages", "inactive_profiles", "closed_requests"]
CATEGORIES: tuple[Category, ...] = ("interactions", "export_packages", "inactive_profiles", "closed_requests")
RunStatus = Literal["running", "completed", "abandoned"]


class RetentionJob(BaseModel):
    """A RetentionQueue message: ids only; the run record holds the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    run_id: str
    as_of: str
    acted: int | None = None  # the run record seq whose chunk the sender carried out: no need to redo it


class RetentionEvent(BaseModel):
    """The schedule's Input: `{}` (now), or `{"as_of": ...}` for back-fills and tests."""

    model_config = ConfigDict(extra="forbid")

    as_of: DateTimeText | None = None


class Cursor(BaseModel):
    """Where a run stands: the category, the bucket within it, and the position inside the bucket."""

    category: int = 0  # index into CATEGORIES
    bucket: int = 0  # index into the category's bucket list (days after the watermark, then the late bucket)
    start_key: dict[str, str] | None = None  # DynamoDB's LastEvaluatedKey inside the bucket


class Pending(BaseModel):
    """What the last chunk decided, written before it acts: a rerun redoes it (every act is idempotent), so that
    an interruption between the decision and the act neither loses an item nor counts one twice."""

    category: Category
    remove: list[dict[str, str]] = []  # keys ({pk, sk}) of items to delete
    blobs: list[str] = []  # object keys whose every version goes (long interaction texts, export packages)
    markers: dict[str, str] = {}  # subject id -> the latest occurred_at removed (the activity marker)
    refile: list[dict[str, str]] = []  # {pk, sk, day_sk} to move to the late bucket, TTL cleared (a legal hold)
    reindex: dict[str, list[str | int]] = {}  # subject id -> [active_at, version read] (still active)
    erase: list[str] = []  # subject ids whose erasure retention requests (inactive profiles)
    packages_gone: dict[str, str] = {}  # request id -> completed_at (the package removed; the record stays)
    anonymised_days: list[str] = []  # days whose aggregates exist before their interactions go


class RetentionCounts(BaseModel):
    removed: dict[str, int] = Field(default_factory=dict, description="Category -> items removed (or erased)")
    kept_by_hold: dict[str, int] = Field(default_factory=dict, description="Category -> due items a hold keeps")
    still_active: int = Field(default=0, description="Profiles whose inactivity was measured anew and not due")
    orphans_removed: int = Field(
        default=0, description="Object versions found under erased subjects' prefixes after their erasure (swept)"
    )


class RetentionRunItem(BaseModel):
    """As stored (TenantsTable, sk = RUN#<run id>)."""

    tenant_id: str
    run_id: str
    as_of: str
    acted: int | None = None  # the run record seq whose chunk the sender carried out: no need to redo it
    started_at: str
    finished_at: str | None = None
    status: RunStatus = "running"
    cutoffs: dict[str, str] = {}  # category -> the latest time that is due
    from_days: dict[str, str] = {}  # category -> its watermark when the run started: buckets after it are read
    anonymise: bool = False  # the interactions' action when the run started
    replaces: str | None = None  # the run whose expired lease this one takes over
    counts: RetentionCounts = Field(default_factory=RetentionCounts)
    cursor: Cursor = Field(default_factory=Cursor)
    pending: Pending | None = None
    seq: int = 0  # bumped by every commit: a commit is conditional on the seq it read


class RetentionRun(BaseModel):
    """A run as the API shows it."""

    run_id: str
    as_of: str
    started_at: str
    finished_at: str | None
    status: RunStatus
    removed: dict[str, int]
    kept_by_hold: dict[str, int]
    still_active_profiles: int
    orphans_removed: int = Field(
        description="Object versions the run found and removed under the prefixes of subjects erased before it, "
        "written there by a call that was still running when the erasure completed"
    )


class RetentionRunPage(BaseModel):
    items: list[RetentionRun]
    next_cursor: str | None


class DueEntry(BaseModel):
    """One item the day index returned: its table key and what retention and analytics read of it."""

    key: dict[str, str]
    day_sk: str
    subject_id: str | None = None
    conversation_id: str | None = None
    role: str | None = None
    channel: str | None = None
    text_blob_key: str | None = None
    version: int | None = None
    expires: bool = False  # whether it carries the TTL backstop
    type: str | None = None
    package_key: str | None = None

    @property
    def at(self) -> str:
        """The time the item's retention is measured from."""
        return self.day_sk.partition("#")[0]
