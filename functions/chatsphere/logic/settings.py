"""Tenant settings: read, and replace with the checks no JSON Schema can state."""

from __future__ import annotations

from datetime import datetime

from chatsphere.errors import InvalidInput
from chatsphere.logic.ports import TenantStore
from chatsphere.models.common import iso
from chatsphere.models.export import bucket_of
from chatsphere.models.settings import TenantSettings


def replace_settings(
    tenants: TenantStore, own_buckets: frozenset[str], tenant_id: str, settings: TenantSettings, now: datetime
) -> TenantSettings:
    """Store the whole document. A portability destination in one of the service's own buckets is refused:
    through deliver_to it would let a tenant write into another tenant's storage."""
    for number, uri in enumerate(settings.portability_destinations):
        if bucket_of(uri) in own_buckets:
            raise InvalidInput(f"portability_destinations[{number}] is one of the service's own buckets")
    tenants.put_settings(tenant_id, settings, iso(now))
    return settings
