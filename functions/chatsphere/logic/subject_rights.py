"""Subject rights served by the Intake function: correction, objection, deactivation and legal holds.

Every change leaves a request record, written in the same transaction as the change itself; a call that
changes nothing (a correction to the same values, an objection that stands already, ...) leaves none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

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
from chatsphere.logic.ports import (
    BlobStore,
    EventPublisher,
    JobQueue,
    RequestStore,
    SettingsReader,
    SubjectStore,
    TenantSecret,
)
from chatsphere.logic.preconditions import IfMatch, require
from chatsphere.logic.requests import new_request, to_record
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso, merge_patched
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.items import ProfileItem
from chatsphere.models.requests import (
    AnyRecord,
    CorrectionDetails,
    DeactivationDetails,
    DeletionDetails,
    LegalHoldDetails,
    ObjectionDetails,
    RequestDetails,
    RequestItem,
)
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import LegalHold, LegalHoldIn, ObjectablePurpose, Subject, SubjectIn, SubjectPatch


@dataclass(frozen=True)
class SubjectRightsPorts:
    """What correction, objection, deactivation and legal holds touch."""

    subjects: SubjectStore
    keyring: Keyring
    secret: TenantSecret  # a correction's new lookup digests
    settings: SettingsReader  # a record's due date
    events: EventPublisher
    tombstones: Tombstones
    requests: RequestStore  # lifting a hold: the deletion it kept data for
    deletion_jobs: JobQueue[DeletionJob]
    blobs: BlobStore  # a deletion's record, as it is answered


def _cipher(ports: SubjectRightsPorts, tenant_id: str, subject_id: str) -> SubjectCipher:
    """Checked before any write: a subject whose key is gone (shredded) takes no change and leaves no record."""
    cipher = ports.keyring.cipher(tenant_id, subject_id)
    if cipher is None:
        raise ports.tombstones.absent(tenant_id, subject_id)
    return cipher


# What a change makes of the live profile: the fields it sets, and its record's details (None: it changes nothing
# that a record would name, and leaves none).
Change = Callable[[ProfileItem, SubjectCipher], tuple[dict[str, Any], RequestDetails | None]]


def _change_profile(
    ports: SubjectRightsPorts,
    tenant_id: str,
    subject_id: str,
    now: datetime,
    change: Change,
    *,
    if_match: IfMatch = None,
) -> Subject:
    """Change the live profile and write the change's record in the same transaction: the one shape of every
    subject right here. With If-Match, the version it names is the write's own condition."""
    cipher = _cipher(ports, tenant_id, subject_id)
    settings = ports.settings.get_settings(tenant_id)  # once, not on every retry of the change

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem | None]:
        current = ports.tombstones.require(tenant_id, subject_id, existing)
        require(if_match, current.version)  # the write is conditioned on this very version
        fields, details = change(current, cipher)
        if details is None:  # it changes nothing: nothing is written, the version (the ETag) stays
            return current, None
        item = current.model_copy(update={**fields, "updated_at": iso(now), "version": current.version + 1})
        return item, new_request(settings, tenant_id, subject_id, now, details, status="completed")

    item, _ = write_profile(ports.subjects, tenant_id, subject_id, apply, ports.events)
    return open_profile(cipher, item)


def corrected_fields(before: dict[str, Any], after: dict[str, Any]) -> CorrectionDetails | None:
    """A change of profile values: the names of the fields whose value changed, never the values. None if none."""
    changed = sorted(f for f in PROFILE_FIELDS if before.get(f) != after.get(f))
    return CorrectionDetails(fields_changed=changed) if changed else None


def correction(
    settings: TenantSettings,
    tenant_id: str,
    subject_id: str,
    now: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
) -> RequestItem | None:
    """The `correction` record of a PUT that replaces an existing profile's values (as a PATCH leaves one)."""
    details = corrected_fields(before, after)
    return None if details is None else new_request(settings, tenant_id, subject_id, now, details, status="completed")


def correct_subject(
    ports: SubjectRightsPorts,
    tenant_id: str,
    subject_id: str,
    patch: SubjectPatch,
    now: datetime,
    *,
    if_match: IfMatch = None,
) -> Subject:
    """Apply a JSON merge patch (RFC 7396: contact entry by entry, null removes); the result is validated as a PUT
    body is (a pydantic ValidationError, and nothing is written). The record lists the names of the fields whose
    value changed (none: no record)."""
    given = patch.model_dump(mode="json", exclude_unset=True)

    def change(current: ProfileItem, cipher: SubjectCipher) -> tuple[dict[str, Any], RequestDetails | None]:
        before = open_fields(cipher, current.sealed)
        values = merge_patched(SubjectIn, before, given).model_dump()
        fields = {"sealed": seal_fields(cipher, values), "lookups": profile_digests(ports.secret, tenant_id, values)}
        return fields, corrected_fields(before, values)

    return _change_profile(ports, tenant_id, subject_id, now, change, if_match=if_match)


def set_objection(
    ports: SubjectRightsPorts, tenant_id: str, subject_id: str, purpose: ObjectablePurpose, now: datetime, *, on: bool
) -> Subject:
    """Object to a purpose (`on`), or withdraw the objection. One that stands already, or none to withdraw, leaves
    no record."""
    stamp = iso(now)

    def change(current: ProfileItem, _: SubjectCipher) -> tuple[dict[str, Any], RequestDetails | None]:
        objections = dict(current.objections)
        if (purpose in objections) == on:
            return {}, None
        if on:
            objections[purpose] = stamp
        else:
            del objections[purpose]
        action: Literal["object", "withdraw"] = "object" if on else "withdraw"
        return {"objections": objections}, ObjectionDetails(purpose=purpose, action=action, changed=True)

    return _change_profile(ports, tenant_id, subject_id, now, change)


def set_deactivated(ports: SubjectRightsPorts, tenant_id: str, subject_id: str, now: datetime, *, on: bool) -> Subject:
    """Deactivation (`on`) keeps every datum (readable, exportable) but takes no new interactions."""
    status = "deactivated" if on else "active"

    def change(current: ProfileItem, _: SubjectCipher) -> tuple[dict[str, Any], RequestDetails | None]:
        if current.status == status:  # deactivated already, or active already
            return {}, None
        action: Literal["deactivate", "reactivate"] = "deactivate" if on else "reactivate"
        return {"status": status}, DeactivationDetails(action=action, changed=True)

    return _change_profile(ports, tenant_id, subject_id, now, change)


def place_hold(ports: SubjectRightsPorts, tenant_id: str, subject_id: str, body: LegalHoldIn, now: datetime) -> Subject:
    """A legal hold (an exception to erasure): what it covers is kept by any deletion until it is lifted. Its
    record's id names the hold, so the record is made first and the hold is the profile's change."""
    cipher = _cipher(ports, tenant_id, subject_id)
    settings = ports.settings.get_settings(tenant_id)

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = ports.tombstones.require(tenant_id, subject_id, existing)
        details = LegalHoldDetails(action="place", categories=sorted(body.categories), reason=body.reason)
        record = new_request(settings, tenant_id, subject_id, now, details, status="completed")
        hold = LegalHold(
            reason=body.reason, categories=sorted(body.categories), since=now, request_id=record.request_id
        )
        update = {"legal_hold": hold.model_dump(mode="json"), "updated_at": iso(now), "version": current.version + 1}
        return current.model_copy(update=update), record

    item, _ = write_profile(ports.subjects, tenant_id, subject_id, apply, ports.events)
    return open_profile(cipher, item)


def lift_hold(ports: SubjectRightsPorts, tenant_id: str, subject_id: str, now: datetime) -> Subject | AnyRecord:
    """Lift the hold. Returns the subject, or the deletion that erases what the hold kept, if a deletion did:

    - a `restricted` subject (its erasure completed with exceptions), or one still `erasing` for a deletion
      that is closed (failed): the same transaction closes it again for a new deletion that follows the first
      (`details.follows`), and the job is queued (a lost message is re-queued by the monitor);
    - a subject `erasing` for a deletion still open: that one, which finds the hold gone when it completes
      (its completing write is conditioned on the hold) and removes what it kept.

    Both writes change the profile under its version, so a lift and a deletion's completion never both miss
    what the other did: exactly one of them leaves the data to a deletion that is open."""
    settings = ports.settings.get_settings(tenant_id)
    opened: list[RequestItem] = []

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, list[RequestItem]]:
        opened.clear()
        if existing is None:
            raise ports.tombstones.absent(tenant_id, subject_id)
        if existing.legal_hold is None:
            raise NotFound("the subject has no legal hold")
        categories = LegalHold.model_validate(existing.legal_hold).categories
        lift = new_request(
            settings,
            tenant_id,
            subject_id,
            now,
            LegalHoldDetails(action="lift", categories=list(categories)),
            status="completed",
        )
        update: dict[str, object] = {"legal_hold": None, "updated_at": iso(now), "version": existing.version + 1}
        if _kept_by_closed_deletion(ports.requests, existing):
            follow = new_request(
                settings,
                tenant_id,
                subject_id,
                now,
                DeletionDetails(initiated_by="hold_lifted", follows=existing.deletion_request_id),
            )
            update.update(status="erasing", deletion_request_id=follow.request_id)
            opened.append(follow)
        return existing.model_copy(update=update), [lift, *opened]

    item, _ = write_profile(ports.subjects, tenant_id, subject_id, apply, ports.events)
    if opened:
        ports.deletion_jobs.send(DeletionJob.for_request(opened[0]))
        return to_record(ports.blobs, opened[0], now)
    if item.status == "erasing" and item.deletion_request_id is not None:
        running = ports.requests.get(tenant_id, item.deletion_request_id)
        if running is not None:
            return to_record(ports.blobs, running, now)
    return open_profile(ports.keyring.cipher(tenant_id, subject_id), item)


def _kept_by_closed_deletion(requests: RequestStore, profile: ProfileItem) -> bool:
    """Whether data a deletion left is waiting on this hold alone: the subject is restricted, or still closed for
    a deletion that is no longer open (it failed; or it completed with exceptions before `restricted` existed)."""
    if profile.status == "restricted":
        return True
    if profile.status != "erasing" or profile.deletion_request_id is None:
        return False
    record = requests.get(profile.tenant_id, profile.deletion_request_id)
    return record is not None and not record.is_open
