"""What a subject id answers when it has no live subject behind it: 404 if it never had one, 409 while
its erasure runs (or, for a change, while a legal hold restricts what the erasure kept), 410 once it is erased.
A tombstone holds the subject's keyed hash, never its id."""

from __future__ import annotations

from chatsphere.errors import DeletionInProgress, DomainError, Gone, NotFound, SubjectRestricted
from chatsphere.logic.crypto import keyed_digest
from chatsphere.logic.ports import TenantSecret, TombstoneStore
from chatsphere.models.items import ProfileItem, TombstoneItem


def subject_hash(secret: TenantSecret, tenant_id: str, subject_id: str) -> str:
    """The keyed hash that stands for an erased subject in its records and tombstone."""
    return keyed_digest(secret(tenant_id), "subject", subject_id)


class Tombstones:
    def __init__(self, store: TombstoneStore, secret: TenantSecret) -> None:
        self.store = store
        self.secret = secret

    def put(self, tombstone: TombstoneItem) -> None:
        """Create, or complete (deleted_at set); a completed tombstone never changes again."""
        self.store.put_tombstone(tombstone)

    def hash(self, tenant_id: str, subject_id: str) -> str:
        return subject_hash(self.secret, tenant_id, subject_id)

    def absent(self, tenant_id: str, subject_id: str) -> DomainError:
        """The error for a subject id with no readable subject: Gone after an erasure, else NotFound."""
        tombstone = self.store.get_tombstone(tenant_id, self.hash(tenant_id, subject_id))
        if tombstone is None:
            return NotFound("no such subject")
        if tombstone.deleted_at is None:
            return DeletionInProgress(tombstone.request_id)
        return Gone(tombstone.request_id)

    def require(
        self, tenant_id: str, subject_id: str, profile: ProfileItem | None, reading: bool = False
    ) -> ProfileItem:
        """The live profile; the right error if there is none or it is being erased. A restricted subject (its
        erasure kept what a legal hold covers, GDPR art. 18) is there for `reading` (a GET, an export) only."""
        if profile is None:
            raise self.absent(tenant_id, subject_id)
        if profile.status == "erasing":
            raise DeletionInProgress(profile.deletion_request_id)
        if profile.status == "restricted" and not reading:
            raise SubjectRestricted(profile.deletion_request_id)
        return profile

    def require_current(
        self, tenant_id: str, subject_id: str, profile: ProfileItem | None, reading: bool = False
    ) -> ProfileItem:
        """require(), and Gone if the profile is a restored copy of an erased subject's (created at or before
        its erasure completed; `chatsphere reconcile` removes it). For the routes that do not read the
        subject's data key, whose absence tells the others; it costs one read of the tombstone."""
        current = self.require(tenant_id, subject_id, profile, reading)
        tombstone = self.store.get_tombstone(tenant_id, self.hash(tenant_id, subject_id))
        if tombstone is not None and tombstone.deleted_at is not None and current.created_at <= tombstone.deleted_at:
            raise Gone(tombstone.request_id)
        return current

    def may_create(self, tenant_id: str, subject_id: str, reuse: bool) -> None:
        """A new profile under this id: refused after an erasure (no resurrection by a replay), unless the
        caller says it is a new person reusing the id; never while an erasure runs."""
        error = self.absent(tenant_id, subject_id)
        if isinstance(error, DeletionInProgress) or (isinstance(error, Gone) and not reuse):
            raise error
