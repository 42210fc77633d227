"""Subject rights served by the Intake function: correction, objection, deactivation and legal holds.

Every change leaves a request record, written in the same transaction as the change itself."""

from __future__ import annotations

from datetime import datetime

from chatsphere.errors import NotFound
from chatsphere.logic.codec import open_fields, open_profile, profile_digests, seal_fields, write_profile
from chatsphere.logic.crypto import Keyring, SubjectCipher
from chatsphere.logic.ports import EventPublisher, SubjectStore, TenantSecret, TenantStore
from chatsphere.logic.requests import new_request
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso
from chatsphere.models.items import ProfileItem
from chatsphere.models.requests import (
    CorrectionDetails,
    DeactivationDetails,
    LegalHoldDetails,
    ObjectionDetails,
    RequestItem,
)
from chatsphere.models.subjects import LegalHold, LegalHoldIn, ObjectablePurpose, Subject, SubjectPatch


def _cipher(keyring: Keyring, tombstones: Tombstones, tenant_id: str, subject_id: str) -> SubjectCipher:
    """Checked before any write: a subject whose key is gone (shredded) takes no change and leaves no record."""
    cipher = keyring.cipher(tenant_id, subject_id)
    if cipher is None:
        raise tombstones.absent(tenant_id, subject_id)
    return cipher


def correct_subject(
    subjects: SubjectStore,
    keyring: Keyring,
    secret: TenantSecret,
    tenants: TenantStore,
    events: EventPublisher,
    tombstones: Tombstones,
    tenant_id: str,
    subject_id: str,
    patch: SubjectPatch,
    now: datetime,
) -> Subject:
    """Apply a merge patch; the record lists the names of the fields whose value changed."""
    cipher = _cipher(keyring, tombstones, tenant_id, subject_id)
    given = patch.model_dump(include=patch.model_fields_set)
    stamp = iso(now)
    settings = tenants.get_settings(tenant_id)  # once, not on every retry of the change

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = tombstones.require(tenant_id, subject_id, existing)
        values = open_fields(cipher, current.sealed)
        changed = sorted(f for f, v in given.items() if values.get(f) != v)
        values.update(given)
        item = current.model_copy(
            update={
                "sealed": seal_fields(cipher, values),
                "lookups": profile_digests(secret, tenant_id, values),
                "updated_at": stamp,
                "version": current.version + 1,
            }
        )
        record = new_request(
            settings, tenant_id, subject_id, now, CorrectionDetails(fields_changed=changed), status="completed"
        )
        return item, record

    item, _ = write_profile(subjects, tenant_id, subject_id, apply, events)
    return open_profile(cipher, item)


def set_objection(
    subjects: SubjectStore,
    keyring: Keyring,
    tenants: TenantStore,
    events: EventPublisher,
    tombstones: Tombstones,
    tenant_id: str,
    subject_id: str,
    purpose: ObjectablePurpose,
    objecting: bool,
    now: datetime,
) -> Subject:
    cipher = _cipher(keyring, tombstones, tenant_id, subject_id)
    stamp = iso(now)
    settings = tenants.get_settings(tenant_id)

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = tombstones.require(tenant_id, subject_id, existing)
        objections = dict(current.objections)
        changed = (purpose in objections) != objecting
        if objecting:
            objections.setdefault(purpose, stamp)
        else:
            objections.pop(purpose, None)
        item = current.model_copy(
            update={"objections": objections, "updated_at": stamp, "version": current.version + 1}
        )
        details = ObjectionDetails(purpose=purpose, action="object" if objecting else "withdraw", changed=changed)
        return item, new_request(settings, tenant_id, subject_id, now, details, status="completed")

    item, _ = write_profile(subjects, tenant_id, subject_id, apply, events)
    return open_profile(cipher, item)


def set_deactivated(
    subjects: SubjectStore,
    keyring: Keyring,
    tenants: TenantStore,
    events: EventPublisher,
    tombstones: Tombstones,
    tenant_id: str,
    subject_id: str,
    deactivated: bool,
    now: datetime,
) -> Subject:
    """Deactivation keeps every datum (readable, exportable) but takes no new interactions."""
    cipher = _cipher(keyring, tombstones, tenant_id, subject_id)
    stamp = iso(now)
    settings = tenants.get_settings(tenant_id)
    status = "deactivated" if deactivated else "active"

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = tombstones.require(tenant_id, subject_id, existing)
        details = DeactivationDetails(
            action="deactivate" if deactivated else "reactivate", changed=current.status != status
        )
        item = current.model_copy(update={"status": status, "updated_at": stamp, "version": current.version + 1})
        return item, new_request(settings, tenant_id, subject_id, now, details, status="completed")

    item, _ = write_profile(subjects, tenant_id, subject_id, apply, events)
    return open_profile(cipher, item)


def place_hold(
    subjects: SubjectStore,
    keyring: Keyring,
    tenants: TenantStore,
    events: EventPublisher,
    tombstones: Tombstones,
    tenant_id: str,
    subject_id: str,
    body: LegalHoldIn,
    now: datetime,
) -> Subject:
    """A legal hold (an exception to erasure): what it covers is kept by any deletion until it is lifted."""
    cipher = _cipher(keyring, tombstones, tenant_id, subject_id)
    settings = tenants.get_settings(tenant_id)

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = tombstones.require(tenant_id, subject_id, existing)
        details = LegalHoldDetails(action="place", categories=sorted(body.categories), reason=body.reason)
        record = new_request(settings, tenant_id, subject_id, now, details, status="completed")
        hold = LegalHold(
            reason=body.reason, categories=sorted(body.categories), since=now, request_id=record.request_id
        )
        update = {"legal_hold": hold.model_dump(mode="json"), "updated_at": iso(now), "version": current.version + 1}
        return current.model_copy(update=update), record

    item, _ = write_profile(subjects, tenant_id, subject_id, apply, events)
    return open_profile(cipher, item)


def lift_hold(
    subjects: SubjectStore,
    tenants: TenantStore,
    events: EventPublisher,
    tombstones: Tombstones,
    tenant_id: str,
    subject_id: str,
    now: datetime,
) -> ProfileItem:
    """Lift the hold. Returns the profile as written: if a deletion kept data for the hold (the subject is
    still `erasing`), the caller requests the deletion that completes it."""
    settings = tenants.get_settings(tenant_id)

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        if existing is None:
            raise tombstones.absent(tenant_id, subject_id)
        if existing.legal_hold is None:
            raise NotFound("the subject has no legal hold")
        categories = LegalHold.model_validate(existing.legal_hold).categories
        record = new_request(
            settings,
            tenant_id,
            subject_id,
            now,
            LegalHoldDetails(action="lift", categories=list(categories)),
            status="completed",
        )
        update = {"legal_hold": None, "updated_at": iso(now), "version": existing.version + 1}
        return existing.model_copy(update=update), record

    item, _ = write_profile(subjects, tenant_id, subject_id, apply, events)
    return item
