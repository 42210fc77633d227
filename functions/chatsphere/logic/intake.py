"""Intake: subjects' profiles and interactions, stored sealed under the subject's own data key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from pydantic import BaseModel

from chatsphere.dal.keys import interaction_blob_key
from chatsphere.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from chatsphere.logic import cursors
from chatsphere.logic.crypto import SubjectCipher, ensure_cipher, keyed_digest, load_cipher
from chatsphere.logic.ports import Ports
from chatsphere.models.common import iso
from chatsphere.models.items import IdentifierKind, InteractionItem, ProfileItem, RequestItem
from chatsphere.models.subjects import (
    MAX_TEXT_BYTES,
    Interaction,
    InteractionCreated,
    InteractionIn,
    InteractionPage,
    LookupIn,
    LookupResult,
    Subject,
    SubjectIn,
    processing_for,
)

INLINE_TEXT_BYTES = 32 * 1024  # longer text goes to S3, transparently to callers
PROFILE_FIELDS = ("name", "email", "phone", "contact")
SAVE_ATTEMPTS = 3


def lookup_form(kind: IdentifierKind, value: str) -> str:
    """What the keyed hash covers: e-mail compared case-insensitively, phone as E.164."""
    return value.casefold() if kind == "email" else value


def _digest(ports: Ports, tenant_id: str, kind: IdentifierKind, value: str) -> str:
    return keyed_digest(ports.hmac_key(tenant_id), kind, lookup_form(kind, value))


# ------------------------------------------------------------------ subjects
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
    return Subject(
        subject_id=item.subject_id,
        status=item.status,
        objections=objections,
        processing=processing_for(objections),
        created_at=datetime.fromisoformat(item.created_at),
        updated_at=datetime.fromisoformat(item.updated_at),
        **fields,
    )


def profile_digests(ports: Ports, tenant_id: str, values: dict[str, Any]) -> dict[IdentifierKind, str]:
    kinds: tuple[IdentifierKind, ...] = ("email", "phone")
    return {k: _digest(ports, tenant_id, k, values[k]) for k in kinds if values.get(k) is not None}


ProfileChange = Callable[[ProfileItem | None], tuple[ProfileItem, RequestItem | None]]


def write_profile(ports: Ports, tenant_id: str, subject_id: str, change: ProfileChange) -> tuple[ProfileItem, bool]:
    """Read, change, write with a version check; on a concurrent write, re-read and re-apply.

    `change` gets the stored profile (None if new) and returns the new one and, optionally, the
    request record to write in the same transaction. Returns the profile written and whether it was new."""
    for _ in range(SAVE_ATTEMPTS):
        existing = ports.subjects.get_profile(tenant_id, subject_id)
        item, record = change(existing)
        try:
            ports.subjects.save_profile(item, existing.version if existing else None, record)
        except Conflict:
            continue
        return item, existing is None
    raise Conflict("the subject is being changed concurrently; retry")


def put_subject(ports: Ports, tenant_id: str, subject_id: str, body: SubjectIn, now: datetime) -> tuple[Subject, bool]:
    """Create or replace the whole profile (status and objections stay). Returns it and whether it was created."""
    stamp = iso(now)
    cipher = ensure_cipher(ports, tenant_id, subject_id, stamp)
    sealed = seal_fields(cipher, body.model_dump())
    lookups = profile_digests(ports, tenant_id, body.model_dump())

    def replace(existing: ProfileItem | None) -> tuple[ProfileItem, None]:
        base = existing or ProfileItem(tenant_id=tenant_id, subject_id=subject_id, created_at=stamp, updated_at=stamp)
        return base.model_copy(
            update={"updated_at": stamp, "version": base.version + 1, "sealed": sealed, "lookups": lookups}
        ), None

    item, created = write_profile(ports, tenant_id, subject_id, replace)
    return open_profile(cipher, item), created


def get_subject(ports: Ports, tenant_id: str, subject_id: str) -> Subject:
    item = ports.subjects.get_profile(tenant_id, subject_id)
    if item is None:
        raise NotFound("no such subject")
    return open_profile(load_cipher(ports, tenant_id, subject_id), item)


def lookup_subjects(ports: Ports, tenant_id: str, body: LookupIn) -> LookupResult:
    kind: IdentifierKind = "email" if body.email is not None else "phone"
    value = body.email if body.email is not None else body.phone
    assert value is not None  # LookupIn guarantees exactly one
    return LookupResult(
        subject_ids=ports.subjects.find_subjects(tenant_id, kind, _digest(ports, tenant_id, kind, value))
    )


# -------------------------------------------------------------- interactions
def _require_active(ports: Ports, tenant_id: str, subject_id: str) -> ProfileItem:
    profile = ports.subjects.get_profile(tenant_id, subject_id)
    if profile is None:
        raise NotFound("no such subject")
    if profile.status != "active":
        raise Conflict("the subject is deactivated; it takes no new interactions")
    return profile


def add_interaction(
    ports: Ports, tenant_id: str, subject_id: str, body: InteractionIn, now: datetime
) -> InteractionCreated:
    occurred = body.occurred_at or now
    if occurred > now:
        raise InvalidInput("occurred_at lies in the future")
    try:
        iso(occurred)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 lies before the year 1 in UTC
        raise InvalidInput("occurred_at lies before the year 1") from None
    text = body.text.encode()
    if len(text) > MAX_TEXT_BYTES:
        raise PayloadTooLarge(f"text is {len(text)} bytes; the limit is {MAX_TEXT_BYTES}")
    profile = _require_active(ports, tenant_id, subject_id)
    cipher = load_cipher(ports, tenant_id, subject_id)
    if cipher is None:
        raise NotFound("no such subject")
    interaction_id = uuid.uuid4().hex
    stamp = iso(occurred)
    policy = ports.tenants.policy_in_force(tenant_id, stamp)
    sealed = cipher.seal(f"interaction:{interaction_id}", text)
    blob_key = None
    if len(text) > INLINE_TEXT_BYTES:
        blob_key = interaction_blob_key(tenant_id, subject_id, interaction_id)
        ports.blobs.put(blob_key, sealed)
    item = InteractionItem(
        tenant_id=tenant_id,
        subject_id=subject_id,
        interaction_id=interaction_id,
        conversation_id=body.conversation_id,
        role=body.role,
        channel=body.channel,
        occurred_at=stamp,
        received_at=iso(now),
        text_bytes=len(text),
        text_sealed=None if blob_key else sealed,
        text_blob_key=blob_key,
        policy_version=policy.version if policy else None,
    )
    # The first interaction after a version takes effect records its acceptance by continued use.
    accepts = item.policy_version if item.policy_version not in profile.accepted_policies else None
    ports.subjects.add_interaction(item, accepts=accepts)
    return InteractionCreated(interaction_id=interaction_id, occurred_at=datetime.fromisoformat(item.occurred_at))


def open_interaction(ports: Ports, cipher: SubjectCipher, item: InteractionItem) -> Interaction:
    sealed = item.text_sealed if item.text_blob_key is None else ports.blobs.get(item.text_blob_key)
    if sealed is None:
        raise RuntimeError("interaction has neither inline nor stored text")
    return Interaction(
        interaction_id=item.interaction_id,
        conversation_id=item.conversation_id,
        role=item.role,
        text=cipher.open_text(f"interaction:{item.interaction_id}", sealed),
        occurred_at=datetime.fromisoformat(item.occurred_at),
        channel=item.channel,
        policy_version=item.policy_version,
    )


def _cursor_scope(subject_id: str) -> str:
    return f"interactions\n{subject_id}"


def list_interactions(ports: Ports, tenant_id: str, subject_id: str, limit: int, cursor: str | None) -> InteractionPage:
    scope = _cursor_scope(subject_id)
    after = cursors.verify(ports.hmac_key(tenant_id), scope, cursor) if cursor else None
    if ports.subjects.get_profile(tenant_id, subject_id) is None:
        raise NotFound("no such subject")
    cipher = load_cipher(ports, tenant_id, subject_id)
    if cipher is None:
        raise NotFound("no such subject")
    items, next_sk = ports.subjects.list_interactions(tenant_id, subject_id, limit, after)
    return InteractionPage(
        items=[open_interaction(ports, cipher, i) for i in items],
        next_cursor=cursors.sign(ports.hmac_key(tenant_id), scope, next_sk) if next_sk else None,
    )


# ---------------------------------------------------------------- idempotency
class InteractionRequest(BaseModel):
    """What an Idempotency-Key covers: the key names the request, the body must match on retry."""

    tenant_id: str
    subject_id: str
    idempotency_key: str
    body: InteractionIn


IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[tenant_id, subject_id, idempotency_key]",
    payload_validation_jmespath="body",
    hash_function="sha256",
    expires_after_seconds=24 * 3600,
)


def _record_interaction(*, request: InteractionRequest, ports: Ports, now: datetime) -> dict[str, Any]:
    created = add_interaction(ports, request.tenant_id, request.subject_id, request.body, now)
    return created.model_dump(mode="json")  # ids and a timestamp only: this is what the idempotency record keeps


def add_interaction_once(
    store: BasePersistenceLayer, ports: Ports, request: InteractionRequest, now: datetime
) -> InteractionCreated:
    """add_interaction, at most once per (tenant, subject, Idempotency-Key); a retry gets the first answer."""
    once = idempotent_function(
        data_keyword_argument="request",
        persistence_store=store,
        config=IDEMPOTENCY,
        key_prefix=f"T#{request.tenant_id}#interaction",  # idempotency keys begin with the tenant too
    )(_record_interaction)
    return InteractionCreated.model_validate(once(request=request, ports=ports, now=now))
