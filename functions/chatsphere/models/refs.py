"""References to what is stored of a subject, as logic sees it: what an item is and which one, never its storage
key. Logic gets refs from a port and hands them back to it (to delete them); the DAL alone turns a ref into a key
and a key into a ref (dal/subjects.py, dal/idempotency.py), and the fakes keep them as they are.

Plain frozen dataclasses rather than pydantic models: an erasure or a reconcile lists every item of a partition,
and these are filled by the DAL from keys it has just read, never from outside input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# profile: the subject's profile; interaction: one interaction; lookup: an identifier's index entry;
# activity: retention's marker of the latest interaction it removed; other: anything else in the partition.
ItemKind = Literal["profile", "interaction", "lookup", "activity", "other"]


@dataclass(frozen=True)
class ItemRef:
    """One item of a subject's partition (SubjectsTable)."""

    tenant_id: str
    subject_id: str
    kind: ItemKind
    # Which one of its kind: an interaction's id, a lookup's identifier kind (email, phone); for `other`, the
    # store's own name for it, which only the store reads. Empty for the profile and an activity marker.
    name: str = ""
    at: str = ""  # an interaction's occurred_at, an activity marker's time; empty for the others


@dataclass(frozen=True)
class RecordRef:
    """One of a subject's idempotency records (IdempotencyTable), named by Powertools' hashed idempotency key."""

    tenant_id: str
    subject_id: str
    idempotency_key: str


@dataclass(frozen=True)
class InteractionPosition:
    """Where a page of a subject's interactions ends: the last interaction it holds (oldest first)."""

    occurred_at: str
    interaction_id: str
