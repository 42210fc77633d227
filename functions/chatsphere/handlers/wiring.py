"""Builds the ports over AWS once per cold start (lazily: nothing connects at import time)."""

from __future__ import annotations

from functools import cache

from chatsphere.config import get_settings
from chatsphere.dal.blobs import S3BlobStore
from chatsphere.dal.kms import KmsKeyWrapper
from chatsphere.dal.messaging import EventBridgePublisher, SqsJobQueue
from chatsphere.dal.requests import DynamoRequestStore
from chatsphere.dal.subject_keys import DynamoSubjectKeyStore
from chatsphere.dal.subjects import DynamoSubjectStore
from chatsphere.dal.tenants import DynamoTenantStore
from chatsphere.logic.ports import Ports
from chatsphere.logic.tenants import TenantSecrets


@cache
def ports() -> Ports:
    settings = get_settings()
    kms = KmsKeyWrapper(settings.data_key_id)
    tenants = DynamoTenantStore(settings.tenants_table)
    return Ports(
        subjects=DynamoSubjectStore(settings.subjects_table, settings.requests_table),
        subject_keys=DynamoSubjectKeyStore(settings.subject_keys_table),
        kms=kms,
        blobs=S3BlobStore(settings.data_bucket),
        tenants=tenants,
        hmac_key=TenantSecrets(tenants, kms).hmac_key,
        requests=DynamoRequestStore(settings.requests_table),
        export_jobs=SqsJobQueue(settings.export_queue_url),
        events=EventBridgePublisher(settings.event_bus_name),
    )
