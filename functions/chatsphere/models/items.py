"""What the DAL stores and returns: personal values only ever as AES-GCM ciphertext (bytes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

IdentifierKind = Literal["email", "phone"]


class ProfileItem(BaseModel):
    tenant_id: str
    subject_id: str
    status: Literal["active", "deactivated"] = "active"
    created_at: str
    updated_at: str
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
    role: Literal["customer", "agent", "bot"]
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
    hmac_key_wrapped: bytes = Field(description="KMS-wrapped secret for the identifier lookup index")


class ApiKeyItem(BaseModel):
    tenant_id: str
    key_hash: str
    created_at: str
    status: Literal["active", "revoked"] = "active"


class RequestItem(BaseModel):
    """A rights request as stored (RequestsTable, pk = T#<tenant>, sk = R#<request_id>)."""

    tenant_id: str
    request_id: str
    type: Literal["export", "correction", "objection", "deactivation", "erasure"]
    subject_id: str
    status: Literal["received", "in_progress", "completed", "completed_with_exceptions", "rejected", "failed"]
    received_at: str
    due_at: str
    completed_at: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("received", "in_progress")


class PolicyItem(BaseModel):
    tenant_id: str
    version: str
    effective_at: str
    url: str
    sha256: str
    published_at: str
    announced: bool = False
