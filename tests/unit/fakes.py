"""In-memory implementations of the ports in chatsphere/logic/ports.py, with the DAL's semantics.

They keep what the DynamoDB, S3 and KMS adapters promise: version-guarded profile writes that raise
Conflict, interactions only for an active subject, oldest-first pages that know their last page,
data keys bound to their encryption context. Stored items are copied in and out, as a database would."""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chatsphere.dal import keys
from chatsphere.errors import Conflict
from chatsphere.logic.ports import Ports
from chatsphere.logic.tenants import TenantSecrets
from chatsphere.models.items import ApiKeyItem, IdentifierKind, InteractionItem, ProfileItem, TenantItem

IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = ("email", "phone")


class FakeKeyWrapper:
    """KMS: data keys wrapped under a master key, the encryption context as associated data."""

    def __init__(self) -> None:
        self._master = AESGCM(os.urandom(32))
        self.generated = 0
        self.unwrapped = 0

    @staticmethod
    def _context(context: dict[str, str]) -> bytes:
        return repr(sorted(context.items())).encode()

    def generate(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        self.generated += 1
        key, nonce = os.urandom(32), os.urandom(12)
        return key, nonce + self._master.encrypt(nonce, key, self._context(context))

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        self.unwrapped += 1
        return self._master.decrypt(wrapped[:12], wrapped[12:], self._context(context))


class FakeSubjectKeyStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], bytes] = {}

    def get(self, tenant_id: str, subject_id: str) -> bytes | None:
        return self.rows.get((tenant_id, subject_id))

    def put_if_absent(self, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> bool:
        if (tenant_id, subject_id) in self.rows:
            return False
        self.rows[(tenant_id, subject_id)] = wrapped
        return True

    def shred(self, tenant_id: str, subject_id: str) -> None:
        """What erasure does first: the key row goes, the sealed rows become noise."""
        del self.rows[(tenant_id, subject_id)]


class FakeSubjectStore:
    """SubjectsTable: a profile, its lookup items and its interactions per (tenant, subject)."""

    def __init__(self) -> None:
        self.profiles: dict[tuple[str, str], ProfileItem] = {}
        self.lookups: dict[tuple[str, str, IdentifierKind], str] = {}
        self.interactions: dict[tuple[str, str], dict[str, InteractionItem]] = {}
        self.acceptance: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
        self.records: list[Any] = []
        self.saves = 0

    # ------------------------------------------------------------ profiles
    def get_profile(self, tenant_id: str, subject_id: str) -> ProfileItem | None:
        found = self.profiles.get((tenant_id, subject_id))
        return found.model_copy(deep=True) if found else None

    def save_profile(self, profile: ProfileItem, expected_version: int | None, record: Any = None) -> None:
        """attribute_not_exists(pk) for a new profile, version = :v for a replacement; all or nothing."""
        self.saves += 1
        key = (profile.tenant_id, profile.subject_id)
        current = self.profiles.get(key)
        if expected_version is None and current is not None:
            raise Conflict("the subject changed or does not allow this write; read it again")
        if expected_version is not None and (current is None or current.version != expected_version):
            raise Conflict("the subject changed or does not allow this write; read it again")
        self.profiles[key] = profile.model_copy(deep=True)
        for kind in IDENTIFIER_KINDS:
            digest = profile.lookups.get(kind)
            if digest is None:
                self.lookups.pop((*key, kind), None)
            else:
                self.lookups[(*key, kind)] = digest
        if record is not None:
            self.records.append(record)

    def find_subjects(self, tenant_id: str, kind: IdentifierKind, digest: str) -> list[str]:
        return sorted({s for (t, s, k), d in self.lookups.items() if (t, k, d) == (tenant_id, kind, digest)})

    # -------------------------------------------------------- interactions
    def add_interaction(self, item: InteractionItem, accepts: str | None = None) -> None:
        """Only while the profile exists and is active; an interaction id is never overwritten."""
        key = (item.tenant_id, item.subject_id)
        profile = self.profiles.get(key)
        if profile is None or profile.status != "active":
            raise Conflict("the subject changed or does not allow this write; read it again")
        stored = self.interactions.setdefault(key, {})
        sk = keys.interaction_sk(item.occurred_at, item.interaction_id)
        if sk in stored:
            raise Conflict("the subject changed or does not allow this write; read it again")
        stored[sk] = item.model_copy(deep=True)
        if accepts is not None:
            self.acceptance.setdefault(key, {}).setdefault(
                accepts, {"version": accepts, "accepted_at": item.occurred_at, "interaction_id": item.interaction_id}
            )

    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after_sk: str | None
    ) -> tuple[list[InteractionItem], str | None]:
        """Oldest first (sort key order), reading one past the page as the DAL does."""
        stored = self.interactions.get((tenant_id, subject_id), {})
        sks = sorted(sk for sk in stored if after_sk is None or sk > after_sk)[: limit + 1]
        page = [stored[sk].model_copy(deep=True) for sk in sks[:limit]]
        next_sk = sks[limit - 1] if len(sks) > limit else None
        return page, next_sk

    def acceptances(self, tenant_id: str, subject_id: str) -> list[dict[str, str]]:
        rows = self.acceptance.get((tenant_id, subject_id), {}).values()
        return sorted(rows, key=lambda r: r["accepted_at"])

    # ------------------------------------------------------------ for tests
    def all_interactions(self, tenant_id: str, subject_id: str) -> list[InteractionItem]:
        return list(self.interactions.get((tenant_id, subject_id), {}).values())


class FakeBlobStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = bytes(data)

    def get(self, key: str) -> bytes:
        return self.objects[key]


class FakeTenantStore:
    def __init__(self) -> None:
        self.tenants: dict[str, TenantItem] = {}
        self.api_keys: dict[tuple[str, str], ApiKeyItem] = {}
        self.policies: list[Any] = []

    def get_tenant(self, tenant_id: str) -> TenantItem | None:
        return self.tenants.get(tenant_id)

    def get_api_key(self, tenant_id: str, key_hash: str) -> ApiKeyItem | None:
        return self.api_keys.get((tenant_id, key_hash))

    def create_tenant(self, tenant: TenantItem, api_key: ApiKeyItem) -> None:
        if tenant.tenant_id in self.tenants:
            raise Conflict("tenant exists")
        self.tenants[tenant.tenant_id] = tenant
        self.api_keys[(api_key.tenant_id, api_key.key_hash)] = api_key

    def policy_in_force(self, tenant_id: str, at: str) -> Any:
        """The privacy-policy version in force at `at`: the latest effective at or before it, if any."""
        mine = [p for p in self.policies if p.tenant_id == tenant_id and p.effective_at <= at]
        return max(mine, key=lambda p: p.effective_at) if mine else None

    def revoke(self, tenant_id: str, key_hash: str) -> None:
        item = self.api_keys[(tenant_id, key_hash)]
        self.api_keys[(tenant_id, key_hash)] = item.model_copy(update={"status": "revoked"})


class Unused:
    """A port the logic under test has no business calling."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"intake logic used the {self._name} port ({attr})")


class World:
    """One set of fakes, and the Ports over them that logic receives."""

    def __init__(
        self, subjects: FakeSubjectStore | None = None, subject_keys: FakeSubjectKeyStore | None = None
    ) -> None:
        self.subjects = subjects or FakeSubjectStore()
        self.subject_keys = subject_keys or FakeSubjectKeyStore()
        self.kms = FakeKeyWrapper()
        self.blobs = FakeBlobStore()
        self.tenants = FakeTenantStore()
        given: dict[str, Any] = {
            "subjects": self.subjects,
            "subject_keys": self.subject_keys,
            "kms": self.kms,
            "blobs": self.blobs,
            "tenants": self.tenants,
            "hmac_key": TenantSecrets(self.tenants, self.kms).hmac_key,
        }
        # Ports grows with other capabilities (requests, queues, events); intake must not touch those.
        others = {f.name: Unused(f.name) for f in fields(Ports) if f.name not in given}
        self.ports = Ports(**given, **others)

    def new_tenant(self, name: str = "Acme") -> tuple[str, str]:
        from chatsphere.logic.tenants import create_tenant

        tenant, api_key = create_tenant(self.tenants, self.kms, name)
        return tenant.tenant_id, api_key
