"""The composition root: the one place where adapters are built, for every entry point (the API handlers,
the workers, the authorizer, the console command and the local stack).

Nothing connects at import time, and each builder imports only what its entry point needs, so the
authorizer's cold start does not pay for the rest."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the adapters' modules load when built, not when this module is imported
    from chatsphere.dal.api_keys import DynamoApiKeyReader, DynamoApiKeyStore
    from chatsphere.dal.blobs import S3BlobStore
    from chatsphere.dal.data_keys import DynamoDataKeyStore
    from chatsphere.dal.idempotency import DynamoIdempotencyRecords
    from chatsphere.dal.kms import KmsKeyWrapper
    from chatsphere.dal.messaging import EventBridgePublisher, SqsJobQueue
    from chatsphere.dal.policies import DynamoPolicyStore
    from chatsphere.dal.requests import DynamoRequestStore
    from chatsphere.dal.retention import DynamoRetentionStore
    from chatsphere.dal.settings import DynamoSettingsStore
    from chatsphere.dal.subjects import DynamoSubjectStore
    from chatsphere.dal.tenants import DynamoTenantDirectory, DynamoTenantStore
    from chatsphere.dal.tombstones import DynamoTombstoneStore
    from chatsphere.logic.analytics import Analytics
    from chatsphere.logic.crypto import Keyring
    from chatsphere.logic.deletion import DeletionPorts
    from chatsphere.logic.export import ExportPorts
    from chatsphere.logic.intake import IntakePorts
    from chatsphere.logic.ports import TenantSecret
    from chatsphere.logic.reconcile import ReconcilePorts
    from chatsphere.logic.retention import RetentionPorts
    from chatsphere.logic.subject_rights import SubjectRightsPorts
    from chatsphere.logic.tombstones import Tombstones
    from chatsphere.models.deletion import DeletionJob
    from chatsphere.models.export import ExportJob
    from chatsphere.models.retention import RetentionJob


@dataclass(frozen=True)
class Adapters:
    """Every adapter over AWS. Handlers hand each logic function the few it takes."""

    subjects: DynamoSubjectStore
    kms: KmsKeyWrapper
    data_keys: DynamoDataKeyStore
    keyring: Keyring
    blobs: S3BlobStore
    tenants: DynamoTenantStore
    settings: DynamoSettingsStore
    policies: DynamoPolicyStore
    directory: DynamoTenantDirectory  # a job's read of its tenant and settings
    secret: TenantSecret
    requests: DynamoRequestStore
    tombstone_store: DynamoTombstoneStore  # the tombstones themselves, and the sweep's erased subjects
    tombstones: Tombstones
    export_jobs: SqsJobQueue[ExportJob]
    deletion_jobs: SqsJobQueue[DeletionJob]
    retention_jobs: SqsJobQueue[RetentionJob]
    retention: DynamoRetentionStore
    analytics: Analytics  # the day index, the aggregates and the tenants' settings
    events: EventBridgePublisher
    idempotency: DynamoIdempotencyRecords
    own_buckets: frozenset[str]  # every bucket of the stack: never a delivery destination


@cache
def adapters() -> Adapters:
    from chatsphere.config import get_config
    from chatsphere.dal.analytics import DynamoAnalyticsStore
    from chatsphere.dal.blobs import S3BlobStore
    from chatsphere.dal.data_keys import DynamoDataKeyStore
    from chatsphere.dal.idempotency import DynamoIdempotencyRecords
    from chatsphere.dal.messaging import EventBridgePublisher, SqsJobQueue
    from chatsphere.dal.policies import DynamoPolicyStore
    from chatsphere.dal.requests import DynamoRequestStore
    from chatsphere.dal.retention import DynamoRetentionStore
    from chatsphere.dal.settings import DynamoSettingsStore
    from chatsphere.dal.subjects import DynamoSubjectStore
    from chatsphere.dal.tenants import DynamoTenantDirectory
    from chatsphere.dal.tombstones import DynamoTombstoneStore
    from chatsphere.logic.analytics import Analytics
    from chatsphere.logic.crypto import Keyring
    from chatsphere.logic.tenants import TenantSecrets
    from chatsphere.logic.tombstones import Tombstones

    config = get_config()
    kms = key_wrapper(config.data_key_id)
    tenants = tenant_store(config.tenants_table)
    settings = DynamoSettingsStore(config.tenants_table)
    directory = DynamoTenantDirectory(tenants, settings)
    data_keys = DynamoDataKeyStore(config.subject_keys_table)
    secret = TenantSecrets(tenants, kms).hmac_key
    requests = DynamoRequestStore(config.requests_table)
    tombstone_store = DynamoTombstoneStore(config.requests_table)
    retention = DynamoRetentionStore(config.subjects_table, config.requests_table, config.tenants_table)
    return Adapters(
        subjects=DynamoSubjectStore(config.subjects_table, config.requests_table, config.subject_keys_table),
        kms=kms,
        data_keys=data_keys,
        keyring=Keyring(data_keys, kms),
        blobs=S3BlobStore(config.data_bucket, config.delivery_role_arn),
        tenants=tenants,
        settings=settings,
        policies=DynamoPolicyStore(config.tenants_table),
        directory=directory,
        secret=secret,
        requests=requests,
        tombstone_store=tombstone_store,
        tombstones=Tombstones(tombstone_store, secret),
        export_jobs=SqsJobQueue(config.export_queue_url),
        deletion_jobs=SqsJobQueue(config.deletion_queue_url),
        retention_jobs=SqsJobQueue(config.retention_queue_url),
        retention=retention,
        analytics=Analytics(retention, DynamoAnalyticsStore(config.subjects_table, config.tenants_table), directory),
        events=EventBridgePublisher(config.event_bus_name),
        idempotency=DynamoIdempotencyRecords(config.idempotency_table),
        own_buckets=config.own_buckets,
    )


def export_ports() -> ExportPorts:
    """An export's request (RightsFunction) and its job (ExportFunction)."""
    from chatsphere.logic.export import ExportPorts

    a = adapters()
    return ExportPorts(
        requests=a.requests,
        subjects=a.subjects,
        keyring=a.keyring,
        blobs=a.blobs,
        tenants=a.directory,
        events=a.events,
        tombstones=a.tombstones,
        jobs=a.export_jobs,
        own_buckets=a.own_buckets,
    )


def deletion_ports() -> DeletionPorts:
    """A deletion's request (IntakeFunction, retention) and its job (DeletionFunction)."""
    from chatsphere.logic.deletion import DeletionPorts

    a = adapters()
    return DeletionPorts(
        requests=a.requests,
        subjects=a.subjects,
        data_keys=a.data_keys,
        blobs=a.blobs,
        idempotency=a.idempotency,
        events=a.events,
        tombstones=a.tombstones,
        settings=a.settings,
        jobs=a.deletion_jobs,
    )


def retention_ports() -> RetentionPorts:
    """Retention's ports over the adapters: for its worker and the console command's `retention run`."""
    from chatsphere.logic.retention import RetentionPorts

    a = adapters()
    return RetentionPorts(
        store=a.retention,
        tenants=a.directory,
        blobs=a.blobs,
        jobs=a.retention_jobs,
        aggregates=a.analytics,
        subjects=a.subjects,
        deletion=deletion_ports(),
        erased=a.tombstone_store,
    )


def intake_ports() -> IntakePorts:
    """Subjects, interactions and lookups (IntakeFunction)."""
    from chatsphere.logic.intake import IntakePorts

    a = adapters()
    return IntakePorts(
        subjects=a.subjects,
        keyring=a.keyring,
        data_keys=a.data_keys,
        blobs=a.blobs,
        secret=a.secret,
        settings=a.settings,
        policies=a.policies,
        events=a.events,
        tombstones=a.tombstones,
        idempotency=a.idempotency,
    )


def subject_rights_ports() -> SubjectRightsPorts:
    """Correction, objection, deactivation and legal holds (IntakeFunction's subject-rights routes)."""
    from chatsphere.logic.subject_rights import SubjectRightsPorts

    a = adapters()
    return SubjectRightsPorts(
        subjects=a.subjects,
        keyring=a.keyring,
        secret=a.secret,
        settings=a.settings,
        events=a.events,
        tombstones=a.tombstones,
        requests=a.requests,
        deletion_jobs=a.deletion_jobs,
        blobs=a.blobs,
    )


@cache
def api_key_reader() -> DynamoApiKeyReader:
    """The authorizer's one adapter; it reads TENANTS_TABLE alone, not the whole Config (pydantic)."""
    import os

    from chatsphere.dal.api_keys import DynamoApiKeyReader

    return DynamoApiKeyReader(os.environ["TENANTS_TABLE"])


def tenant_store(table_name: str) -> DynamoTenantStore:
    """For the console command too, which names its table itself."""
    from chatsphere.dal.tenants import DynamoTenantStore

    return DynamoTenantStore(table_name)


def api_key_store(table_name: str) -> DynamoApiKeyStore:
    """The console command's `keys`, which names its table itself."""
    from chatsphere.dal.api_keys import DynamoApiKeyStore

    return DynamoApiKeyStore(table_name)


def key_wrapper(key_id: str) -> KmsKeyWrapper:
    from chatsphere.dal.kms import KmsKeyWrapper

    return KmsKeyWrapper(key_id)


def reconcile_ports(
    *,
    tenants_table: str,
    requests_table: str,
    subjects_table: str,
    subject_keys_table: str,
    idempotency_table: str,
    data_bucket: str,
    key_id: str,
) -> ReconcilePorts:
    """For the console command's `reconcile`, which names the tables and bucket itself."""
    from chatsphere.dal.blobs import S3BlobStore
    from chatsphere.dal.data_keys import DynamoDataKeyStore
    from chatsphere.dal.idempotency import DynamoIdempotencyRecords
    from chatsphere.dal.requests import DynamoRequestStore
    from chatsphere.dal.subjects import DynamoSubjectStore
    from chatsphere.dal.tombstones import DynamoTombstoneStore
    from chatsphere.logic.intake import IDEMPOTENCY
    from chatsphere.logic.reconcile import ReconcilePorts
    from chatsphere.logic.tenants import TenantSecrets

    tenants = tenant_store(tenants_table)
    requests = DynamoRequestStore(requests_table)
    return ReconcilePorts(
        tenants=tenants,
        requests=requests,
        tombstones=DynamoTombstoneStore(requests_table),
        subjects=DynamoSubjectStore(subjects_table, requests_table, subject_keys_table),
        data_keys=DynamoDataKeyStore(subject_keys_table),
        blobs=S3BlobStore(data_bucket),
        idempotency=DynamoIdempotencyRecords(idempotency_table),
        secret=TenantSecrets(tenants, key_wrapper(key_id)).hmac_key,
        idempotency_lifetime=IDEMPOTENCY.expires_after_seconds,
    )
