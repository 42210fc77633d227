"""The ports logic talks to. The DAL implements them over AWS; unit tests implement them in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chatsphere.models.items import ApiKeyItem, IdentifierKind, InteractionItem, ProfileItem, TenantItem


class KeyWrapper(Protocol):
    def generate(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        """A fresh 256-bit data key: (plaintext, wrapped)."""
        ...

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes: ...


class SubjectKeyStore(Protocol):
    def get(self, tenant_id: str, subject_id: str) -> bytes | None: ...

    def put_if_absent(self, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> bool: ...


class SubjectStore(Protocol):
    def get_profile(self, tenant_id: str, subject_id: str) -> ProfileItem | None: ...

    def save_profile(self, profile: ProfileItem, expected_version: int | None) -> None: ...

    def find_subjects(self, tenant_id: str, kind: IdentifierKind, digest: str) -> list[str]: ...

    def add_interaction(self, item: InteractionItem) -> None: ...

    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after_sk: str | None
    ) -> tuple[list[InteractionItem], str | None]: ...


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class TenantStore(Protocol):
    def get_tenant(self, tenant_id: str) -> TenantItem | None: ...

    def get_api_key(self, tenant_id: str, key_hash: str) -> ApiKeyItem | None: ...

    def create_tenant(self, tenant: TenantItem, api_key: ApiKeyItem) -> None: ...


@dataclass(frozen=True)
class Ports:
    subjects: SubjectStore
    subject_keys: SubjectKeyStore
    kms: KeyWrapper
    blobs: BlobStore
    tenants: TenantStore
    hmac_key: Callable[[str], bytes]  # tenant id -> the tenant's identifier-HMAC secret
