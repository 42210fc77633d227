"""What the DAL stores and returns: personal values only ever as AES-GCM ciphertext (bytes)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from chatsphere.models.subjects import Role, SubjectStatus

IdentifierKind = Literal["email", "phone"]


# "erasing": a deletion was accepted; from that write on, the subject takes no change of any kind.
# "restricted" (in SubjectStatus): the deletion completed with exceptions, set by its completing write.
ProfileStatus = SubjectStatus | Literal["erasing"]


class ProfileItem(BaseModel):
    tenant_id: str
    subject_id: str
    status: ProfileStatus = "active"
    deletion_request_id: str | None = Field(default=None, description="The deletion, while erasing or restricted")
    legal_hold: dict[str, object] | None = Field(default=None, description="models.subjects.LegalHold, as stored")
    created_at: str
    updated_at: str
    active_at: str | None = Field(
        default=None,
        description="The latest interaction retention has seen (it sets this); None: measured from created_at",
    )
    version: int = 0
    sealed: dict[str, bytes] = Field(default_factory=dict, description="field name -> ciphertext")
    lookups: dict[IdentifierKind, str] = Field(default_factory=dict, description="kind -> keyed-hash digest")
    objections: dict[str, str] = Field(default_factory=dict, description="purpose -> since (ISO time)")
    accepted_policies: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="policy version -> {accepted_at, interaction_id}"
    )


class InteractionItem(BaseModel):
    tenant_id: str
    subject_id: str
    interaction_id: str
    conversation_id: str
    role: Role
    channel: str | None = None
    occurred_at: str
    received_at: str
    text_bytes: int
    text_sealed: bytes | None = Field(default=None, description="inline ciphertext, for text up to 32 KiB")
    text_blob_key: str | None = Field(default=None, description="S3 key of the ciphertext, for longer text")
    policy_version: str | None = Field(default=None, description="The policy version in force at occurred_at")


class TenantItem(BaseModel):
    tenant_id: str
    name: str
    created_at: str
    hmac_key_wrapped: bytes | None = Field(
        default=None, description="KMS-wrapped secret for the identifier lookup index; destroyed by an offboarding"
    )
    status: Literal["active", "offboarded"] = "active"
    offboarded_at: str | None = None


# A key's public name: the first hex digits of its hash (the sk's), enough to tell a tenant's keys apart.
KEY_ID_LENGTH = 12


class ApiKeyItem(BaseModel):
    """TenantsTable, sk = APIKEY#<sha256 of the key>: the key itself is never stored."""

    tenant_id: str
    key_hash: str
    created_at: str
    status: Literal["active", "revoked"] = "active"
    revoked_at: str | None = None

    @property
    def key_id(self) -> str:
        return self.key_hash[:KEY_ID_LENGTH]


class TombstoneItem(BaseModel):
    """What remains of a deleted subject (RequestsTable, sk = TOMB#<subject_hash>): no identifier, only its
    keyed hash. `completed_at` is None while the erasure runs."""

    tenant_id: str
    subject_hash: str
    request_id: str
    started_at: str
    deleted_at: str | None = None
    sealed_subject_id: bytes | None = Field(
        default=None,
        description="The subject id, AES-GCM sealed under a key derived from the tenant's secret, until the orphan "
        "sweep (logic/sweep.py) has run once the erasure settled; then removed",
    )


class ProfileAdmission(BaseModel):
    """What a new profile's create transaction checks and writes beside it (SubjectStore.save_profile), so that
    an erased id is refused and the subject's data key is made in the same all-or-nothing write: no key is
    ever left for a subject that was refused, and no profile without its key."""

    subject_hash: str = Field(description="The keyed hash naming the subject's tombstone (logic/tombstones)")
    reuse_deleted_id: bool = Field(description="A completed erasure's tombstone does not refuse the id")
    wrapped_key: bytes | None = Field(
        description="The subject's new KMS-wrapped data key, created only if it has none; None: its stored key"
    )
    key_created_at: str


class PolicyItem(BaseModel):
    tenant_id: str
    version: str
    effective_at: str
    url: str
    sha256: str
    published_at: str
    announced: bool = False
