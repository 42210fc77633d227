"""The ports logic talks to. The DAL implements them over AWS; tests/unit/fakes.py in memory (mypy checks both).

Each logic function takes the ports it uses, by name, so that its signature says what it reads and writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # annotations only: the authorizer imports this module and must not load pydantic
    from pydantic import BaseModel

    from chatsphere.models.analytics import DailyAggregate
    from chatsphere.models.items import (
        ApiKeyItem,
        IdentifierKind,
        InteractionItem,
        PolicyItem,
        ProfileAdmission,
        ProfileItem,
        TenantItem,
        TombstoneItem,
    )
    from chatsphere.models.ledger import LedgerEntry, LedgerHead, SignedTreeHead, StoredEntry
    from chatsphere.models.offboarding import Leftover, PackageLine
    from chatsphere.models.reconcile import BlobVersion, IdempotencyRef, StoredKey, StoredRef
    from chatsphere.models.refs import InteractionPosition, ItemRef, RecordRef
    from chatsphere.models.reports import DayCounts
    from chatsphere.models.requests import ProfileRecords, RequestItem
    from chatsphere.models.retention import (
        Act,
        ActOutcome,
        Category,
        DueEntry,
        IndexedRef,
        RetentionRunItem,
    )
    from chatsphere.models.settings import TenantSettings


class KeyWrapper(Protocol):
    def generate(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        """A fresh 256-bit data key: (plaintext, wrapped)."""
        ...

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes: ...


class DataKeyStore(Protocol):
    """Each subject's KMS-wrapped data key (SubjectKeysTable). Deleting one is crypto-shredding."""

    def get(self, tenant_id: str, subject_id: str) -> bytes | None: ...

    def put_if_absent(self, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> bool: ...

    def delete(self, tenant_id: str, subject_id: str) -> None: ...

    def scan(self) -> Iterator[StoredKey]:
        """Every row of every tenant: a full Scan, for the reconcile command only."""
        ...


class SubjectStore(Protocol):
    def get_profile(self, tenant_id: str, subject_id: str) -> ProfileItem | None: ...

    def save_profile(
        self,
        profile: ProfileItem,
        expected_version: int | None,
        record: ProfileRecords = None,
        admission: ProfileAdmission | None = None,
    ) -> None:
        """The profile (new if expected_version is None, else at that version), its lookups and the change's
        record(s), all or nothing; else Conflict. A new profile's `admission` joins the same write: the subject's
        tombstone must be absent (or completed, if reuse_deleted_id), and its data key is created, only if it has
        none (wrapped_key; None: its stored key is used); either refused is Conflict too."""
        ...

    def find_subjects(self, tenant_id: str, kind: IdentifierKind, digest: str) -> list[str]: ...

    def add_interaction(self, item: InteractionItem, accepts: str | None = None) -> None: ...

    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after: InteractionPosition | None
    ) -> tuple[list[InteractionItem], InteractionPosition | None]:
        """Up to `limit` interactions, oldest first, from just after `after`; and the position of the last one
        if more follow (None on the last page)."""
        ...

    def item_refs(self, tenant_id: str, subject_id: str, limit: int) -> list[ItemRef]:
        """Up to `limit` of the subject's items, whatever they are, in the store's order: interactions before
        lookups, and the profile last."""
        ...

    def delete_items(self, refs: list[ItemRef]) -> None: ...

    def strip_profile(self, tenant_id: str, subject_id: str) -> None:
        """The profile keeps its status and hold, and loses every sealed value and lookup digest."""
        ...

    def restrict(self, record: RequestItem, hold_request_id: str) -> None:
        """Complete a deletion's record (in_progress -> `record`'s status) and set its subject `restricted` in one
        write, only while the hold placed by `hold_request_id` stands; else Conflict."""
        ...

    def index_holds(self, tenant_id: str, kind: IdentifierKind, digest: str, subject_id: str) -> bool: ...

    def subject_ids(
        self, tenant_id: str, shard: int, limit: int, after: str | None = None
    ) -> tuple[list[str], str | None]:
        """Up to `limit` of the tenant's subjects (every status) in one of DAY_SHARDS shards, after the id `after`,
        in a stable order; and the last id returned if more may follow (None once the shard is done)."""
        ...

    def count_subjects(self, tenant_id: str) -> int:
        """How many subjects the tenant has, every status: from an index, never a Scan."""
        ...

    def count_interactions(self, tenant_id: str, first_day: str, last_day: str) -> int:
        """Stored interactions whose occurred_at falls from `first_day` to `last_day` (YYYY-MM-DD, UTC): Select=COUNT
        Queries of the day index (each day's buckets and the late bucket), never a Scan."""
        ...

    def scan(self) -> Iterator[StoredRef]:
        """Every item of every subject of every tenant, keys and timestamps only: a full Scan, for the
        reconcile command only (after a restore), never for a request."""
        ...


class OffboardingStore(Protocol):
    """An offboarding's own items, and what the tenant leaves besides its subjects (dal/offboarding.py)."""

    def create(self, item: RequestItem, replaces: str | None = None) -> None:
        """The record, as the tenant's one offboarding: Conflict if it has one (other than `replaces`)."""
        ...

    def current(self, tenant_id: str) -> str | None: ...

    def put_lines(self, tenant_id: str, request_id: str, lines: list[PackageLine]) -> None: ...

    def lines(
        self, tenant_id: str, request_id: str, limit: int, after: str | None = None
    ) -> tuple[list[PackageLine], str | None]: ...

    def leftovers(self, tenant_id: str, keep_request: str, limit: int) -> list[Leftover]: ...

    def leftover_counts(self, tenant_id: str, keep_request: str) -> dict[str, int]:
        """Every leftover counted by kind, a page at a time (none held)."""
        ...

    def remove(self, tenant_id: str, leftovers: list[Leftover]) -> None: ...

    def close(self, record: RequestItem, expected_status: tuple[str, ...]) -> None:
        """The record closes (with its ledger receipt) and the tenant is offboarded, its secret destroyed."""
        ...


class Upload(Protocol):
    """A write-only binary stream into storage; close() commits, abort() discards."""

    size: int

    def write(self, data: bytes) -> int: ...

    def flush(self) -> None: ...

    def tell(self) -> int: ...

    def writable(self) -> bool: ...

    def seekable(self) -> bool: ...

    def close(self) -> str | None:
        """Commit the object; returns the version it created (None where the store keeps no versions)."""
        ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> str | None:
        """Store one object; returns the version it created (None where the store keeps no versions)."""
        ...

    def get(self, key: str) -> bytes: ...

    def open_upload(self, key: str, kind: str) -> Upload: ...

    def presign_get(self, key: str, expires_in: int, filename: str) -> str: ...

    def deliver(self, key: str, destination_uri: str, filename: str) -> str: ...

    def versions(self, prefix: str, limit: int) -> list[tuple[str, str, bool]]:
        """Up to `limit` (key, version id, is a delete marker) under `prefix`."""
        ...

    def delete_versions(self, versions: list[tuple[str, str]]) -> None: ...

    def delete_version(self, key: str, version_id: str) -> None:
        """Remove one version for good (not a delete marker): what a failed attempt wrote."""
        ...

    def version_counts(self, prefix: str) -> tuple[int, int]:
        """(objects, versions and delete markers) under `prefix`, counted without holding them."""
        ...

    def subfolders(self, prefix: str) -> list[str]:
        """The names of the `folders` directly under `prefix` (ending in /) in any version or delete marker."""
        ...

    def dated_versions(self, prefix: str) -> list[BlobVersion]:
        """Every version and delete marker under `prefix`, with its LastModified."""
        ...


class TenantStore(Protocol):
    """The tenants themselves (TenantsTable)."""

    def get_tenant(self, tenant_id: str) -> TenantItem | None: ...

    def tenant_ids(self) -> list[str]:
        """Every tenant: a Scan, for operator commands only."""
        ...

    def create_tenant(self, tenant: TenantItem, api_key: ApiKeyItem) -> None: ...


class ApiKeyReader(Protocol):
    """The authorizer's one read: plain fields, so that it loads no pydantic."""

    def read_api_key(self, tenant_id: str, key_hash: str) -> dict[str, Any] | None:
        """The stored key item (its fields, status among them), or None if there is none."""
        ...


class ApiKeyStore(Protocol):
    """A tenant's API keys, for the operator's console command; the keys of a tenant that exists."""

    def get_tenant(self, tenant_id: str) -> TenantItem | None: ...

    def add_api_key(self, api_key: ApiKeyItem) -> None:
        """Another key of an existing tenant; Conflict if the tenant is gone or the key exists."""
        ...

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyItem]:
        """The tenant's keys (hashes, times, status), in key order."""
        ...

    def revoke_api_key(self, tenant_id: str, key_hash: str, revoked_at: str) -> None:
        """Status revoked, if the key exists (Conflict if not); revoking a revoked key changes nothing."""
        ...


class SettingsStore(Protocol):
    """A tenant's settings document, versioned."""

    def get_settings(self, tenant_id: str) -> TenantSettings: ...

    def read_settings(self, tenant_id: str) -> tuple[TenantSettings, int]:
        """The settings and their stored version (0 while none are stored, or stored before versions were)."""
        ...

    def put_settings(
        self,
        tenant_id: str,
        settings: TenantSettings,
        updated_at: str,
        expected_version: int | None = None,
        previous: TenantSettings | None = None,
    ) -> int:
        """Store the whole document and increment the version; returns the new version. With expected_version,
        only if the stored version is that one (the write's own condition), else Conflict; `previous` is the
        document at that version, when the caller has read it (the ledger entry names the fields that changed)."""
        ...


class SettingsReader(Protocol):
    """What every capability but settings itself needs of them."""

    def get_settings(self, tenant_id: str) -> TenantSettings: ...


class TenantDirectory(Protocol):
    """What a job reads of its tenant: the tenant (its name) and its settings."""

    def get_tenant(self, tenant_id: str) -> TenantItem | None: ...

    def get_settings(self, tenant_id: str) -> TenantSettings: ...


class PolicyStore(Protocol):
    """A tenant's privacy policy versions."""

    def add_policy(self, policy: PolicyItem) -> None: ...

    def get_policy(self, tenant_id: str, version: str) -> PolicyItem | None: ...

    def mark_announced(self, policy: PolicyItem) -> None: ...

    def list_policies(self, tenant_id: str) -> list[PolicyItem]: ...

    def policy_in_force(self, tenant_id: str, at: str) -> PolicyItem | None: ...


class RequestStore(Protocol):
    def create(self, item: RequestItem, once_as: str | None = None, replaces: str | None = None) -> None:
        """The record; with `once_as`, the marker of that name naming it, only if none has the name (or, with
        `replaces`, if it still names that request); else Conflict."""
        ...

    def marked(self, tenant_id: str, once_as: str) -> str | None: ...

    def get(self, tenant_id: str, request_id: str) -> RequestItem | None: ...

    def set_status(self, item: RequestItem, expected_status: tuple[str, ...]) -> None:
        """Status, completed_at and result only, if the stored status is expected; else Conflict."""
        ...

    def extend(self, extended: RequestItem, previous_due_at: str) -> None:
        """due_at and extension only, once, while open and due at `previous_due_at`; else Conflict."""
        ...

    def page(
        self,
        tenant_id: str,
        limit: int,
        after: str | None,
        statuses: Sequence[str] | None,
        type_: str | None,
        subject_id: str | None = None,
    ) -> tuple[list[RequestItem], str | None]: ...

    def overdue_page(
        self, tenant_id: str, now: str, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[RequestItem], tuple[str, str] | None]: ...

    def open_requests(self) -> Iterator[RequestItem]: ...

    def count_open(self, tenant_id: str) -> int:
        """The tenant's open requests: a Select=COUNT Query of the open-requests index."""
        ...

    def of_subject(self, tenant_id: str, subject_id: str) -> list[RequestItem]: ...

    def pseudonymise(self, item: RequestItem, subject_hash: str) -> None: ...

    def metrics(self, tenant_id: str, first_day: str, last_day: str) -> list[DayCounts]:
        """The request metrics' counts per day of receipt, from `first_day` to `last_day` (YYYY-MM-DD)."""
        ...

    def with_subject_ids(self) -> Iterator[RequestItem]:
        """Every record of every tenant that still names its subject in clear (reconcile's full scan)."""
        ...


class TombstoneStore(Protocol):
    """What is left of an erased subject: its keyed hash and when (RequestsTable)."""

    def put_tombstone(self, tombstone: TombstoneItem) -> None:
        """Create, or complete (deleted_at set); a completed tombstone never changes again."""
        ...

    def get_tombstone(self, tenant_id: str, subject_hash: str) -> TombstoneItem | None: ...

    def tombstones(self, tenant_id: str) -> list[TombstoneItem]: ...


class DeletedSubjects(Protocol):
    """Tombstones filed for the orphan sweep (logic/sweep.py)."""

    def settled_tombstones(self, tenant_id: str, upto: str) -> list[TombstoneItem]:
        """Every tombstone of the tenant still filed for the sweep whose erasure completed at or before `upto`."""
        ...

    def forget_subject_id(self, tenant_id: str, subject_hash: str) -> None:
        """The tombstone loses its sealed subject id and its index entry (it stays, with the keyed hash)."""
        ...


class IdempotencyRecords(Protocol):
    """Powertools' idempotency records, one partition per subject: what deletion and reconcile remove. (Writing
    them is Powertools' own, through the persistence layer intake is given: logic/intake.IntakePorts.)"""

    def record_refs(self, tenant_id: str, subject_id: str, limit: int) -> list[RecordRef]: ...

    def delete_records(self, refs: list[RecordRef]) -> None: ...

    def scan(self) -> Iterator[IdempotencyRef]:
        """Every record of every subject, keys and expiry only: a full Scan, for the reconcile command only."""
        ...


Job = TypeVar("Job", bound="BaseModel", contravariant=True)


class JobQueue(Protocol[Job]):
    """A capability's own SQS queue; the message is the job model as JSON (ids only)."""

    def send(self, job: Job) -> None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, str]) -> None: ...


class RetentionStore(Protocol):
    """The day indexes and retention's own state (dal/retention.py). Items are named by their IndexedRef, which the
    store makes (due) and alone turns into storage keys."""

    def due(
        self,
        tenant_id: str,
        category: Category,
        bucket: str,
        shard: int,
        upto: str,
        after: IndexedRef | None,
        limit: int,
        since: str | None = None,
    ) -> tuple[list[DueEntry], IndexedRef | None]:
        """One page (at most `limit`) of a bucket's items filed at or before `upto` (and at or after `since`), in
        (at, item_id) order after `after`; and the last item read if the bucket may hold more (the next page's
        `after`), else None."""
        ...

    def holds(self, tenant_id: str) -> dict[str, list[str]]: ...

    def last_activity(self, tenant_id: str, subject_id: str) -> str | None: ...

    def remove(self, category: Category, tenant_id: str, refs: list[IndexedRef]) -> None:
        """Delete items that belong to no subject (closed request records); one gone already is no error."""
        ...

    def remove_unless_held(
        self, act: Act, category: Category, subject_id: str, refs: list[IndexedRef], marker: str | None
    ) -> ActOutcome | None:
        """One subject's items, its activity marker and the act's outcome `removed`, all or nothing, only while
        its profile exists, is open and no hold covers `category`: None if that refuses; the outcome recorded
        already if another attempt recorded this act first."""
        ...

    def record_outcome(self, act: Act, outcome: ActOutcome) -> ActOutcome: ...

    def outcomes(self, tenant_id: str, run_id: str, seq: int) -> dict[str, ActOutcome]: ...

    def refile_late(self, category: Category, tenant_id: str, refs: list[IndexedRef]) -> int:
        """Move kept items to the late bucket with their TTL cleared (a profile only while open); how many moved."""
        ...

    def reindex_profile(self, tenant_id: str, subject_id: str, active_at: str, version: int) -> bool: ...

    def package_gone(self, tenant_id: str, request_id: str, completed_at: str, now: str) -> None: ...

    def watermark(self, tenant_id: str, category: str) -> str | None: ...

    def watermarks(self, tenant_id: str) -> dict[str, str]: ...

    def advance_watermark(self, tenant_id: str, category: str, day: str) -> None: ...

    def lease(self, tenant_id: str) -> tuple[str, str] | None: ...

    def start_run(self, run: RetentionRunItem, until: str, replaces: str | None) -> None: ...

    def get_run(self, tenant_id: str, run_id: str) -> RetentionRunItem | None: ...

    def commit(self, run: RetentionRunItem, until: str | None) -> None: ...

    def settle(self, run: RetentionRunItem) -> None: ...

    def abandon(self, tenant_id: str, run_id: str) -> None: ...

    def runs_page(self, tenant_id: str, limit: int, after: str | None) -> tuple[list[RetentionRunItem], str | None]:
        """Up to `limit` runs, newest first, after the run id `after`; and the last one's id if more follow."""
        ...


class DayAggregates(Protocol):
    """What `anonymize` needs of analytics: that a day's aggregate exists before its interactions go."""

    def ensure_day(self, tenant_id: str, day: str, now: datetime) -> None: ...


class AnalyticsStore(Protocol):
    def profiles(self, tenant_id: str, subject_ids: list[str]) -> dict[str, tuple[str, list[str]]]: ...

    def get_day(self, tenant_id: str, day: str) -> DailyAggregate | None: ...

    def put_day(self, tenant_id: str, aggregate: DailyAggregate) -> bool: ...

    def days(self, tenant_id: str, first: str, last: str) -> list[DailyAggregate]: ...


# ------------------------------------------------------------------ the evidence ledger (logic/ledger.py)
class LedgerOutbox(Protocol):
    """Entries not yet in their tenant's tree. An action's own store writes its entry, in its transaction."""

    def record(self, entry: LedgerEntry) -> None:
        """An entry no other write goes with (written once: the same entry again is a no-op)."""
        ...

    def pending(self, tenant_id: str, limit: int) -> list[LedgerEntry]:
        """The tenant's oldest entries first."""
        ...


Node = tuple[int, int]  # a perfect subtree: (level, index), covering leaves [index * 2**level, (index + 1) * 2**level)


class LedgerIndex(Protocol):
    """Every tenant's tree, to append to, page and prove from (rebuildable from the archive)."""

    def head(self, tenant_id: str) -> LedgerHead: ...

    def appended(self, tenant_id: str, entry_ids: list[str]) -> set[str]: ...

    def append(
        self,
        before: LedgerHead,
        after: LedgerHead,
        leaves: list[tuple[LedgerEntry, StoredEntry]],
        nodes: dict[Node, str],
        consumed: list[LedgerEntry],
    ) -> None:
        """All or nothing, if the tree is still `before.size` (else Conflict); `consumed` leave the outbox."""
        ...

    def mark(self, tenant_id: str, size: int, **fields: int) -> None:
        """Raise the head's `archived` or `signed` (never lowers them)."""
        ...

    def nodes(self, tenant_id: str, wanted: set[Node]) -> dict[Node, bytes]: ...

    def leaves(self, tenant_id: str, start: int = 0, end: int | None = None) -> Iterator[StoredEntry]: ...

    def page(
        self, tenant_id: str, limit: int, after: int | None, type_: str | None, since: str | None, until: str | None
    ) -> tuple[list[StoredEntry], int | None]: ...

    def of_request(self, tenant_id: str, request_id: str) -> list[StoredEntry]: ...

    def of_type(self, tenant_id: str, type_: str) -> Iterator[StoredEntry]: ...

    def put_signed(self, signed: SignedTreeHead) -> bool:
        """Keep the first signed head of a size; False if one was kept before."""
        ...

    def signed_heads(self, tenant_id: str, at_least: int = 0, limit: int | None = None) -> list[SignedTreeHead]: ...

    def restore(
        self,
        tenant_id: str,
        leaves: list[tuple[LedgerEntry, StoredEntry]],
        nodes: dict[Node, str],
        head: LedgerHead,
        signed: list[SignedTreeHead],
    ) -> None: ...


class LedgerArchive(Protocol):
    """The locked bucket: what is written there stays, unchanged, for the stack's retention."""

    def put_entry(self, tenant_id: str, seq: int, document: str) -> None: ...

    def put_head(self, tenant_id: str, size: int, signed: SignedTreeHead) -> None: ...

    def documents(self, tenant_id: str, kind: str) -> Iterator[tuple[str, bytes]]: ...


class Signer(Protocol):
    def sign(self, message: bytes) -> tuple[str, str]:
        """(base64 DER signature, the key's id)."""
        ...

    def public_key_pem(self) -> bytes: ...


# tenant id -> the tenant's secret for identifier digests and cursors (logic/tenants.TenantSecrets)
TenantSecret = Callable[[str], bytes]
