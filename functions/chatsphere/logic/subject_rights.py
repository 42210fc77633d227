"""Subject rights served by the Intake function: correction, objection, deactivation and legal holds.

Every change leaves a request record, written in the same transaction as the change itself; a call that
changes nothing (a correction to the same values, an objection that stands already, ...) leaves none."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatsphere.errors import NotFound
from chatsphere.logic.codec import (
    PROFILE_FIELDS,
    open_fields,
    open_profile,
    profile_digests,
    seal_fields,
    write_profile,
)
from chatsphere.logic.crypto import Keyring, SubjectCipher
from chatsphere.logic.ports import EventPublisher, SubjectStore, TenantSecret, TenantStore
from chatsphere.logic.preconditions import IfMatch, require
from chatsphere.logic.requests import new_request
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso, merge_patched
from chatsphere.models.items import ProfileItem
from chatsphere.models.requests import (
    CorrectionDetails,
    DeactivationDetails,
    LegalHoldDetails,
    ObjectionDetails,
    RequestItem,
)
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import LegalHold, LegalHoldIn, ObjectablePurpose, Subject, SubjectIn, SubjectPatch


def _cipher(keyring: Keyring, tombstones: Tombstones, tenant_id: str, subject_id: str) -> SubjectCipher:
    """Checked before any write: a subject whose key is gone (shredded) takes no change and leaves no record."""
    cipher = keyring.cipher(tenant_id, subject_id)
    if cipher is None:
        raise tombstones.absent(tenant_id, subject_id)
    return cipher


def correction(
    settings: TenantSettings,
    tenant_id: str,
    subject_id: str,
    now: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
) -> RequestItem | None:
    """The `correction` record of a change of profile values (PATCH, or a PUT that replaces an existing
    profile): the names of the fields whose value changed, never the values. None if none changed."""
    changed = sorted(f for f in PROFILE_FIELDS if before.get(f) != after.get(f))
    if not changed:
        return None
    return new_request(
        settings, tenant_id, subject_id, now, CorrectionDetails(fields_changed=changed), status="completed"
    )


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
    if_match: IfMatch = None,
) -> Subject:
    """Apply a JSON merge patch (RFC 7396: contact entry by entry, null removes); the result is validated as a PUT
    body is (a pydantic ValidationError, and nothing is written). The record lists the names of the fields whose
    value changed (none: no record). With If-Match, the version it names is the write's own condition."""
    cipher = _cipher(keyring, tombstones, tenant_id, subject_id)
    given = patch.model_dump(mode="json", exclude_unset=True)
    stamp = iso(now)
    settings = tenants.get_settings(tenant_id)  # once, not on every retry of the change

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem | None]:
        current = tombstones.require(tenant_id, subject_id, existing)
        require(if_match, current.version)  # the write is conditioned on this very version
        before = open_fields(cipher, current.sealed)
        values = merge_patched(SubjectIn, before, given).model_dump()
        item = current.model_copy(
            update={
                "sealed": seal_fields(cipher, values),
                "lookups": profile_digests(secret, tenant_id, values),
                "updated_at": stamp,
                "version": current.version + 1,
            }
        )
        return item, correction(settings, tenant_id, subject_id, now, before, values)

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

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem | None]:
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
        if not changed:  # the objection stands already, or there is none to withdraw
            return item, None
        details = ObjectionDetails(purpose=purpose, action="object" if objecting else "withdraw", changed=True)
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

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem | None]:
        current = tombstones.require(tenant_id, subject_id, existing)
        item = current.model_copy(update={"status": status, "updated_at": stamp, "version": current.version + 1})
        if current.status == status:  # deactivated already, or active already
            return item, None
        details = DeactivationDetails(action="deactivate" if deactivated else "reactivate", changed=True)
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
