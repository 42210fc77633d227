"""The profile and interaction codec, shared by intake, subject rights, export and deletion: how a
subject's values are sealed into stored items and opened again, and the version-checked profile write."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chatsphere.errors import Conflict, NotFound
from chatsphere.logic.crypto import SubjectCipher, keyed_digest
from chatsphere.logic.ports import BlobStore, EventPublisher, SubjectStore, TenantSecret
from chatsphere.logic.requests import publish_status
from chatsphere.models.items import IdentifierKind, InteractionItem, ProfileAdmission, ProfileItem
from chatsphere.models.requests import RequestItem, as_records
from chatsphere.models.subjects import Interaction, LegalHold, Subject, email_lookup_form, processing_for

PROFILE_FIELDS = ("name", "email", "phone", "contact")
IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = ("email", "phone")
SAVE_ATTEMPTS = 3


# ------------------------------------------------------------------ identifiers
def lookup_form(kind: IdentifierKind, value: str) -> str:
    """What the keyed hash covers: an e-mail address in its lookup form (models/subjects), a phone as E.164."""
    return email_lookup_form(value) if kind == "email" else value


def identifier_digest(secret: TenantSecret, tenant_id: str, kind: IdentifierKind, value: str) -> str:
    return keyed_digest(secret(tenant_id), kind, lookup_form(kind, value))


def profile_digests(secret: TenantSecret, tenant_id: str, values: dict[str, Any]) -> dict[IdentifierKind, str]:
    return {
        k: identifier_digest(secret, tenant_id, k, values[k]) for k in IDENTIFIER_KINDS if values.get(k) is not None
    }


# --------------------------------------------------------------------- profiles
def seal_fields(cipher: SubjectCipher, values: dict[str, Any]) -> dict[str, bytes]:
    """Each profile field sealed on its own (bound to its name); absent and null fields are not stored."""
    return {f: cipher.seal(f, json.dumps(values[f]).encode()) for f in PROFILE_FIELDS if values.get(f) is not None}


def open_fields(cipher: SubjectCipher, sealed: dict[str, bytes]) -> dict[str, Any]:
    return {f: json.loads(cipher.open(f, blob)) for f, blob in sealed.items()}


def open_profile(cipher: SubjectCipher | None, item: ProfileItem) -> Subject:
    if cipher is None:  # key shredded: the data is gone, whatever rows remain
        raise NotFound("no such subject")
    fields = open_fields(cipher, item.sealed)
    objections = sorted(item.objections)
    subject = Subject(
        subject_id=item.subject_id,
        status=item.status,
        objections=objections,
        processing=processing_for(objections),
        created_at=datetime.fromisoformat(item.created_at),
        updated_at=datetime.fromisoformat(item.updated_at),
        legal_hold=LegalHold.model_validate(item.legal_hold) if item.legal_hold else None,
        **fields,
    )
    subject._version = item.version
    return subject


ProfileChange = Callable[[ProfileItem | None], tuple[ProfileItem, RequestItem | list[RequestItem] | None]]


class _Unread:
    """write_profile's default `read`: the profile is read by the first attempt."""


UNREAD = _Unread()


def write_profile(
    subjects: SubjectStore,
    tenant_id: str,
    subject_id: str,
    change: ProfileChange,
    events: EventPublisher | None = None,
    *,
    read: ProfileItem | _Unread | None = UNREAD,
    admission: Callable[[], ProfileAdmission] | None = None,
) -> tuple[ProfileItem, bool]:
    """Read, change, write with a version check; on a concurrent write, re-read and re-apply.

    `change` gets the stored profile (None if new) and returns the new one and, optionally, the
    request record(s) to write in the same transaction, whose status is then published on `events` (a change
    that returns records must pass it). Returns the profile written and whether it was new.

    `read`: the profile the caller has just read (consistently), which the first attempt changes instead of
    reading it again; an attempt after a conflict reads it. `admission`: called after `change` whenever the
    profile is new, what its create transaction must check and write beside it (SubjectStore.save_profile).

    A change that returns the stored profile itself (`existing`, the same object) changes nothing: nothing is
    written and its version and updated_at stay, so that another writer's If-Match still holds."""
    for attempt in range(SAVE_ATTEMPTS):
        existing = subjects.get_profile(tenant_id, subject_id) if attempt or isinstance(read, _Unread) else read
        item, record = change(existing)
        if existing is not None and item is existing:
            if record:
                raise TypeError("a change that writes nothing leaves no record")
            return existing, False
        expected = existing.version if existing else None
        try:
            if existing is None and admission is not None:
                subjects.save_profile(item, expected, record, admission=admission())
            else:
                subjects.save_profile(item, expected, record)
        except Conflict:
            continue
        for written in as_records(record):
            if events is None:
                raise TypeError("a profile change that writes a request record must be given the event publisher")
            publish_status(events, written, datetime.fromisoformat(written.received_at), retried=False)
        return item, existing is None
    raise Conflict("the subject is being changed concurrently; retry")


# ----------------------------------------------------------------- interactions
def interaction_field(interaction_id: str) -> str:
    """The associated-data name that binds an interaction's text to its id."""
    return f"interaction:{interaction_id}"


def open_interaction(blobs: BlobStore, cipher: SubjectCipher, item: InteractionItem) -> Interaction:
    sealed = item.text_sealed if item.text_blob_key is None else blobs.get(item.text_blob_key)
    if sealed is None:
        raise RuntimeError("interaction has neither inline nor stored text")
    return Interaction(
        interaction_id=item.interaction_id,
        conversation_id=item.conversation_id,
        role=item.role,
        text=cipher.open_text(interaction_field(item.interaction_id), sealed),
        occurred_at=datetime.fromisoformat(item.occurred_at),
        channel=item.channel,
        policy_version=item.policy_version,
    )
