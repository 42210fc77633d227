"""The orphan sweep: object versions written under an erased subject's prefix after its erasure's read-back.

A call that checked the subject `active` just before the erasure closed it may still write under the subject's
prefix once the erasure has verified and completed: an interaction's long text (put before its transaction, which
then refuses it and removes that version, unless the call dies first), or an export's package. Such a write can
only happen while that call runs, so no later than SETTLE after the erasure completed.

So the erasure's completing tombstone write files the tombstone in the RequestsTable DayIndex (category
`deleted_subjects`, the late bucket: read on every run) with the subject id SEALED: AES-GCM under a key derived
(HKDF) from the tenant's secret, bound to the tenant and the subject's keyed hash; never in clear, never an unkeyed
hash. The prefix carries the subject id, and the tombstone alone holds only its keyed hash, so this is the one
way back to the prefix. The daily retention run of the tenant (logic/retention.py) takes every tombstone that has
settled (completed SETTLE or more before the run's as_of), counts what lies under its prefix (the run record's
`orphans_removed`), removes it, then forgets the sealed id and the index entry: each erased subject is swept once,
after which nothing linkable to it remains but its keyed hash. A version written after a new person took the id
(`Reuse-Erased-Subject-Id`) belongs to that person and stays."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chatsphere.logic.crypto import FORMAT, NONCE_BYTES
from chatsphere.logic.object_keys import subject_prefix
from chatsphere.logic.ports import BlobStore, DeletedSubjects, SubjectStore, TenantSecret
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso
from chatsphere.models.items import TombstoneItem
from chatsphere.models.reconcile import BlobVersion

# The longest a call that passed its check before an erasure can go on writing under the subject's prefix: the
# Timeout of the functions that write there (IntakeFunction 29 s, ExportFunction 900 s in template.yaml; a test
# ties them). A tombstone is swept on the first run at least this long after its erasure completed.
SETTLE = timedelta(seconds=900)
CLOCK_SKEW = timedelta(seconds=1)  # between a function's clock and S3's, when a reused id's versions are told apart
_SEAL_INFO = b"chatsphere/v1/erased-subject-id"


# ------------------------------------------------------------------ the sealed id
def _aead(secret: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(secret)
    return AESGCM(key)


def _aad(tenant_id: str, subject_hash: str) -> bytes:
    return f"{tenant_id}|{subject_hash}".encode()


def seal_subject_id(secret: TenantSecret, tenant_id: str, subject_hash: str, subject_id: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT + nonce + _aead(secret(tenant_id)).encrypt(nonce, subject_id.encode(), _aad(tenant_id, subject_hash))


def open_subject_id(tombstones: Tombstones, tombstone: TombstoneItem) -> str | None:
    """The subject id sealed in the tombstone; None if it does not open, or is not the one its hash names."""
    sealed = tombstone.sealed_subject_id
    if sealed is None or sealed[:1] != FORMAT:
        return None
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    aad = _aad(tombstone.tenant_id, tombstone.subject_hash)
    try:
        subject_id = _aead(tombstones.secret(tombstone.tenant_id)).decrypt(nonce, body, aad).decode()
    except (InvalidTag, UnicodeDecodeError):
        return None
    return subject_id if tombstones.hash(tombstone.tenant_id, subject_id) == tombstone.subject_hash else None


# ------------------------------------------------------------------ the sweep
def _orphans(
    subjects: SubjectStore, blobs: BlobStore, tombstones: Tombstones, tombstone: TombstoneItem
) -> list[BlobVersion]:
    """Every version and delete marker under the erased subject's prefix, but those of a new person who took
    the id since (written once its profile existed)."""
    subject_id = open_subject_id(tombstones, tombstone)
    if subject_id is None:
        return []
    found = blobs.dated_versions(subject_prefix(tombstone.tenant_id, subject_id))
    if not found:
        return []
    profile = subjects.get_profile(tombstone.tenant_id, subject_id)
    if profile is None:
        return found
    # S3 dates a version to the second: only versions from a second before the profile's (and a clock's skew)
    since = datetime.fromisoformat(profile.created_at).replace(microsecond=0) - CLOCK_SKEW
    return [v for v in found if v.last_modified < since]


def _settled(erased: DeletedSubjects, tenant_id: str, as_of: datetime) -> list[TombstoneItem]:
    return erased.settled_tombstones(tenant_id, iso(as_of - SETTLE))


def count_orphans(
    erased: DeletedSubjects,
    subjects: SubjectStore,
    blobs: BlobStore,
    tombstones: Tombstones,
    tenant_id: str,
    as_of: datetime,
) -> int:
    """What a sweep at `as_of` removes (reads only): the run commits it before remove_orphans acts. Nothing new
    can appear under a settled prefix in between, so the count is exact whatever interrupts the removal."""
    return sum(len(_orphans(subjects, blobs, tombstones, t)) for t in _settled(erased, tenant_id, as_of))


def remove_orphans(
    erased: DeletedSubjects,
    subjects: SubjectStore,
    blobs: BlobStore,
    tombstones: Tombstones,
    tenant_id: str,
    as_of: datetime,
) -> None:
    """Remove every orphan under each settled erased subject's prefix, then forget its sealed id. Idempotent: a
    rerun finds what is left (a forgotten tombstone is no longer filed)."""
    for tombstone in _settled(erased, tenant_id, as_of):
        found = _orphans(subjects, blobs, tombstones, tombstone)
        if found:
            blobs.delete_versions([(v.key, v.version_id) for v in found])
        erased.forget_subject_id(tenant_id, tombstone.subject_hash)
