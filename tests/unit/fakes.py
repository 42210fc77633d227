"""In-memory implementations of the ports in chatsphere/logic/ports.py, with the DAL's semantics.

They keep what the DynamoDB, S3, SQS, EventBridge and KMS adapters promise: version-guarded profile
writes that raise Conflict, interactions only for an active subject, oldest-first pages that know their
last page, compare-and-set request records, versioned objects, data keys bound to their encryption
context. Stored items are copied in and out, as a database would. mypy checks each against its Protocol
(the assignments at the end), so a port that changes breaks its fake at type-check time."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel

from chatsphere.dal import keyspace
from chatsphere.dal.policies import published_entry
from chatsphere.day_index import LATE, shard_of
from chatsphere.errors import Conflict
from chatsphere.logic.codec import IDENTIFIER_KINDS
from chatsphere.models import ledger
from chatsphere.models.analytics import DailyAggregate
from chatsphere.models.items import (
    ApiKeyItem,
    IdentifierKind,
    InteractionItem,
    PolicyItem,
    ProfileAdmission,
    ProfileItem,
    TenantItem,
    TombstoneItem,
)
from chatsphere.models.offboarding import Leftover, PackageLine
from chatsphere.models.reconcile import BlobVersion, IdempotencyRef, StoredKey, StoredRef
from chatsphere.models.refs import InteractionPosition, ItemRef, RecordRef
from chatsphere.models.reports import DayCounts, TypeCounts
from chatsphere.models.requests import ExportResult, ProfileRecords, RequestItem, as_records
from chatsphere.models.retention import (
    REMOVALS_PER_TRANSACTION,
    Act,
    ActOutcome,
    Category,
    DueEntry,
    IndexedRef,
    RetentionRunItem,
)
from chatsphere.models.settings import TenantSettings
from tests.unit.fake_ledger import FakeLedgerArchive, FakeLedgerIndex, FakeOutbox, FakeSigner

NOT_ALLOWED = "the subject changed or does not allow this write; read it again"


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


class FakeDataKeyStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], bytes] = {}
        self.created: dict[tuple[str, str], str] = {}

    def get(self, tenant_id: str, subject_id: str) -> bytes | None:
        return self.rows.get((tenant_id, subject_id))

    def put_if_absent(self, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> bool:
        if (tenant_id, subject_id) in self.rows:
            return False
        self.rows[(tenant_id, subject_id)] = wrapped
        self.created[(tenant_id, subject_id)] = created_at
        return True

    def delete(self, tenant_id: str, subject_id: str) -> None:
        self.rows.pop((tenant_id, subject_id), None)

    def scan(self) -> Iterator[StoredKey]:
        for tenant_id, subject_id in sorted(self.rows):
            yield StoredKey(tenant_id, subject_id, self.created.get((tenant_id, subject_id)))

    def destroy(self, tenant_id: str, subject_id: str) -> None:
        """What deletion does first: the key row goes, the sealed rows become noise."""
        del self.rows[(tenant_id, subject_id)]


class FakeSubjectStore:
    """SubjectsTable: a profile, its lookup items and its interactions per (tenant, subject)."""

    def __init__(self) -> None:
        self.profiles: dict[tuple[str, str], ProfileItem] = {}
        self.lookups: dict[tuple[str, str, IdentifierKind], str] = {}
        # (tenant, subject) -> (occurred_at, interaction id) -> the interaction: sorted, that is DynamoDB's order
        self.interactions: dict[tuple[str, str], dict[tuple[str, str], InteractionItem]] = {}
        self.records: list[RequestItem] = []  # the records written in a profile's transaction
        self.requests: FakeRequestStore | None = None  # the RequestsTable a deletion's completion spans (World)
        self.data_keys: FakeDataKeyStore | None = None  # the SubjectKeysTable a new profile's transaction spans (World)
        self.saves = 0

    # ------------------------------------------------------------ profiles
    def get_profile(self, tenant_id: str, subject_id: str) -> ProfileItem | None:
        found = self.profiles.get((tenant_id, subject_id))
        return found.model_copy(deep=True) if found else None

    def save_profile(
        self,
        profile: ProfileItem,
        expected_version: int | None,
        record: ProfileRecords = None,
        admission: ProfileAdmission | None = None,
    ) -> None:
        """attribute_not_exists(pk) for a new profile, version = :v for a replacement; all or nothing. A new
        profile's admission: its tombstone absent (or completed, when the id is reused) in `requests`, and its new
        key put in `data_keys` only if it has none, else Conflict, as the DAL's ConditionCheck and key Put."""
        self.saves += 1
        key = (profile.tenant_id, profile.subject_id)
        current = self.profiles.get(key)
        if expected_version is None and current is not None:
            raise Conflict(NOT_ALLOWED)
        if expected_version is not None and (current is None or current.version != expected_version):
            raise Conflict(NOT_ALLOWED)
        if admission is not None:
            self._admit(profile, expected_version, admission)
        self.profiles[key] = profile.model_copy(deep=True)
        for kind in IDENTIFIER_KINDS:
            digest = profile.lookups.get(kind)
            if digest is None:
                self.lookups.pop((*key, kind), None)
            else:
                self.lookups[(*key, kind)] = digest
        self.records.extend(r.model_copy(deep=True) for r in as_records(record))
        if self.requests is not None:  # the records and their entries, in the same transaction, as the DAL writes
            for each in as_records(record):
                self.requests.items[(each.tenant_id, each.request_id)] = each.model_copy(deep=True)
                self.requests.outbox.record(ledger.request_created(each))

    def _admit(self, profile: ProfileItem, expected_version: int | None, admission: ProfileAdmission) -> None:
        """The admission's checks, then its key put (the last step that can refuse, so a refusal writes nothing)."""
        if expected_version is not None:
            raise ValueError("an admission is for a new profile only")
        assert self.requests is not None and self.data_keys is not None
        tombstone = self.requests.tombstone_items.get((profile.tenant_id, admission.subject_hash))
        if tombstone is not None and not (admission.reuse_deleted_id and tombstone.deleted_at is not None):
            raise Conflict(NOT_ALLOWED)
        if admission.wrapped_key is None:
            return
        created = self.data_keys.put_if_absent(
            profile.tenant_id, profile.subject_id, admission.wrapped_key, admission.key_created_at
        )
        if not created:
            raise Conflict(NOT_ALLOWED)

    def find_subjects(self, tenant_id: str, kind: IdentifierKind, digest: str) -> list[str]:
        return sorted({s for (t, s, k), d in self.lookups.items() if (t, k, d) == (tenant_id, kind, digest)})

    # -------------------------------------------------------- interactions
    def add_interaction(self, item: InteractionItem, accepts: str | None = None) -> None:
        """Only while the profile exists and is active; an interaction id is never overwritten.
        `accepts` records a policy acceptance on the profile (bumping its version), as the DAL does."""
        key = (item.tenant_id, item.subject_id)
        profile = self.profiles.get(key)
        if profile is None or profile.status != "active":
            raise Conflict(NOT_ALLOWED)
        stored = self.interactions.setdefault(key, {})
        sk = (item.occurred_at, item.interaction_id)
        if sk in stored:
            raise Conflict(NOT_ALLOWED)
        if accepts is not None:
            acceptance = {"accepted_at": item.occurred_at, "interaction_id": item.interaction_id}
            profile.accepted_policies.setdefault(accepts, acceptance)
            profile.version += 1
        stored[sk] = item.model_copy(deep=True)

    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after: InteractionPosition | None
    ) -> tuple[list[InteractionItem], InteractionPosition | None]:
        """Oldest first (sort key order), reading one past the page as the DAL does."""
        stored = self.interactions.get((tenant_id, subject_id), {})
        start = (after.occurred_at, after.interaction_id) if after is not None else None
        sks = sorted(sk for sk in stored if start is None or sk > start)[: limit + 1]
        page = [stored[sk].model_copy(deep=True) for sk in sks[:limit]]
        last = InteractionPosition(*sks[limit - 1]) if len(sks) > limit else None
        return page, last

    # ------------------------------------------------------------ deletion
    def _partition(self, tenant_id: str, subject_id: str) -> list[ItemRef]:
        """Every item of the subject's partition, in DynamoDB's order: interactions, lookups, the profile."""
        key = (tenant_id, subject_id)
        refs = [ItemRef(*key, "interaction", i, at) for at, i in sorted(self.interactions.get(key, {}))]
        refs += [ItemRef(*key, "lookup", kind) for (t, s, kind) in sorted(self.lookups) if (t, s) == key]
        refs += [ItemRef(*key, "profile")] if key in self.profiles else []
        return refs

    def item_refs(self, tenant_id: str, subject_id: str, limit: int) -> list[ItemRef]:
        return self._partition(tenant_id, subject_id)[:limit]

    def delete_items(self, refs: list[ItemRef]) -> None:
        for ref in refs:
            key = (ref.tenant_id, ref.subject_id)
            if ref.kind == "profile":
                self.profiles.pop(key, None)
            elif ref.kind == "lookup":
                self.lookups.pop((*key, ref.name), None)  # type: ignore[arg-type]
            elif ref.kind == "interaction":
                self.interactions.get(key, {}).pop((ref.at, ref.name), None)

    def strip_profile(self, tenant_id: str, subject_id: str) -> None:
        profile = self.profiles[(tenant_id, subject_id)]
        self.profiles[(tenant_id, subject_id)] = profile.model_copy(update={"sealed": {}, "lookups": {}})

    def restrict(self, record: RequestItem, hold_request_id: str) -> None:
        """The profile erasing for this deletion with the hold still placed by `hold_request_id`, and the record
        in progress (in `requests`, the RequestsTable the transaction spans), else Conflict; both or neither."""
        key = (record.tenant_id, record.subject_id)
        profile = self.profiles.get(key)
        hold = (profile.legal_hold or {}) if profile else {}
        current = self.requests.get(record.tenant_id, record.request_id) if self.requests else None
        if (
            profile is None
            or profile.status != "erasing"
            or profile.deletion_request_id != record.request_id
            or hold.get("request_id") != hold_request_id
            or current is None
            or current.status != "in_progress"
        ):
            raise Conflict(NOT_ALLOWED)
        assert self.requests is not None
        self.requests.set_status(record, ("in_progress",))
        self.profiles[key] = profile.model_copy(update={"status": "restricted", "version": profile.version + 1})

    def index_holds(self, tenant_id: str, kind: IdentifierKind, digest: str, subject_id: str) -> bool:
        return subject_id in self.find_subjects(tenant_id, kind, digest)

    def subject_ids(
        self, tenant_id: str, shard: int, limit: int, after: str | None = None
    ) -> tuple[list[str], str | None]:
        """MemberIndex's order: by subject id within the shard."""
        ids = sorted(s for (t, s) in self.profiles if t == tenant_id and shard_of(s) == shard)
        rest = [s for s in ids if after is None or s > after]
        page = rest[:limit]
        return page, (page[-1] if len(rest) > limit else None)

    def count_subjects(self, tenant_id: str) -> int:
        return sum(1 for (t, _) in self.profiles if t == tenant_id)

    def count_interactions(self, tenant_id: str, first_day: str, last_day: str) -> int:
        return sum(
            1
            for (t, _), stored in self.interactions.items()
            if t == tenant_id
            for item in stored.values()
            if first_day <= item.occurred_at[:10] <= last_day
        )

    def scan(self) -> Iterator[StoredRef]:
        """Every item's key, the profile's created_at and lookups, an interaction's received_at, a lookup's ipk."""
        owners = set(self.profiles) | set(self.interactions) | {(t, s) for (t, s, _) in self.lookups}
        for tenant_id, subject_id in sorted(owners):
            for ref in self._partition(tenant_id, subject_id):
                written: str | None = None
                digest: str | None = None
                lookups: dict[str, str] = {}
                if ref.kind == "profile":
                    profile = self.profiles[(tenant_id, subject_id)]
                    written, lookups = profile.created_at, {k: v for k, v in profile.lookups.items()}
                elif ref.kind == "lookup":
                    digest = self.lookups[(tenant_id, subject_id, ref.name)]  # type: ignore[index]
                else:
                    written = self.interactions[(tenant_id, subject_id)][(ref.at, ref.name)].received_at
                yield StoredRef(ref, written, digest, lookups)

    # ------------------------------------------------------------ for tests
    def all_interactions(self, tenant_id: str, subject_id: str) -> list[InteractionItem]:
        return list(self.interactions.get((tenant_id, subject_id), {}).values())


class FakeUpload:
    """A multipart upload: nothing is visible until close(); abort() leaves nothing."""

    def __init__(self, store: FakeBlobStore, key: str, kind: str) -> None:
        self._store, self.key, self.kind = store, key, kind
        self._data = bytearray()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._data += data
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        return None

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> str | None:
        version = self._store.write(self.key, bytes(self._data))
        self._store.kinds[self.key] = self.kind
        self.closed = True
        return version

    def abort(self) -> None:
        self._data.clear()
        self._store.aborted.append(self.key)


class FakeBlobStore:
    """A versioned bucket: every write adds a version (v1, v2, ...), reads see the latest."""

    def __init__(self, bucket: str = "data-bucket") -> None:
        self.bucket = bucket
        self.versions_of: dict[str, list[tuple[str, bytes]]] = {}
        self.markers: dict[str, list[str]] = {}  # key -> delete marker version ids
        self.modified: dict[str, datetime] = {}  # version id -> LastModified
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.kinds: dict[str, str] = {}
        self.aborted: list[str] = []
        self.delivered: dict[str, bytes] = {}  # destination URI -> bytes
        self._written = 0

    @property
    def objects(self) -> dict[str, bytes]:
        return {key: versions[-1][1] for key, versions in self.versions_of.items()}

    def write(self, key: str, data: bytes) -> str:
        self._written += 1
        version = f"v{self._written}"
        self.versions_of.setdefault(key, []).append((version, bytes(data)))
        self.modified[version] = self.clock()
        return version

    def delete(self, key: str) -> str:
        """A plain DELETE on a versioned bucket: a delete marker (tests use it to make one)."""
        self._written += 1
        version = f"m{self._written}"
        self.markers.setdefault(key, []).append(version)
        self.modified[version] = self.clock()
        return version

    def put(self, key: str, data: bytes) -> str | None:
        return self.write(key, data)

    def get(self, key: str) -> bytes:
        return self.versions_of[key][-1][1]

    def delete_version(self, key: str, version_id: str) -> None:
        if version_id in self.markers.get(key, []):
            self.markers[key].remove(version_id)
            if not self.markers[key]:
                del self.markers[key]
            return
        remaining = [(v, data) for v, data in self.versions_of.get(key, []) if v != version_id]
        if remaining:
            self.versions_of[key] = remaining
        else:
            self.versions_of.pop(key, None)

    def open_upload(self, key: str, kind: str) -> FakeUpload:
        return FakeUpload(self, key, kind)

    def versions(self, prefix: str, limit: int) -> list[tuple[str, str, bool]]:
        found = [
            (k, v, False) for k in sorted(self.versions_of) if k.startswith(prefix) for v, _ in self.versions_of[k]
        ]
        found += [(k, m, True) for k in sorted(self.markers) if k.startswith(prefix) for m in self.markers[k]]
        return found[:limit]

    def version_counts(self, prefix: str) -> tuple[int, int]:
        found = self.versions(prefix, 10**9)
        return len({k for k, _, _ in found}), len(found)

    def subfolders(self, prefix: str) -> list[str]:
        keys = [k for k in (*self.versions_of, *self.markers) if k.startswith(prefix)]
        return sorted({k[len(prefix) :].split("/")[0] for k in keys if "/" in k[len(prefix) :]})

    def dated_versions(self, prefix: str) -> list[BlobVersion]:
        return [BlobVersion(k, v, marker, self.modified[v]) for k, v, marker in self.versions(prefix, 10**9)]

    def delete_versions(self, versions: list[tuple[str, str]]) -> None:
        for key, version in versions:
            self.delete_version(key, version)

    def presign_get(self, key: str, expires_in: int, filename: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return f"https://{self.bucket}.example/{digest}?expires={expires_in}&filename={filename}"

    def deliver(self, key: str, destination_uri: str, filename: str) -> str:
        if destination_uri.removeprefix("s3://").partition("/")[0] == self.bucket:
            raise PermissionError("a delivery never goes into the service's own bucket")
        target = f"{destination_uri.rstrip('/')}/{filename}"
        self.delivered[target] = self.get(key)
        return target


class FakeTenantStore:
    """TenantsTable: tenants, keys, settings, policies; each change puts its ledger entry in `outbox`."""

    def __init__(self, outbox: FakeOutbox | None = None) -> None:
        self.outbox = outbox or FakeOutbox()
        self.tenants: dict[str, TenantItem] = {}
        self.api_keys: dict[tuple[str, str], ApiKeyItem] = {}
        self.settings: dict[str, TenantSettings] = {}
        self.settings_versions: dict[str, int] = {}
        self.policies: dict[tuple[str, str], PolicyItem] = {}

    def get_tenant(self, tenant_id: str) -> TenantItem | None:
        return self.tenants.get(tenant_id)

    def tenant_ids(self) -> list[str]:
        return sorted(self.tenants)

    def read_api_key(self, tenant_id: str, key_hash: str) -> dict[str, Any] | None:
        """The authorizer's port (logic/api_keys.ApiKeyReader): the stored key item's fields."""
        found = self.api_keys.get((tenant_id, key_hash))
        return found.model_dump() if found else None

    def create_tenant(self, tenant: TenantItem, api_key: ApiKeyItem) -> None:
        if tenant.tenant_id in self.tenants:
            raise Conflict("tenant exists")
        self.tenants[tenant.tenant_id] = tenant
        self.api_keys[(api_key.tenant_id, api_key.key_hash)] = api_key
        self.outbox.record(ledger.event(tenant.tenant_id, "api_key.created", api_key.created_at, key_id=api_key.key_id))

    def add_api_key(self, api_key: ApiKeyItem) -> None:
        if api_key.tenant_id not in self.tenants or (api_key.tenant_id, api_key.key_hash) in self.api_keys:
            raise Conflict("no such tenant, or the key exists")
        self.api_keys[(api_key.tenant_id, api_key.key_hash)] = api_key.model_copy()
        self.outbox.record(
            ledger.event(api_key.tenant_id, "api_key.created", api_key.created_at, key_id=api_key.key_id)
        )

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyItem]:
        return [k.model_copy() for (t, h), k in sorted(self.api_keys.items()) if t == tenant_id]

    def revoke_api_key(self, tenant_id: str, key_hash: str, revoked_at: str) -> None:
        found = self.api_keys.get((tenant_id, key_hash))
        if found is None:
            raise Conflict("no such key")
        if found.status != "revoked":
            found.status, found.revoked_at = "revoked", revoked_at
            self.outbox.record(ledger.event(tenant_id, "api_key.revoked", revoked_at, key_id=found.key_id))

    def get_settings(self, tenant_id: str) -> TenantSettings:
        return self.settings.get(tenant_id, TenantSettings()).model_copy(deep=True)

    def read_settings(self, tenant_id: str) -> tuple[TenantSettings, int]:
        return self.get_settings(tenant_id), self.settings_versions.get(tenant_id, 0)

    def put_settings(
        self,
        tenant_id: str,
        settings: TenantSettings,
        updated_at: str,
        expected_version: int | None = None,
        previous: TenantSettings | None = None,
    ) -> int:
        """ADD version :one, conditioned on version = :v (attribute_not_exists for 0) when expected."""
        version = self.settings_versions.get(tenant_id, 0)
        if expected_version is not None and version != expected_version:
            raise Conflict("the settings changed since they were read")
        current = previous if previous is not None and expected_version is not None else self.get_settings(tenant_id)
        changed = [name for name in TenantSettings.model_fields if getattr(current, name) != getattr(settings, name)]
        if not changed:  # as the DAL: the same document writes nothing and keeps its version
            return version
        data: dict[str, Any] = {"version": version + 1, "fields": changed}
        if "processors" in changed:
            data["processors"] = [p.model_dump(mode="json") for p in settings.processors]
        self.settings[tenant_id] = settings.model_copy(deep=True)
        self.settings_versions[tenant_id] = version + 1
        self.outbox.record(ledger.event(tenant_id, "settings.changed", updated_at, **data))
        return version + 1

    def add_policy(self, policy: PolicyItem) -> None:
        key = (policy.tenant_id, policy.version)
        if key in self.policies:
            raise Conflict("this policy version exists already")
        self.policies[key] = policy.model_copy()
        self.outbox.record(published_entry(policy))

    def get_policy(self, tenant_id: str, version: str) -> PolicyItem | None:
        found = self.policies.get((tenant_id, version))
        return found.model_copy() if found else None

    def mark_announced(self, policy: PolicyItem) -> None:
        self.policies[(policy.tenant_id, policy.version)].announced = True

    def list_policies(self, tenant_id: str) -> list[PolicyItem]:
        mine = [p for (t, _), p in self.policies.items() if t == tenant_id]
        return sorted(mine, key=lambda p: (p.effective_at, p.version))

    def policy_in_force(self, tenant_id: str, at: str) -> PolicyItem | None:
        """The latest version whose effective_at is at or before `at`, if any."""
        mine = [p for p in self.list_policies(tenant_id) if p.effective_at <= at]
        return mine[-1] if mine else None

    def revoke(self, tenant_id: str, key_hash: str) -> None:
        item = self.api_keys[(tenant_id, key_hash)]
        self.api_keys[(tenant_id, key_hash)] = item.model_copy(update={"status": "revoked"})


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeRequestStore:
    """RequestsTable: create once, compare-and-set saves, newest-first pages, open requests by due_at,
    a subject's records until they are pseudonymised, tombstones. Each write puts its ledger entry in `outbox`,
    as the DAL's transaction does."""

    def __init__(self, outbox: FakeOutbox | None = None) -> None:
        self.items: dict[tuple[str, str], RequestItem] = {}
        self.tombstone_items: dict[tuple[str, str], TombstoneItem] = {}
        self.markers: dict[tuple[str, str], str] = {}  # (tenant, once_as) -> request id
        self.outbox = outbox or FakeOutbox()

    def create(self, item: RequestItem, once_as: str | None = None, replaces: str | None = None) -> None:
        key = (item.tenant_id, item.request_id)
        if key in self.items:
            raise Conflict("request id already exists")
        if once_as is not None:
            if self.markers.get((item.tenant_id, once_as)) != replaces:
                raise Conflict("an identical request was made meanwhile")
            self.markers[(item.tenant_id, once_as)] = item.request_id
        self.items[key] = item.model_copy(deep=True)
        self.outbox.record(ledger.request_created(item))

    def marked(self, tenant_id: str, once_as: str) -> str | None:
        return self.markers.get((tenant_id, once_as))

    def get(self, tenant_id: str, request_id: str) -> RequestItem | None:
        found = self.items.get((tenant_id, request_id))
        return found.model_copy(deep=True) if found else None

    def set_status(self, item: RequestItem, expected_status: tuple[str, ...]) -> None:
        """Status, completed_at and result only: the rest of the stored record stays as it is."""
        current = self.items.get((item.tenant_id, item.request_id))
        if current is None or current.status not in expected_status:
            raise Conflict("the request is no longer in a state that allows this")
        update: dict[str, object] = {"status": item.status, "completed_at": item.completed_at, "result": item.result}
        if item.subject_deleted:
            update.update(subject_id=item.subject_id, subject_deleted=True)
        self.items[(item.tenant_id, item.request_id)] = current.model_copy(update=update, deep=True)
        self.outbox.record(ledger.status_changed(item))

    def extend(self, extended: RequestItem, previous_due_at: str) -> None:
        current = self.items.get((extended.tenant_id, extended.request_id))
        if current is None or not current.is_open or current.extension is not None or current.due_at != previous_due_at:
            raise Conflict("the request is closed or has been extended already")
        update = {"due_at": extended.due_at, "extension": extended.extension}
        self.items[(extended.tenant_id, extended.request_id)] = current.model_copy(update=update, deep=True)
        self.outbox.record(ledger.extended(extended))

    def page(
        self,
        tenant_id: str,
        limit: int,
        after: str | None,
        statuses: Sequence[str] | None,
        type_: str | None,
        subject_id: str | None = None,
    ) -> tuple[list[RequestItem], str | None]:
        mine = sorted((i for (t, _), i in self.items.items() if t == tenant_id), key=lambda i: i.request_id)
        mine.reverse()
        rows = [
            i
            for i in mine
            if (after is None or i.request_id < after)
            and (not statuses or i.status in statuses)
            and (type_ is None or i.type == type_)
            and (subject_id is None or (i.subject_id == subject_id and not i.subject_deleted))
        ]
        page = [i.model_copy(deep=True) for i in rows[:limit]]
        more = len(rows) > limit
        return page, page[-1].request_id if more else None

    def overdue_page(
        self, tenant_id: str, now: str, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[RequestItem], tuple[str, str] | None]:
        rows = sorted(
            (i for (t, _), i in self.items.items() if t == tenant_id and i.is_open and i.due_at < now),
            key=lambda i: (i.due_at, i.request_id),
        )
        rows = [i for i in rows if after is None or (i.due_at, i.request_id) > after]
        page = [i.model_copy(deep=True) for i in rows[:limit]]
        more = len(rows) > limit
        return page, (page[-1].due_at, page[-1].request_id) if more else None

    def count_open(self, tenant_id: str) -> int:
        return sum(1 for item in self.items.values() if item.tenant_id == tenant_id and item.is_open)

    def open_requests(self) -> Iterator[RequestItem]:
        for item in list(self.items.values()):
            if item.is_open:
                yield item.model_copy(deep=True)

    def of_subject(self, tenant_id: str, subject_id: str) -> list[RequestItem]:
        mine = [
            i
            for (t, _), i in self.items.items()
            if t == tenant_id and i.subject_id == subject_id and not i.subject_deleted
        ]
        return [i.model_copy(deep=True) for i in sorted(mine, key=lambda i: i.request_id)]

    def metrics(self, tenant_id: str, first_day: str, last_day: str) -> list[DayCounts]:
        """Counted from the records themselves: what the DAL's counters must come to."""
        days: dict[str, DayCounts] = {}
        for (tenant, _), item in sorted(self.items.items()):
            day = item.received_at[:10]
            if tenant != tenant_id or not first_day <= day <= last_day:
                continue
            counts = days.setdefault(day, DayCounts(day=day)).by_type.setdefault(item.type, TypeCounts())
            counts.received += 1
            if item.is_open:
                counts.open_due[item.due_at[:10]] = counts.open_due.get(item.due_at[:10], 0) + 1
                continue
            seconds = (_at(item.completed_at or item.received_at) - _at(item.received_at)).total_seconds()
            counts.closed[item.status] = counts.closed.get(item.status, 0) + 1
            counts.close_days[int(seconds // 86400)] = counts.close_days.get(int(seconds // 86400), 0) + 1
            counts.close_seconds += seconds
        return [days[d] for d in sorted(days)]

    def with_subject_ids(self) -> Iterator[RequestItem]:
        for item in list(self.items.values()):
            if not item.subject_deleted:
                yield item.model_copy(deep=True)

    def pseudonymise(self, item: RequestItem, subject_hash: str) -> None:
        key = (item.tenant_id, item.request_id)
        stored = self.items[key]
        update: dict[str, object] = {"subject_id": subject_hash, "subject_deleted": True}
        if isinstance(stored.result, ExportResult):
            update["result"] = stored.result.model_copy(update={"package_key": None})
        self.items[key] = stored.model_copy(update=update)

    def put_tombstone(self, tombstone: TombstoneItem) -> None:
        key = (tombstone.tenant_id, tombstone.subject_hash)
        current = self.tombstone_items.get(key)
        if current is None or current.deleted_at is None:
            self.tombstone_items[key] = tombstone.model_copy()
            t = tombstone
            at = t.deleted_at or t.started_at
            self.outbox.record(
                ledger.tombstone(t.tenant_id, t.subject_hash, t.request_id, t.started_at, t.deleted_at, at)
            )

    def get_tombstone(self, tenant_id: str, subject_hash: str) -> TombstoneItem | None:
        found = self.tombstone_items.get((tenant_id, subject_hash))
        return found.model_copy() if found else None

    def tombstones(self, tenant_id: str) -> list[TombstoneItem]:
        return [t.model_copy() for (tenant, _), t in sorted(self.tombstone_items.items()) if tenant == tenant_id]

    # the orphan sweep's view (logic/sweep.DeletedSubjects): completed tombstones still holding a sealed id
    def settled_tombstones(self, tenant_id: str, upto: str) -> list[TombstoneItem]:
        filed = [
            t
            for t in self.tombstones(tenant_id)
            if t.deleted_at is not None and t.sealed_subject_id is not None and t.deleted_at <= upto
        ]
        return sorted(filed, key=lambda t: (t.deleted_at or "", t.subject_hash))

    def forget_subject_id(self, tenant_id: str, subject_hash: str) -> None:
        found = self.tombstone_items.get((tenant_id, subject_hash))
        if found is not None:
            self.tombstone_items[(tenant_id, subject_hash)] = found.model_copy(update={"sealed_subject_id": None})


class FakeIdempotencyRecords:
    """IdempotencyTable, one partition per subject, over Powertools' in-memory persistence contract."""

    def __init__(self) -> None:
        # (tenant, subject) -> idempotency key -> record
        self.records: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def layer(self, tenant_id: str, subject_id: str) -> BasePersistenceLayer:
        """IntakePorts.idempotency_layer (World.intake)."""
        raise AssertionError("unit tests call add_interaction; the idempotent path is tested against moto")

    def record_refs(self, tenant_id: str, subject_id: str, limit: int) -> list[RecordRef]:
        names = sorted(self.records.get((tenant_id, subject_id), {}))
        return [RecordRef(tenant_id, subject_id, name) for name in names][:limit]

    def delete_records(self, refs: list[RecordRef]) -> None:
        for ref in refs:
            self.records.get((ref.tenant_id, ref.subject_id), {}).pop(ref.idempotency_key, None)

    def scan(self) -> Iterator[IdempotencyRef]:
        for (tenant_id, subject_id), records in sorted(self.records.items()):
            for name, record in sorted(records.items()):
                yield IdempotencyRef(RecordRef(tenant_id, subject_id, name), record.get("expiration"))


Job = TypeVar("Job", bound=BaseModel)


class FakeJobQueue(Generic[Job]):
    """An SQS queue: messages kept as sent (their JSON), in order."""

    def __init__(self) -> None:
        self.sent: list[Job] = []

    def send(self, job: Job) -> None:
        self.sent.append(job.model_copy())


class FakeEventPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, str]]] = []
        self.failing = False  # True: every publish raises, as EventBridge refusing the entry does

    def publish(self, detail_type: str, detail: dict[str, str]) -> None:
        if self.failing:
            raise RuntimeError(f"EventBridge refused the {detail_type} event")
        self.published.append((detail_type, dict(detail)))

    def of_type(self, detail_type: str) -> list[dict[str, str]]:
        return [detail for kind, detail in self.published if kind == detail_type]


class FakeOffboardingStore:
    """The tenant's one offboarding and its package lines; what it leaves are the other fakes' entries under the
    tenant (settings, policies, keys; its request records but the offboarding's own and tombstones)."""

    def __init__(self, requests: FakeRequestStore, tenants: FakeTenantStore) -> None:
        self.requests, self.tenants = requests, tenants
        self.markers: dict[str, str] = {}
        self.lines_of: dict[tuple[str, str], dict[str, PackageLine]] = {}

    def create(self, item: RequestItem, replaces: str | None = None) -> None:
        if self.markers.get(item.tenant_id) != replaces:
            raise Conflict("the tenant's offboarding was requested meanwhile")
        self.requests.create(item)
        self.markers[item.tenant_id] = item.request_id

    def current(self, tenant_id: str) -> str | None:
        return self.markers.get(tenant_id)

    def put_lines(self, tenant_id: str, request_id: str, lines: list[PackageLine]) -> None:
        self.lines_of.setdefault((tenant_id, request_id), {}).update({line.subject_id: line for line in lines})

    def lines(
        self, tenant_id: str, request_id: str, limit: int, after: str | None = None
    ) -> tuple[list[PackageLine], str | None]:
        mine = self.lines_of.get((tenant_id, request_id), {})
        rest = [mine[s] for s in sorted(mine) if after is None or s > after]
        page = rest[:limit]
        return page, (page[-1].subject_id if len(rest) > limit else None)

    def _leftovers(self, tenant_id: str, keep_request: str) -> Iterator[Leftover]:
        t = self.tenants
        if tenant_id in t.settings:
            yield Leftover(table="tenants", key="SETTINGS", kind="settings")
        mine = [("POLICY", v, "policy_versions") for (x, v) in sorted(t.policies) if x == tenant_id]
        mine += [("APIKEY", h, "api_keys") for (x, h) in sorted(t.api_keys) if x == tenant_id]
        for prefix, name, kind in mine:
            yield Leftover(table="tenants", key=f"{prefix}#{name}", kind=kind)
        for tenant, request_id in self.requests.items:  # no sorted copy: a page's memory, as DynamoDB's
            if tenant == tenant_id and request_id != keep_request:
                yield Leftover(table="requests", key=f"R#{request_id}", kind="request_records")
        for (tenant, request), lines in self.lines_of.items():
            if tenant == tenant_id:
                for subject in lines:
                    yield Leftover(table="requests", key=f"OB#{request}#{subject}", kind="package_lines")

    def leftovers(self, tenant_id: str, keep_request: str, limit: int) -> list[Leftover]:
        return list(itertools.islice(self._leftovers(tenant_id, keep_request), limit))

    def leftover_counts(self, tenant_id: str, keep_request: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self._leftovers(tenant_id, keep_request):
            counts[item.kind] = counts.get(item.kind, 0) + 1
        return counts

    def remove(self, tenant_id: str, leftovers: list[Leftover]) -> None:
        t = self.tenants
        for item in leftovers:
            kind, _, rest = item.key.partition("#")
            if item.key == "SETTINGS":
                t.settings.pop(tenant_id, None)
            elif kind == "POLICY":
                t.policies.pop((tenant_id, rest), None)
            elif kind == "APIKEY":
                t.api_keys.pop((tenant_id, rest), None)
            elif kind == "R":
                self.requests.items.pop((tenant_id, rest), None)
            elif kind == "OB":
                request, _, subject = rest.partition("#")
                self.lines_of.get((tenant_id, request), {}).pop(subject, None)

    def close(self, record: RequestItem, expected_status: tuple[str, ...]) -> None:
        tenant = self.tenants.tenants.get(record.tenant_id)
        if tenant is None:
            raise Conflict("the offboarding is no longer in progress")
        self.requests.set_status(record, expected_status)
        update = {"status": "offboarded", "offboarded_at": record.completed_at, "hmac_key_wrapped": None}
        self.tenants.tenants[record.tenant_id] = tenant.model_copy(update=update)


class World:
    """One set of fakes, wired by the functions' own composition root (bootstrap.build) with the fakes as
    overrides: each capability's ports are `world.wiring.<capability>`, and the fakes stay reachable here by the
    adapters' names, typed as fakes so that tests can look inside them."""

    def __init__(self, subjects: FakeSubjectStore | None = None, data_keys: FakeDataKeyStore | None = None) -> None:
        self.subjects = subjects or FakeSubjectStore()
        self.data_keys = data_keys or FakeDataKeyStore()
        self.kms = FakeKeyWrapper()
        self.blobs = FakeBlobStore()
        self.outbox = FakeOutbox()
        self.ledger_index = FakeLedgerIndex(self.outbox)
        self.ledger_archive = FakeLedgerArchive()
        self.signer = FakeSigner()
        self.tenants = FakeTenantStore(self.outbox)
        self.requests = FakeRequestStore(self.outbox)
        self.subjects.requests = self.requests
        self.subjects.data_keys = self.data_keys
        self.export_jobs: FakeJobQueue[ExportJob] = FakeJobQueue()
        self.deletion_jobs: FakeJobQueue[DeletionJob] = FakeJobQueue()
        self.events = FakeEventPublisher()
        self.idempotency = FakeIdempotencyRecords()
        self.own_buckets = frozenset({self.blobs.bucket, "access-log-bucket"})
        self.retention_store = FakeRetentionStore(self.subjects, self.requests)
        self.analytics_store = FakeAnalyticsStore(self.subjects)
        self.retention_jobs: FakeJobQueue[RetentionJob] = FakeJobQueue()
        self.offboarding = FakeOffboardingStore(self.requests, self.tenants)
        adapters = self.wiring.adapters  # what the fakes make of each other, built once, as a cold start does
        self.keyring, self.secret, self.tombstones = adapters.keyring, adapters.secret, adapters.tombstones

    @property
    def wiring(self) -> Wiring:
        """Built anew on each use, over the fakes this world holds now (a test may swap one for a failing one)."""
        return self.wired()

    def wired(self, **swapped: Any) -> Wiring:
        """The wiring with some adapters swapped for others (a second retention store, say)."""
        from chatsphere.bootstrap import build

        given: dict[str, Any] = {n: getattr(self, n) for n in ("keyring", "secret", "tombstones") if n in vars(self)}
        adapters: dict[str, Any] = dict(
            subjects=self.subjects,
            data_keys=self.data_keys,
            kms=self.kms,
            blobs=self.blobs,
            tenants=self.tenants,
            api_keys=self.tenants,
            settings=self.tenants,
            policies=self.tenants,
            directory=self.tenants,
            requests=self.requests,
            tombstone_store=self.requests,
            deleted_subjects=self.requests,
            export_jobs=self.export_jobs,
            deletion_jobs=self.deletion_jobs,
            events=self.events,
            idempotency=self.idempotency,
            idempotency_layer=self.idempotency.layer,
            own_buckets=self.own_buckets,
            retention_store=self.retention_store,
            analytics_store=self.analytics_store,
            retention_jobs=self.retention_jobs,
            outbox=self.outbox,
            ledger_index=self.ledger_index,
            ledger_archive=self.ledger_archive,
            signer=self.signer,
            offboarding=self.offboarding,
            **given,
        )
        return build(**(adapters | swapped))

    @property
    def intake(self) -> IntakePorts:
        return self.wiring.intake

    @property
    def subject_rights(self) -> SubjectRightsPorts:
        return self.wiring.subject_rights

    @property
    def export(self) -> ExportPorts:
        return self.wiring.export

    @property
    def deletion(self) -> DeletionPorts:
        return self.wiring.deletion

    def new_tenant(self, name: str = "Acme") -> tuple[str, str]:
        from chatsphere.logic.tenants import create_tenant

        tenant, api_key = create_tenant(self.wiring.tenants, name)
        return tenant.tenant_id, api_key


if TYPE_CHECKING:  # each fake satisfies its port: mypy fails here when a Protocol changes
    from chatsphere.bootstrap import Wiring
    from chatsphere.logic import ports
    from chatsphere.logic.deletion import DeletionPorts
    from chatsphere.logic.export import ExportPorts
    from chatsphere.logic.intake import IntakePorts
    from chatsphere.logic.subject_rights import SubjectRightsPorts
    from chatsphere.models.deletion import DeletionJob
    from chatsphere.models.export import ExportJob
    from chatsphere.models.retention import RetentionJob

    _kms: ports.KeyWrapper = FakeKeyWrapper()
    _keys: ports.DataKeyStore = FakeDataKeyStore()
    _subjects: ports.SubjectStore = FakeSubjectStore()
    _blobs: ports.BlobStore = FakeBlobStore()
    _upload: ports.Upload = FakeUpload(FakeBlobStore(), "k", "kind")
    _offboarding: ports.OffboardingStore = FakeOffboardingStore(FakeRequestStore(), FakeTenantStore())
    _tenants: ports.TenantStore = FakeTenantStore()
    _api_key_reader: ports.ApiKeyReader = FakeTenantStore()
    _api_keys: ports.ApiKeyStore = FakeTenantStore()
    _settings: ports.SettingsStore = FakeTenantStore()
    _policies: ports.PolicyStore = FakeTenantStore()
    _requests: ports.RequestStore = FakeRequestStore()
    _tombstones: ports.TombstoneStore = FakeRequestStore()
    _erased: ports.DeletedSubjects = FakeRequestStore()
    _jobs: ports.JobQueue[ExportJob] = FakeJobQueue[ExportJob]()
    _events: ports.EventPublisher = FakeEventPublisher()
    _idempotency: ports.IdempotencyRecords = FakeIdempotencyRecords()


# ---------------------------------------------------------------------------------------------- retention, analytics
# The day index is a view of what the fake subjects and requests hold, filed as dal/subjects.py and dal/requests.py
# file it (interactions by occurred_at, back-dated ones late; open profiles by their activity, late once retention
# found one active; closed records by completion, export_packages while a package is theirs), with retention's own
# moves to the late bucket on top. Retention's state (watermarks, runs, lease, acts) is TenantsTable's.
OPEN_PROFILE = ("active", "deactivated")  # dal/retention.OPEN_STATUSES
RUN_CONFLICT = "another retention run holds this tenant, or committed first"


class FakeRetentionStore:
    """DayIndex and HoldIndex over `subjects` and `requests`, and retention's state, with the DAL's conditions: a
    subject's removals only while its profile is open and unheld, an act's outcome recorded once, watermarks only
    forward, a run created once under a free (or the replaced) lease, commits at the next seq only while the lease
    is the run's. A page is full and has a next position only if more items follow (as moto; set
    `full_pages_continue` for DynamoDB's, whose full last page may have one too, followed by an empty page)."""

    def __init__(self, subjects: FakeSubjectStore, requests: FakeRequestStore) -> None:
        self.subjects, self.requests = subjects, requests
        self.full_pages_continue = False
        self.late_interactions: set[tuple[str, str, str]] = set()  # (tenant, subject, interaction id): TTL cleared
        self.late_profiles: dict[tuple[str, str], int] = {}  # refiled at this version (a profile write refiles it)
        self.late_requests: dict[tuple[str, str], tuple[Category, bool]] = {}  # -> (category, has its TTL)
        self.markers: dict[tuple[str, str], set[str]] = {}  # a subject's ACTIVITY# markers
        self.acts: dict[tuple[str, str, int, str], ActOutcome] = {}
        self.marks: dict[tuple[str, str], str] = {}  # (tenant, category) -> watermark day
        self.leases: dict[str, tuple[str, str]] = {}  # tenant -> (run id, until)
        self.runs: dict[tuple[str, str], str] = {}  # (tenant, run id) -> the record as stored (JSON)
        self.queried: list[tuple[str, str, int]] = []  # (category, bucket, shard) of every due()

    # ------------------------------------------------------------------ the day index
    def _filed(self, tenant_id: str, category: Category) -> Iterator[tuple[bool, DueEntry]]:
        """(late, entry) of every item the category's index holds for the tenant."""
        if category == "interactions":
            yield from self._interactions(tenant_id)
        elif category == "inactive_profiles":
            yield from self._profiles(tenant_id)
        else:
            yield from self._requests(tenant_id, category)

    def _interactions(self, tenant_id: str) -> Iterator[tuple[bool, DueEntry]]:
        for (tenant, subject_id), stored in self.subjects.interactions.items():
            for item in stored.values() if tenant == tenant_id else ():
                refiled = (tenant, subject_id, item.interaction_id) in self.late_interactions
                back_dated = date.fromisoformat(item.occurred_at[:10]) <= date.fromisoformat(
                    item.received_at[:10]
                ) - timedelta(days=2)
                ref = IndexedRef(
                    kind="interaction", item_id=item.interaction_id, at=item.occurred_at, subject_id=subject_id
                )
                yield (
                    refiled or back_dated,
                    DueEntry(
                        ref=ref,
                        subject_id=subject_id,
                        conversation_id=item.conversation_id,
                        role=item.role,
                        channel=item.channel,
                        text_blob_key=item.text_blob_key,
                        expires=not refiled,
                    ),
                )

    def _profiles(self, tenant_id: str) -> Iterator[tuple[bool, DueEntry]]:
        for (tenant, subject_id), profile in self.subjects.profiles.items():
            if tenant != tenant_id or profile.status in ("erasing", "restricted"):
                continue
            refiled = self.late_profiles.get((tenant, subject_id)) == profile.version
            ref = IndexedRef(
                kind="profile", item_id=subject_id, at=profile.active_at or profile.created_at, subject_id=subject_id
            )
            yield (
                refiled or profile.active_at is not None,
                DueEntry(ref=ref, subject_id=subject_id, version=profile.version),
            )

    @staticmethod
    def _category_of(record: RequestItem) -> Category:
        """export_packages from its completion while the package is the record's (the DAL files it so once, and
        only retention's package_gone moves it), else closed_requests."""
        result = record.result
        return (
            "export_packages"
            if isinstance(result, ExportResult) and result.package_removed_at is None
            else "closed_requests"
        )

    def _requests(self, tenant_id: str, category: Category) -> Iterator[tuple[bool, DueEntry]]:
        for (tenant, request_id), record in self.requests.items.items():
            if tenant != tenant_id or record.is_open or record.completed_at is None:
                continue
            late, expires = False, True
            filed = self._category_of(record)
            if (tenant, request_id) in self.late_requests:
                (filed, expires), late = self.late_requests[(tenant, request_id)], True
            if filed != category:
                continue
            result = record.result
            yield (
                late,
                DueEntry(
                    ref=IndexedRef(kind="request", item_id=request_id, at=record.completed_at),
                    subject_id=record.subject_id,
                    expires=expires,
                    type=record.type,
                    package_key=result.package_key if isinstance(result, ExportResult) else None,
                ),
            )

    def due(
        self,
        tenant_id: str,
        category: Category,
        bucket: str,
        shard: int,
        upto: str,
        after: IndexedRef | None,
        limit: int,
        since: str | None = None,
    ) -> tuple[list[DueEntry], IndexedRef | None]:
        """The Query's key condition (day_sk <= upto~, and >= since) in day_sk order, after `after`."""
        self.queried.append((category, bucket, shard))

        def day_sk(ref: IndexedRef) -> str:
            return f"{ref.at}#{ref.item_id}"

        rows = sorted(
            (
                entry
                for late, entry in self._filed(tenant_id, category)
                if (bucket == LATE) == late
                and (late or entry.at[:10] == bucket)
                and shard_of(entry.ref.item_id) == shard
                and day_sk(entry.ref) <= f"{upto}~"
                and (since is None or day_sk(entry.ref) >= since)
                and (after is None or day_sk(entry.ref) > day_sk(after))
            ),
            key=lambda e: day_sk(e.ref),
        )
        page = [e.model_copy(deep=True) for e in rows[:limit]]
        more = len(rows) > limit or (self.full_pages_continue and len(page) == limit)
        return page, page[-1].ref if more and page else None

    def holds(self, tenant_id: str) -> dict[str, list[str]]:
        return {
            s: [str(c) for c in list(p.legal_hold.get("categories") or [])]  # type: ignore[call-overload]
            for (t, s), p in self.subjects.profiles.items()
            if t == tenant_id and p.legal_hold
        }

    def _markers(self, tenant_id: str, subject_id: str) -> set[str]:
        """A subject's markers: gone with its partition (an erasure deletes them with the profile)."""
        if (tenant_id, subject_id) not in self.subjects.profiles:
            self.markers.pop((tenant_id, subject_id), None)
        return self.markers.get((tenant_id, subject_id), set())

    def last_activity(self, tenant_id: str, subject_id: str) -> str | None:
        """The newest of ACTIVITY#... and I#... in sort key order: the latest interaction if there is one (I#
        sorts after ACTIVITY#), else the latest marker."""
        stored = self.subjects.interactions.get((tenant_id, subject_id), {})
        if stored:
            return max(stored)[0]
        markers = self._markers(tenant_id, subject_id)
        return max(markers) if markers else None

    # ------------------------------------------------------------------ acts
    @staticmethod
    def _item(tenant_id: str, ref: IndexedRef) -> ItemRef:
        """The subject's item the index entry files (FakeSubjectStore's ref)."""
        assert ref.subject_id is not None and ref.kind != "request"
        if ref.kind == "profile":
            return ItemRef(tenant_id, ref.subject_id, "profile")
        return ItemRef(tenant_id, ref.subject_id, "interaction", ref.item_id, ref.at)

    def remove(self, category: Category, tenant_id: str, refs: list[IndexedRef]) -> None:
        for ref in refs:
            if ref.kind == "request":
                self.requests.items.pop((tenant_id, ref.item_id), None)
                self.late_requests.pop((tenant_id, ref.item_id), None)
            else:
                self.subjects.delete_items([self._item(tenant_id, ref)])

    def remove_unless_held(
        self, act: Act, category: Category, subject_id: str, refs: list[IndexedRef], marker: str | None
    ) -> ActOutcome | None:
        if len(refs) > REMOVALS_PER_TRANSACTION:
            raise ValueError("more removals than one transaction holds")
        profile = self.subjects.profiles.get((act.tenant_id, subject_id))
        hold = (profile.legal_hold or {}) if profile else {}
        if profile is None or profile.status not in OPEN_PROFILE or category in (hold.get("categories") or []):  # type: ignore[operator]
            return None
        recorded = self.acts.get((act.tenant_id, act.run_id, act.seq, act.name))
        if recorded is not None:
            return recorded
        self.subjects.delete_items([self._item(act.tenant_id, ref) for ref in refs])
        for ref in refs:
            self.late_interactions.discard((act.tenant_id, subject_id, ref.item_id))
        if marker is not None:
            self.markers.setdefault((act.tenant_id, subject_id), set()).add(marker)
        self.acts[(act.tenant_id, act.run_id, act.seq, act.name)] = "removed"
        return "removed"

    def record_outcome(self, act: Act, outcome: ActOutcome) -> ActOutcome:
        return self.acts.setdefault((act.tenant_id, act.run_id, act.seq, act.name), outcome)

    def outcomes(self, tenant_id: str, run_id: str, seq: int) -> dict[str, ActOutcome]:
        return {n: o for (t, r, s, n), o in sorted(self.acts.items()) if (t, r, s) == (tenant_id, run_id, seq)}

    def refile_late(self, category: Category, tenant_id: str, refs: list[IndexedRef]) -> int:
        moved = 0
        for ref in refs:
            if ref.kind == "interaction":
                assert ref.subject_id is not None
                stored = self.subjects.interactions.get((tenant_id, ref.subject_id), {})
                if (ref.at, ref.item_id) in stored:
                    self.late_interactions.add((tenant_id, ref.subject_id, ref.item_id))
                    moved += 1
            elif ref.kind == "profile":
                profile = self.subjects.profiles.get((tenant_id, ref.item_id))
                if profile is not None and profile.status in OPEN_PROFILE:
                    self.late_profiles[(tenant_id, ref.item_id)] = profile.version
                    moved += 1
            elif (tenant_id, ref.item_id) in self.requests.items:
                self.late_requests[(tenant_id, ref.item_id)] = (category, False)
                moved += 1
        return moved

    def reindex_profile(self, tenant_id: str, subject_id: str, active_at: str, version: int) -> bool:
        profile = self.subjects.profiles.get((tenant_id, subject_id))
        if profile is None or profile.version != version or profile.status not in OPEN_PROFILE:
            return False
        update = {"active_at": active_at, "version": version + 1}
        self.subjects.profiles[(tenant_id, subject_id)] = profile.model_copy(update=update)
        return True

    def package_gone(self, tenant_id: str, request_id: str, completed_at: str, now: str) -> None:
        record = self.requests.items.get((tenant_id, request_id))
        if record is None or not isinstance(record.result, ExportResult):
            return
        result = record.result.model_copy(update={"package_removed_at": now, "package_key": None})
        self.requests.items[(tenant_id, request_id)] = record.model_copy(update={"result": result})
        expires = self.late_requests.get((tenant_id, request_id), ("closed_requests", True))[1]
        self.late_requests[(tenant_id, request_id)] = ("closed_requests", expires)

    # ------------------------------------------------------------------ watermarks
    def watermark(self, tenant_id: str, category: str) -> str | None:
        return self.marks.get((tenant_id, category))

    def watermarks(self, tenant_id: str) -> dict[str, str]:
        return {c: d for (t, c), d in sorted(self.marks.items()) if t == tenant_id}

    def advance_watermark(self, tenant_id: str, category: str, day: str) -> None:
        if self.marks.get((tenant_id, category), "") < day:
            self.marks[(tenant_id, category)] = day

    # ------------------------------------------------------------------ runs and the lease
    def lease(self, tenant_id: str) -> tuple[str, str] | None:
        return self.leases.get(tenant_id)

    def _put_run(self, run: RetentionRunItem) -> None:
        self.runs[(run.tenant_id, run.run_id)] = run.model_dump_json()

    def start_run(self, run: RetentionRunItem, until: str, replaces: str | None) -> None:
        held = self.leases.get(run.tenant_id)
        free = held is None if replaces is None else held is not None and held[0] == replaces
        if not free or (run.tenant_id, run.run_id) in self.runs:
            raise Conflict(RUN_CONFLICT)
        self.leases[run.tenant_id] = (run.run_id, until)
        self._put_run(run)

    def get_run(self, tenant_id: str, run_id: str) -> RetentionRunItem | None:
        stored = self.runs.get((tenant_id, run_id))
        return RetentionRunItem.model_validate_json(stored) if stored else None

    def commit(self, run: RetentionRunItem, until: str | None) -> None:
        stored = self.get_run(run.tenant_id, run.run_id)
        held = self.leases.get(run.tenant_id)
        if stored is None or stored.seq != run.seq - 1 or held is None or held[0] != run.run_id:
            raise Conflict(RUN_CONFLICT)
        self._put_run(run)
        if run.status == "completed":
            self.requests.outbox.record(ledger.retention_run(run, "completed"))
        if until is None:
            del self.leases[run.tenant_id]
        else:
            self.leases[run.tenant_id] = (run.run_id, until)

    def settle(self, run: RetentionRunItem) -> None:
        stored = self.get_run(run.tenant_id, run.run_id)
        if stored is not None and stored.seq == run.seq and not stored.settled:
            self._put_run(run)
            if run.status == "completed":
                self.requests.outbox.record(ledger.retention_run(run, "settled"))

    def abandon(self, tenant_id: str, run_id: str) -> None:
        run = self.get_run(tenant_id, run_id)
        if run is not None and run.status == "running":
            self._put_run(run.model_copy(update={"status": "abandoned", "pending": None}))

    def runs_page(self, tenant_id: str, limit: int, after: str | None) -> tuple[list[RetentionRunItem], str | None]:
        """Newest first by sk (RUN#<run id>), after `after`'s, reading one ahead."""
        sks = sorted((keyspace.run_sk(r) for t, r in self.runs if t == tenant_id), reverse=True)
        start = keyspace.run_sk(after.removeprefix(keyspace.RUN_PREFIX)) if after else None
        rows = [sk for sk in sks if start is None or sk < start][: limit + 1]
        runs = [r for sk in rows[:limit] if (r := self.get_run(tenant_id, sk.removeprefix(keyspace.RUN_PREFIX)))]
        return runs, runs[-1].run_id if len(rows) > limit and runs else None


class FakeAnalyticsStore:
    """Profiles' status and objections (from `subjects`) and each day's aggregate, stored once."""

    def __init__(self, subjects: FakeSubjectStore) -> None:
        self.subjects = subjects
        self.aggregates: dict[tuple[str, str], DailyAggregate] = {}

    def profiles(self, tenant_id: str, subject_ids: list[str]) -> dict[str, tuple[str, list[str]]]:
        found = ((s, self.subjects.profiles.get((tenant_id, s))) for s in subject_ids)
        return {s: (p.status, sorted(p.objections)) for s, p in found if p is not None}

    def get_day(self, tenant_id: str, day: str) -> DailyAggregate | None:
        found = self.aggregates.get((tenant_id, day))
        return found.model_copy(deep=True) if found else None

    def put_day(self, tenant_id: str, aggregate: DailyAggregate) -> bool:
        if (tenant_id, aggregate.day) in self.aggregates:
            return False
        self.aggregates[(tenant_id, aggregate.day)] = aggregate.model_copy(deep=True)
        return True

    def days(self, tenant_id: str, first: str, last: str) -> list[DailyAggregate]:
        return [
            a.model_copy(deep=True)
            for (t, d), a in sorted(self.aggregates.items())
            if t == tenant_id and first <= d <= last
        ]


if TYPE_CHECKING:  # retention's and analytics' fakes satisfy their ports
    _retention: ports.RetentionStore = FakeRetentionStore(FakeSubjectStore(), FakeRequestStore())
    _analytics: ports.AnalyticsStore = FakeAnalyticsStore(FakeSubjectStore())
