"""Retention: the run record (one per tenant per run, listed by GET /v1/retention/runs), the RetentionQueue job,
and what the day index returns. Counts and times only: no personal value, no subject id in a run record."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatsphere.models.common import DateTimeText

Category = Literal["interactions", "export_packages", "inactive_profiles", "closed_requests"]
CATEGORIES: tuple[Category, ...] = ("interactions", "export_packages", "inactive_profiles", "closed_requests")
RunStatus = Literal["running", "completed", "abandoned"]
# What became of one act of a committed chunk (recorded once, so that a redo neither repeats nor recounts it):
# removed (or erased), kept (a legal hold; moved to the late bucket), left (the subject is being or was erased, or is
# restricted: its erasure owns its data), active (an expired profile found active again at the act, refiled).
ActOutcome = Literal["removed", "kept", "left", "active"]
# A subject's removals are one TransactWriteItems (at most 100 items): the profile's ConditionCheck, the activity
# marker and the act's outcome record take three, the deletes the rest.
REMOVALS_PER_TRANSACTION = 97


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


ItemKind = Literal["interaction", "profile", "request"]


class IndexedRef(BaseModel):
    """One item the day index files, as logic knows it: what it is, whose, which, and the time its retention is
    measured from. The DAL makes it from what the index returns and alone turns it back into the item's key, so
    logic never builds or reads a storage key. A bucket's items come in (at, item_id) order."""

    model_config = ConfigDict(frozen=True)

    kind: ItemKind
    item_id: str  # the interaction's id, the profile's subject id, the request's id
    at: str  # the time it is filed under: an interaction's occurred_at, a profile's activity, a record's completion
    subject_id: str | None = None  # the subject whose partition holds it (interactions and profiles)

    @property
    def position(self) -> tuple[str, str]:
        """Its place in its bucket: the index's order."""
        return self.at, self.item_id


class Cursor(BaseModel):
    """Where a run stands: the category, the bucket within it, and the position inside the bucket."""

    category: int = 0  # index into CATEGORIES
    bucket: int = 0  # index into the category's bucket list (days after the watermark, then the late bucket)
    after: IndexedRef | None = None  # the last item read in the bucket: the next page starts after it


class Pending(BaseModel):
    """What the last chunk decided, written before it acts: a rerun redoes it (every act is idempotent), so that
    an interruption between the decision and the act neither loses an item nor counts one twice."""

    category: Category
    remove: list[IndexedRef] = []  # items to delete
    blobs: list[str] = []  # object keys whose every version goes (export packages)
    texts: dict[str, str] = {}  # interaction id -> its long text's object key, which goes once the item went
    refile: list[IndexedRef] = []  # items to move to the late bucket, TTL cleared (a legal hold)
    reindex: dict[str, list[str | int]] = {}  # subject id -> [active_at, version read] (still active)
    erase: list[str] = []  # subject ids whose erasure retention requests (inactive profiles)
    filed: dict[str, IndexedRef] = {}  # subject id -> its profile as filed (where a hold found at the act refiles it)
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
    settled: bool = False  # the counts include what the pending chunk's acts found (a hold, an erasure, activity)
    seq: int = 0  # bumped by every commit: a commit is conditional on the seq it read


class Act(BaseModel):
    """One act of a committed chunk (`name`: g<n> a subject's removals, e<n> an expired profile's erasure), whose
    outcome is recorded once in TenantsTable: ids and a counter only."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    run_id: str
    seq: int
    name: str


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
    """One item the day index returned: which item it is and what retention and analytics read of it."""

    ref: IndexedRef
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
        return self.ref.at
