"""The composition root: `build(config, **overrides)` wires every capability's ports, for every entry point (the
API handlers, the workers, the console command, the local stack and the tests; unit tests give fakes as overrides).

Nothing connects at import time, and nothing is built before it is used: each adapter and each capability's ports
are built on first use, importing only their own modules, so a handler's cold start pays for what it touches. The
authorizer alone does not go through it: `api_key_reader()` reads one variable, so that it loads no pydantic."""

from __future__ import annotations

from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the adapters' and ports' modules load when built, not when this module is imported
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

    from chatsphere.config import Config
    from chatsphere.dal.api_keys import DynamoApiKeyReader
    from chatsphere.logic.analytics import AnalyticsPorts
    from chatsphere.logic.crypto import Keyring
    from chatsphere.logic.deletion import DeletionPorts
    from chatsphere.logic.export import ExportPorts
    from chatsphere.logic.intake import IntakePorts
    from chatsphere.logic.ledger import LedgerPorts
    from chatsphere.logic.monitor import MonitorPorts
    from chatsphere.logic.offboarding import OffboardingPorts
    from chatsphere.logic.policies import PoliciesPorts
    from chatsphere.logic.ports import (
        AnalyticsStore,
        ApiKeyStore,
        BlobStore,
        DataKeyStore,
        DeletedSubjects,
        EventPublisher,
        IdempotencyRecords,
        JobQueue,
        KeyWrapper,
        LedgerArchive,
        LedgerIndex,
        LedgerOutbox,
        OffboardingStore,
        PolicyStore,
        RequestStore,
        RetentionStore,
        SettingsStore,
        Signer,
        SubjectStore,
        TenantDirectory,
        TenantSecret,
        TenantStore,
        TombstoneStore,
    )
    from chatsphere.logic.processing import ProcessingPorts
    from chatsphere.logic.reconcile import ReconcilePorts
    from chatsphere.logic.reports import ReportsPorts
    from chatsphere.logic.requests import RequestsPorts
    from chatsphere.logic.retention import RetentionPorts
    from chatsphere.logic.settings import SettingsPorts
    from chatsphere.logic.subject_rights import SubjectRightsPorts
    from chatsphere.logic.tenants import TenantsPorts
    from chatsphere.logic.tombstones import Tombstones
    from chatsphere.models.deletion import DeletionJob
    from chatsphere.models.export import ExportJob
    from chatsphere.models.retention import RetentionJob


class Adapters:
    """Every adapter, each built from the config on first use, unless given as an override (a fake, in unit tests)."""

    def __init__(self, config: Config | None, overrides: dict[str, Any]) -> None:
        unknown = sorted(set(overrides) - ADAPTERS)
        if unknown:
            raise TypeError(f"no adapter named {', '.join(unknown)}")
        self._config = config
        self.__dict__.update(overrides)  # a cached_property reads the instance's dict first: the override wins

    @property
    def config(self) -> Config:
        if self._config is None:
            raise TypeError("this adapter was neither given as an override nor can be built without a config")
        return self._config

    # ------------------------------------------------------------ leaves: one AWS resource each
    @cached_property
    def kms(self) -> KeyWrapper:
        from chatsphere.dal.kms import KmsKeyWrapper

        return KmsKeyWrapper(self.config.data_key_id)

    @cached_property
    def subjects(self) -> SubjectStore:
        from chatsphere.dal.subjects import DynamoSubjectStore

        c = self.config
        return DynamoSubjectStore(c.subjects_table, c.requests_table, c.subject_keys_table, c.outbox_table)

    @cached_property
    def offboarding(self) -> OffboardingStore:
        from chatsphere.dal.offboarding import DynamoOffboardingStore

        c = self.config
        return DynamoOffboardingStore(c.requests_table, c.tenants_table, c.outbox_table)

    @cached_property
    def data_keys(self) -> DataKeyStore:
        from chatsphere.dal.data_keys import DynamoDataKeyStore

        return DynamoDataKeyStore(self.config.subject_keys_table)

    @cached_property
    def blobs(self) -> BlobStore:
        from chatsphere.dal.blobs import S3BlobStore

        return S3BlobStore(self.config.data_bucket, self.config.delivery_role_arn)

    @cached_property
    def tenants(self) -> TenantStore:
        from chatsphere.dal.tenants import DynamoTenantStore

        return DynamoTenantStore(self.config.tenants_table, self.config.outbox_table)

    @cached_property
    def api_keys(self) -> ApiKeyStore:
        from chatsphere.dal.api_keys import DynamoApiKeyStore

        return DynamoApiKeyStore(self.config.tenants_table, self.config.outbox_table)

    @cached_property
    def settings(self) -> SettingsStore:
        from chatsphere.dal.settings import DynamoSettingsStore

        return DynamoSettingsStore(self.config.tenants_table, self.config.outbox_table)

    @cached_property
    def policies(self) -> PolicyStore:
        from chatsphere.dal.policies import DynamoPolicyStore

        return DynamoPolicyStore(self.config.tenants_table, self.config.outbox_table)

    @cached_property
    def directory(self) -> TenantDirectory:
        from chatsphere.dal.tenants import DynamoTenantDirectory

        return DynamoTenantDirectory(self.config.tenants_table)

    @cached_property
    def requests(self) -> RequestStore:
        from chatsphere.dal.requests import DynamoRequestStore

        return DynamoRequestStore(self.config.requests_table, self.config.outbox_table)

    @cached_property
    def tombstone_store(self) -> TombstoneStore:
        from chatsphere.dal.tombstones import DynamoTombstoneStore

        return DynamoTombstoneStore(self.config.requests_table, self.config.outbox_table)

    @cached_property
    def deleted_subjects(self) -> DeletedSubjects:
        from chatsphere.dal.tombstones import DynamoTombstoneStore

        return DynamoTombstoneStore(self.config.requests_table, self.config.outbox_table)

    @cached_property
    def retention_store(self) -> RetentionStore:
        from chatsphere.dal.retention import DynamoRetentionStore

        c = self.config
        return DynamoRetentionStore(c.subjects_table, c.requests_table, c.tenants_table, c.outbox_table)

    @cached_property
    def analytics_store(self) -> AnalyticsStore:
        from chatsphere.dal.analytics import DynamoAnalyticsStore

        return DynamoAnalyticsStore(self.config.subjects_table, self.config.tenants_table)

    @cached_property
    def export_jobs(self) -> JobQueue[ExportJob]:
        from chatsphere.dal.messaging import SqsJobQueue

        return SqsJobQueue(self.config.export_queue_url)

    @cached_property
    def deletion_jobs(self) -> JobQueue[DeletionJob]:
        from chatsphere.dal.messaging import SqsJobQueue

        return SqsJobQueue(self.config.deletion_queue_url)

    @cached_property
    def retention_jobs(self) -> JobQueue[RetentionJob]:
        from chatsphere.dal.messaging import SqsJobQueue

        return SqsJobQueue(self.config.retention_queue_url)

    @cached_property
    def events(self) -> EventPublisher:
        from chatsphere.dal.messaging import EventBridgePublisher

        return EventBridgePublisher(self.config.event_bus_name)

    @cached_property
    def idempotency(self) -> IdempotencyRecords:
        from chatsphere.dal.idempotency import DynamoIdempotencyRecords

        return DynamoIdempotencyRecords(self.config.idempotency_table)

    @cached_property
    def idempotency_layer(self) -> Callable[[str, str], BasePersistenceLayer]:
        """Powertools' persistence layer over one subject's idempotency records: Powertools writes them, deletion
        removes them (through `idempotency`)."""
        from chatsphere.dal.idempotency import DynamoIdempotencyRecords

        return DynamoIdempotencyRecords(self.config.idempotency_table).layer

    @cached_property
    def outbox(self) -> LedgerOutbox:
        from chatsphere.dal.ledger import DynamoOutbox

        return DynamoOutbox(self.config.outbox_table)

    @cached_property
    def ledger_index(self) -> LedgerIndex:
        from chatsphere.dal.ledger import DynamoLedgerIndex

        return DynamoLedgerIndex(self.config.ledger_table, self.config.outbox_table)

    @cached_property
    def ledger_archive(self) -> LedgerArchive:
        from chatsphere.dal.ledger import S3LedgerArchive

        return S3LedgerArchive(self.config.ledger_bucket)

    @cached_property
    def signer(self) -> Signer:
        from chatsphere.dal.ledger import KmsSigner

        return KmsSigner(self.config.ledger_key_id)

    @cached_property
    def own_buckets(self) -> frozenset[str]:
        """Every bucket of the stack: never a delivery destination."""
        return self.config.own_buckets

    # ------------------------------------------------------------ services over the leaves
    @cached_property
    def keyring(self) -> Keyring:
        from chatsphere.logic.crypto import Keyring

        return Keyring(self.data_keys, self.kms)

    @cached_property
    def secret(self) -> TenantSecret:
        from chatsphere.logic.tenants import TenantSecrets

        return TenantSecrets(self.tenants, self.kms).hmac_key

    @cached_property
    def tombstones(self) -> Tombstones:
        from chatsphere.logic.tombstones import Tombstones

        return Tombstones(self.tombstone_store, self.secret)


ADAPTERS = frozenset(name for name, value in vars(Adapters).items() if isinstance(value, cached_property))


class Wiring:
    """Each capability's ports over one set of adapters, built on first use."""

    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters

    @cached_property
    def intake(self) -> IntakePorts:
        """Subjects, interactions and lookups (IntakeFunction)."""
        from chatsphere.logic.intake import IntakePorts

        a = self.adapters
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
            idempotency_layer=a.idempotency_layer,
        )

    @cached_property
    def subject_rights(self) -> SubjectRightsPorts:
        """Correction, objection, deactivation and legal holds (IntakeFunction's subject-rights routes)."""
        from chatsphere.logic.subject_rights import SubjectRightsPorts

        a = self.adapters
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

    @cached_property
    def export(self) -> ExportPorts:
        """An export's request (RightsFunction) and its job (ExportFunction)."""
        from chatsphere.logic.export import ExportPorts

        a = self.adapters
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
            secret=a.secret,
            idempotency_layer=a.idempotency_layer,
        )

    @cached_property
    def offboarding(self) -> OffboardingPorts:
        """A tenant's offboarding: its request (RightsFunction) and its job (DeletionFunction)."""
        from chatsphere.logic.offboarding import OffboardingPorts

        return OffboardingPorts(
            offboarding=self.adapters.offboarding,
            export=self.export,
            deletion=self.deletion,
            jobs=self.adapters.deletion_jobs,
            own_buckets=self.adapters.own_buckets,
            secret=self.adapters.secret,
        )

    @cached_property
    def deletion(self) -> DeletionPorts:
        """A deletion's request (IntakeFunction, retention) and its job (DeletionFunction)."""
        from chatsphere.logic.deletion import DeletionPorts

        a = self.adapters
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
            policies=a.policies,
        )

    @cached_property
    def retention(self) -> RetentionPorts:
        """Retention's worker (RetentionFunction) and the console command's `retention run`."""
        from chatsphere.logic.retention import RetentionPorts

        a = self.adapters
        return RetentionPorts(
            store=a.retention_store,
            tenants=a.directory,
            blobs=a.blobs,
            jobs=a.retention_jobs,
            aggregates=self.analytics,
            subjects=a.subjects,
            deletion=self.deletion,
            deleted_subjects=a.deleted_subjects,
        )

    @cached_property
    def analytics(self) -> AnalyticsPorts:
        """The daily aggregates (AnalyticsFunction, RightsFunction's read, and retention's anonymize)."""
        from chatsphere.logic.analytics import AnalyticsPorts

        a = self.adapters
        return AnalyticsPorts(a.retention_store, a.analytics_store, a.directory)

    @cached_property
    def requests(self) -> RequestsPorts:
        """Reading, listing and extending rights request records (RightsFunction)."""
        from chatsphere.logic.requests import RequestsPorts

        a = self.adapters
        return RequestsPorts(requests=a.requests, blobs=a.blobs, secret=a.secret, settings=a.settings)

    @cached_property
    def reports(self) -> ReportsPorts:
        """The request metrics (RightsFunction)."""
        from chatsphere.logic.reports import ReportsPorts

        return ReportsPorts(requests=self.adapters.requests)

    @cached_property
    def processing(self) -> ProcessingPorts:
        """The record of processing (RightsFunction)."""
        from chatsphere.logic.processing import ProcessingPorts

        a = self.adapters
        return ProcessingPorts(settings=a.settings, tenants=a.directory, subjects=a.subjects, requests=a.requests)

    @cached_property
    def settings(self) -> SettingsPorts:
        """A tenant's settings (RightsFunction)."""
        from chatsphere.logic.settings import SettingsPorts

        a = self.adapters
        return SettingsPorts(settings=a.settings, own_buckets=a.own_buckets)

    @cached_property
    def policies(self) -> PoliciesPorts:
        """A tenant's policy versions (RightsFunction)."""
        from chatsphere.logic.policies import PoliciesPorts

        return PoliciesPorts(policies=self.adapters.policies, events=self.adapters.events)

    @cached_property
    def monitor(self) -> MonitorPorts:
        """The watch over open requests (MonitorFunction)."""
        from chatsphere.logic.monitor import MonitorPorts

        a = self.adapters
        return MonitorPorts(requests=a.requests, export_jobs=a.export_jobs, deletion_jobs=a.deletion_jobs)

    @cached_property
    def tenants(self) -> TenantsPorts:
        """Tenants and their API keys (the console command)."""
        from chatsphere.logic.tenants import TenantsPorts

        a = self.adapters
        return TenantsPorts(tenants=a.tenants, api_keys=a.api_keys, kms=a.kms)

    @cached_property
    def ledger(self) -> LedgerPorts:
        """The evidence ledger: its sequencer and signer (LedgerFunction), its proofs (RightsFunction)."""
        from chatsphere.logic.ledger import LedgerPorts

        a = self.adapters
        return LedgerPorts(
            outbox=a.outbox,
            index=a.ledger_index,
            archive=a.ledger_archive,
            signer=a.signer,
            events=a.events,
            tenants=a.tenants,
        )

    @cached_property
    def reconcile(self) -> ReconcilePorts:
        """The console command's `reconcile`, after a restore."""
        from chatsphere.logic.idempotency import IDEMPOTENCY_LIFETIME_SECONDS
        from chatsphere.logic.reconcile import ReconcilePorts

        a = self.adapters
        return ReconcilePorts(
            tenants=a.tenants,
            requests=a.requests,
            tombstones=a.tombstone_store,
            subjects=a.subjects,
            data_keys=a.data_keys,
            blobs=a.blobs,
            idempotency=a.idempotency,
            secret=a.secret,
            idempotency_lifetime=IDEMPOTENCY_LIFETIME_SECONDS,
            ledger=a.ledger_index,
            outbox=a.outbox,
        )


def build(config: Config | None = None, **overrides: Any) -> Wiring:
    """Every capability's ports over adapters built from `config`, but those given by name in `overrides` (see
    Adapters). Sends AWS calls where the config's `aws` says (the environment's own endpoint and credentials by
    default): the console command names the local stack's this way instead of editing the environment."""
    if config is not None:
        from chatsphere.dal import clients

        clients.use(config.aws)
    return Wiring(Adapters(config, overrides))


@cache
def wiring() -> Wiring:
    """The functions' wiring, once per cold start, from their environment (template.yaml's Globals)."""
    from chatsphere.config import get_config

    return build(get_config())


@cache
def api_key_reader() -> DynamoApiKeyReader:
    """The authorizer's one adapter; it reads TENANTS_TABLE alone, not the whole Config (pydantic)."""
    import os

    from chatsphere.dal.api_keys import DynamoApiKeyReader

    return DynamoApiKeyReader(os.environ["TENANTS_TABLE"])
