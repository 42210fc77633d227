"""Intake: subjects' profiles and interactions, stored sealed under the subject's own data key."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chatsphere.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    PayloadTooLarge,
)
from chatsphere.logic import cursors, idempotency
from chatsphere.logic.codec import (
    identifier_digest,
    interaction_field,
    open_fields,
    open_interaction,
    open_profile,
    profile_digests,
    seal_fields,
    write_profile,
)
from chatsphere.logic.crypto import Keyring
from chatsphere.logic.object_keys import interaction_blob_key
from chatsphere.logic.ports import (
    BlobStore,
    DataKeyStore,
    EventPublisher,
    PolicyStore,
    SettingsReader,
    SubjectStore,
    TenantSecret,
)
from chatsphere.logic.preconditions import IfMatch, require
from chatsphere.logic.subject_rights import correction
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import PAGE_BYTE_BUDGET, iso, response_bytes
from chatsphere.models.items import IdentifierKind, InteractionItem, ProfileAdmission, ProfileItem
from chatsphere.models.refs import InteractionPosition
from chatsphere.models.requests import RequestItem
from chatsphere.models.subjects import (
    MAX_TEXT_BYTES,
    MAX_TEXT_RESPONSE_BYTES,
    Interaction,
    InteractionCreated,
    InteractionIn,
    InteractionPage,
    LookupIn,
    LookupResult,
    Subject,
    SubjectIn,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

INLINE_TEXT_BYTES = 32 * 1024  # longer text goes to S3, transparently to callers
MAX_ESCAPE_GROWTH = 7  # the most a UTF-8 byte grows in a response: a control character, \u0001 escaped once more


@dataclass(frozen=True)
class IntakePorts:
    """What subjects, interactions and lookups touch."""

    subjects: SubjectStore
    keyring: Keyring
    data_keys: DataKeyStore  # a lookup's check that each subject found still has its key
    blobs: BlobStore  # long texts
    secret: TenantSecret  # identifier digests, cursors, idempotent bodies
    settings: SettingsReader  # a correction record's due date
    policies: PolicyStore  # the policy version in force when an interaction occurred
    events: EventPublisher
    tombstones: Tombstones
    # (tenant id, subject id) -> Powertools' persistence layer for that subject's idempotency records (the DAL's)
    idempotency_layer: Callable[[str, str], BasePersistenceLayer]


# ------------------------------------------------------------------ subjects
def put_subject(
    ports: IntakePorts,
    tenant_id: str,
    subject_id: str,
    body: SubjectIn,
    now: datetime,
    *,
    reuse_deleted_id: bool = False,
    if_match: IfMatch = None,
) -> tuple[Subject, bool]:
    """Create or replace the whole profile (status and objections stay). Returns it and whether it was created.

    Replacing values of an existing profile is a correction in substance: it leaves the same `correction`
    record as PATCH (the names of the fields changed), in the profile's own transaction. With If-Match, the
    version it names is the write's own condition (`*`: the profile must exist); a failed one creates nothing.

    An erased subject's id is not created again (a retry or a replay must not resurrect it) unless the caller
    says that a new person reuses the id: that subject gets a fresh key and shares nothing with the old one."""
    stamp = iso(now)
    existing = ports.subjects.get_profile(tenant_id, subject_id)
    if existing is not None or if_match is not None:  # a new one is admitted by its own create transaction
        _admit(ports.tombstones, tenant_id, subject_id, existing, reuse_deleted_id)
    require(if_match, existing.version if existing else None)
    values = body.model_dump()
    keyed = _Sealed(ports.keyring, ports.tombstones, tenant_id, subject_id, values, new=existing is None)
    lookups = profile_digests(ports.secret, tenant_id, values)
    settings = ports.settings.get_settings(tenant_id) if existing is not None else None
    admission = ProfileAdmission(
        subject_hash=ports.tombstones.hash(tenant_id, subject_id),
        reuse_deleted_id=reuse_deleted_id,
        wrapped_key=None,
        key_created_at=stamp,
    )
    attempts = 0

    def replace(current: ProfileItem | None) -> tuple[ProfileItem, RequestItem | None]:
        nonlocal attempts
        attempts += 1
        if attempts > 1:  # refused: the profile changed, or the create's tombstone check or key put failed
            _admit(ports.tombstones, tenant_id, subject_id, current, reuse_deleted_id)
            keyed.refresh(current)
        require(if_match, current.version if current else None)  # the write is conditioned on this version
        base = current or ProfileItem(tenant_id=tenant_id, subject_id=subject_id, created_at=stamp, updated_at=stamp)
        record = None
        if current is not None:
            before = open_fields(keyed.cipher, current.sealed)
            record = correction(
                settings or ports.settings.get_settings(tenant_id), tenant_id, subject_id, now, before, values
            )
            if record is None:  # the same values: nothing is written, the version (the ETag) and updated_at stay
                return current, None
        return base.model_copy(
            update={"updated_at": stamp, "version": base.version + 1, "sealed": keyed.sealed, "lookups": lookups}
        ), record

    item, created = write_profile(
        ports.subjects,
        tenant_id,
        subject_id,
        replace,
        ports.events,
        read=existing,
        admission=lambda: admission.model_copy(update={"wrapped_key": keyed.fresh}),
    )
    return open_profile(keyed.cipher, item), created


def _admit(
    tombstones: Tombstones, tenant_id: str, subject_id: str, existing: ProfileItem | None, reuse_deleted_id: bool
) -> None:
    if existing is None:
        tombstones.may_create(tenant_id, subject_id, reuse_deleted_id)
    else:
        tombstones.require(tenant_id, subject_id, existing)


class _Sealed:
    """A PUT's values sealed under the key they are stored with: an existing subject's stored key, or for a new
    subject a fresh one (`fresh`, wrapped) that its create transaction stores if the subject has none, so that no
    key is read or stored before that write (SubjectStore.save_profile's admission)."""

    def __init__(
        self,
        keyring: Keyring,
        tombstones: Tombstones,
        tenant_id: str,
        subject_id: str,
        values: dict[str, Any],
        new: bool,
    ) -> None:
        self.keyring, self.tombstones, self.tenant_id, self.subject_id = keyring, tombstones, tenant_id, subject_id
        self.values = values
        self.fresh: bytes | None = None
        if new:
            self.cipher, self.fresh = keyring.new(tenant_id, subject_id)
        else:  # a profile whose key is gone is a restored copy of an erased subject's: no new key revives it
            found = keyring.cipher(tenant_id, subject_id)
            if found is None:
                raise tombstones.absent(tenant_id, subject_id)
            self.cipher = found
        self.sealed = seal_fields(self.cipher, values)

    def refresh(self, current: ProfileItem | None) -> None:
        """After a refused write, with the profile read again (`current`): values sealed under the stored key of
        a profile still there stay; else they are sealed under the key the subject has now (a concurrent
        creator's, or one an earlier attempt left), or, while it has neither key nor profile, a fresh key."""
        if current is not None and self.fresh is None:
            return
        stored = self.keyring.cipher(self.tenant_id, self.subject_id)
        if stored is not None:
            self.cipher, self.fresh = stored, None
        elif current is not None:  # a profile without its key: a restored copy of an erased subject's
            raise self.tombstones.absent(self.tenant_id, self.subject_id)
        elif self.fresh is None:
            self.cipher, self.fresh = self.keyring.new(self.tenant_id, self.subject_id)
        else:
            return
        self.sealed = seal_fields(self.cipher, self.values)


def get_subject(ports: IntakePorts, tenant_id: str, subject_id: str) -> Subject:
    profile = ports.subjects.get_profile(tenant_id, subject_id)
    item = ports.tombstones.require(tenant_id, subject_id, profile, reading=True)
    cipher = ports.keyring.cipher(tenant_id, subject_id)
    if cipher is None:  # a profile whose key is gone: a restored shell of an erased subject, or a broken one
        raise ports.tombstones.absent(tenant_id, subject_id)
    return open_profile(cipher, item)


def lookup_subjects(ports: IntakePorts, tenant_id: str, body: LookupIn) -> LookupResult:
    """The subjects whose identifier matches. A subject whose data key is gone is not one: its lookup item is
    a restored copy of an erased subject's (until `chatsphere reconcile` removes it), or an erasure runs."""
    kind: IdentifierKind = "email" if body.email is not None else "phone"
    value = body.email if body.email is not None else body.phone
    assert value is not None  # LookupIn guarantees exactly one
    found = ports.subjects.find_subjects(tenant_id, kind, identifier_digest(ports.secret, tenant_id, kind, value))
    return LookupResult(subject_ids=[s for s in found if ports.data_keys.get(tenant_id, s) is not None])


# -------------------------------------------------------------- interactions
def _require_active(ports: IntakePorts, tenant_id: str, subject_id: str) -> ProfileItem:
    profile = ports.tombstones.require(tenant_id, subject_id, ports.subjects.get_profile(tenant_id, subject_id))
    if profile.status != "active":
        raise Conflict("the subject is deactivated; it takes no new interactions")
    return profile


def add_interaction(
    ports: IntakePorts, tenant_id: str, subject_id: str, body: InteractionIn, now: datetime
) -> InteractionCreated:
    occurred = body.occurred_at or now
    if occurred > now:
        raise InvalidInput("occurred_at lies in the future")
    text = body.text.encode()
    if len(text) > MAX_TEXT_BYTES:
        raise PayloadTooLarge(f"text is {len(text)} bytes; the limit is {MAX_TEXT_BYTES}")
    # Measured only if it might not fit: the most a text can take is 7 bytes per byte and its quotes (4 bytes).
    might_not_fit = (len(text) + 1) * MAX_ESCAPE_GROWTH > MAX_TEXT_RESPONSE_BYTES
    if might_not_fit and response_bytes(body.text) > MAX_TEXT_RESPONSE_BYTES:
        raise PayloadTooLarge(
            f"text takes more than {MAX_TEXT_RESPONSE_BYTES} bytes once JSON-escaped (control characters take 6 or 7"
            " each): it would not fit in a page"
        )
    profile = _require_active(ports, tenant_id, subject_id)
    cipher = ports.keyring.cipher(tenant_id, subject_id)
    if cipher is None:
        raise ports.tombstones.absent(tenant_id, subject_id)
    interaction_id = uuid.uuid4().hex
    stamp = iso(occurred)
    policy = ports.policies.policy_in_force(tenant_id, stamp)
    sealed = cipher.seal(interaction_field(interaction_id), text)
    blob_key, blob_version = None, None
    if len(text) > INLINE_TEXT_BYTES:
        blob_key = interaction_blob_key(tenant_id, subject_id, interaction_id)
        blob_version = ports.blobs.put(blob_key, sealed)
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
    try:
        ports.subjects.add_interaction(item, accepts=accepts)
    except Conflict:
        # Refused (the subject was deactivated or erased since it was read): the text written for it goes too,
        # exactly the version this call wrote, so that no object outlives the refusal, under an erased subject's
        # prefix least of all. Only on a refusal: after any other error the write may have committed.
        if blob_key is not None and blob_version is not None:
            ports.blobs.delete_version(blob_key, blob_version)
        raise
    return InteractionCreated(interaction_id=interaction_id, occurred_at=datetime.fromisoformat(item.occurred_at))


def _cursor_scope(subject_id: str) -> str:
    return f"interactions\n{subject_id}"


# A cursor's position reads as the interaction's sort key did when cursors named it (I#<occurred_at>#<id>), so that
# cursors issued before still name the same place; it is the cursor's own text now, which no store reads.
POSITION_PREFIX = "I#"


def _position_text(position: InteractionPosition) -> str:
    return f"{POSITION_PREFIX}{position.occurred_at}#{position.interaction_id}"


def _position(text: str) -> InteractionPosition:
    occurred_at, sep, interaction_id = text.removeprefix(POSITION_PREFIX).partition("#")
    if not text.startswith(POSITION_PREFIX) or not sep:  # signed by us, so never; but never a wrong page either
        raise DomainError("cursor is not one this API returned for this listing")
    return InteractionPosition(occurred_at, interaction_id)


def list_interactions(
    ports: IntakePorts, tenant_id: str, subject_id: str, limit: int, cursor: str | None
) -> InteractionPage:
    scope = _cursor_scope(subject_id)
    after = _position(cursors.verify(ports.secret(tenant_id), scope, cursor)) if cursor else None
    ports.tombstones.require(tenant_id, subject_id, ports.subjects.get_profile(tenant_id, subject_id), reading=True)
    cipher = ports.keyring.cipher(tenant_id, subject_id)
    if cipher is None:
        raise ports.tombstones.absent(tenant_id, subject_id)
    stored, last = ports.subjects.list_interactions(tenant_id, subject_id, limit, after)
    items: list[Interaction] = []
    size = 0
    for item in stored:
        # A page ends before its items would take more than the budget, with at least one item (any stored one
        # fits: MAX_TEXT_RESPONSE_BYTES); the text's UTF-8 size is a lower bound of its size in the response, so
        # a text that cannot fit is not even read.
        if items and size + item.text_bytes > PAGE_BYTE_BUDGET:
            break
        opened = open_interaction(ports.blobs, cipher, item)
        cost = response_bytes(opened) + 1  # and its comma
        if items and size + cost > PAGE_BYTE_BUDGET:
            break
        items.append(opened)
        size += cost
    if len(items) < len(stored):  # the next page starts at the first one left out
        cut = stored[len(items) - 1]
        last = InteractionPosition(cut.occurred_at, cut.interaction_id)
    return InteractionPage(
        items=items, next_cursor=cursors.sign(ports.secret(tenant_id), scope, _position_text(last)) if last else None
    )


# ---------------------------------------------------------------- idempotency
def add_interaction_once(
    ports: IntakePorts, tenant_id: str, subject_id: str, idempotency_key: str, body: InteractionIn, now: datetime
) -> InteractionCreated:
    """add_interaction, at most once per (tenant, subject, Idempotency-Key) (logic/idempotency.at_most_once)."""

    def run() -> dict[str, Any]:
        created = add_interaction(ports, tenant_id, subject_id, body, now)
        return created.model_dump(mode="json")  # ids and a timestamp only: this is what the idempotency record keeps

    digest = idempotency.body_digest(ports.secret(tenant_id), body)
    request = idempotency.KeyedRequest(
        tenant_id=tenant_id, subject_id=subject_id, idempotency_key=idempotency_key, body_digest=digest
    )
    layer = ports.idempotency_layer(tenant_id, subject_id)
    return InteractionCreated.model_validate(idempotency.at_most_once(layer, "interaction", request, run))
