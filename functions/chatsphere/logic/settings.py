"""Tenant settings: read, replace (PUT) and merge-patch (PATCH), with the checks no JSON Schema can state.

Every write increments the stored version (the ETag); with If-Match, the version it names is the write's own
condition, so that two writers holding the same ETag cannot both succeed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatsphere.errors import Conflict, InvalidInput
from chatsphere.logic.ports import SettingsStore
from chatsphere.logic.preconditions import IfMatch, require
from chatsphere.models.common import iso, merge_patched
from chatsphere.models.export import bucket_of
from chatsphere.models.settings import TenantSettings

SAVE_ATTEMPTS = 3


@dataclass(frozen=True)
class SettingsPorts:
    settings: SettingsStore
    own_buckets: frozenset[str]  # never a portability destination


def read_settings(ports: SettingsPorts, tenant_id: str) -> tuple[TenantSettings, int]:
    """The settings and their version (the ETag)."""
    return ports.settings.read_settings(tenant_id)


def _check(own_buckets: frozenset[str], settings: TenantSettings) -> None:
    """A portability destination in one of the service's own buckets is refused: through deliver_to it would
    let a tenant write into another tenant's storage."""
    for number, uri in enumerate(settings.portability_destinations):
        if bucket_of(uri) in own_buckets:
            raise InvalidInput(f"portability_destinations[{number}] is one of the service's own buckets")


def replace_settings(
    ports: SettingsPorts, tenant_id: str, settings: TenantSettings, now: datetime, *, if_match: IfMatch = None
) -> tuple[TenantSettings, int]:
    """Store the whole document; returns it and its new version."""
    tenants = ports.settings
    _check(ports.own_buckets, settings)
    if if_match is None:
        return settings, tenants.put_settings(tenant_id, settings, iso(now))
    for _ in range(SAVE_ATTEMPTS):
        current, version = tenants.read_settings(tenant_id)
        require(if_match, version)
        try:
            return settings, tenants.put_settings(
                tenant_id, settings, iso(now), expected_version=version, previous=current
            )
        except Conflict:
            continue  # read again: a named version that is gone is a 412, `*` tries again
    raise Conflict("the settings are being changed concurrently; retry")


def patch_settings(
    ports: SettingsPorts, tenant_id: str, patch: dict[str, Any], now: datetime, *, if_match: IfMatch = None
) -> tuple[TenantSettings, int]:
    """Apply a JSON merge patch to the stored settings; a key set to null goes back to its default. The result
    is validated as a PUT body is (a pydantic ValidationError, or InvalidInput, and nothing is written), and
    written conditioned on the version it was merged onto: a concurrent change is merged again, not lost."""
    tenants = ports.settings
    for _ in range(SAVE_ATTEMPTS):
        current, version = tenants.read_settings(tenant_id)
        require(if_match, version)
        settings = merge_patched(TenantSettings, current.model_dump(mode="json"), patch)
        _check(ports.own_buckets, settings)
        try:
            return settings, tenants.put_settings(
                tenant_id, settings, iso(now), expected_version=version, previous=current
            )
        except Conflict:
            continue
    raise Conflict("the settings are being changed concurrently; retry")
