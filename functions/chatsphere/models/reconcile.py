"""What the full scans of the reconcile command return: keys and timestamps of stored items, never a value.

Plain frozen dataclasses rather than pydantic models: a scan after a restore reads every item of a table,
and these are filled by the DAL from keys it has just parsed, not from outside input."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chatsphere.models.refs import ItemRef, RecordRef


@dataclass(frozen=True)
class StoredRef:
    """One item of a subject's partition as a full Scan sees it: what it is and when it was written, no value."""

    ref: ItemRef
    written_at: str | None  # a profile's created_at, an interaction's received_at; None for other items
    digest: str | None = None  # the keyed hash a lookup item indexes (its identifier kind is ref.name)
    lookups: dict[str, str] = field(default_factory=dict)  # a profile's digests, kind -> keyed hash

    @property
    def tenant_id(self) -> str:
        return self.ref.tenant_id

    @property
    def subject_id(self) -> str:
        return self.ref.subject_id


@dataclass(frozen=True)
class StoredKey:
    """A subject's data-key row as a full Scan sees it (the wrapped key itself is not read)."""

    tenant_id: str
    subject_id: str
    created_at: str | None


@dataclass(frozen=True)
class IdempotencyRef:
    ref: RecordRef
    expires_at: int | None  # epoch seconds, Powertools' `expiration`

    @property
    def tenant_id(self) -> str:
        return self.ref.tenant_id

    @property
    def subject_id(self) -> str:
        return self.ref.subject_id


@dataclass(frozen=True)
class BlobVersion:
    key: str
    version_id: str
    is_marker: bool
    last_modified: datetime
