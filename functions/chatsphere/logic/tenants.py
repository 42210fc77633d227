"""Tenants: creation with a first API key, and the per-tenant secret behind the identifier index and cursors.

The API key check is logic/api_keys.py, the authorizer's own small module."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from chatsphere.errors import Conflict, InvalidInput, NotFound, Unauthorized
from chatsphere.logic.api_keys import API_KEY_RE, hash_api_key
from chatsphere.logic.crypto import tenant_hmac_context
from chatsphere.logic.ports import ApiKeyStore, KeyWrapper, TenantStore
from chatsphere.models.common import iso, utc_now
from chatsphere.models.items import KEY_ID_LENGTH, ApiKeyItem, TenantItem


@dataclass(frozen=True)
class TenantsPorts:
    """What the operator's tenant and API-key commands touch."""

    tenants: TenantStore
    api_keys: ApiKeyStore
    kms: KeyWrapper  # a new tenant's secret


def _random_key(tenant_id: str) -> str:
    return f"cs_{tenant_id}.{secrets.token_urlsafe(32)}"


def _key_item(tenant_id: str, api_key: str, now: str) -> ApiKeyItem:
    return ApiKeyItem(tenant_id=tenant_id, key_hash=hash_api_key(api_key), created_at=now)


def create_tenant(ports: TenantsPorts, name: str) -> tuple[TenantItem, str]:
    """A new tenant with one API key. The key is returned once; only its hash is stored."""
    tenant_id = "t" + secrets.token_hex(8)
    return create_tenant_with_key(ports, name, _random_key(tenant_id))


def create_tenant_with_key(ports: TenantsPorts, name: str, api_key: str) -> tuple[TenantItem, str]:
    """A tenant whose id and first key are given (the key names the tenant: `cs_<tenant_id>.<secret>`).

    For the local stack's demo tenants, which must keep their ids and keys across restarts; a deployed tenant
    is made by create_tenant, with a random id and key. The store refuses a tenant id that exists."""
    match = API_KEY_RE.match(api_key)
    if match is None:
        raise ValueError("an API key is cs_<t + 16 hex>.<43 of [A-Za-z0-9_-]>")
    tenant_id = match.group(1)
    _, wrapped = ports.kms.generate(tenant_hmac_context(tenant_id))
    now = iso(utc_now())
    tenant = TenantItem(tenant_id=tenant_id, name=name, created_at=now, hmac_key_wrapped=wrapped)
    ports.tenants.create_tenant(tenant, _key_item(tenant_id, api_key, now))
    return tenant, api_key


def list_tenants(ports: TenantsPorts) -> list[TenantItem]:
    """Every tenant, in id order (operator commands only: a Query of the registry, then one read per tenant)."""
    found = [ports.tenants.get_tenant(tenant_id) for tenant_id in ports.tenants.tenant_ids()]
    return [tenant for tenant in found if tenant is not None]


def _known_tenant(store: ApiKeyStore, tenant_id: str) -> None:
    if store.get_tenant(tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id}")


def create_api_key(ports: TenantsPorts, tenant_id: str) -> tuple[ApiKeyItem, str]:
    """Another key for a tenant (rotation: create, switch the clients, revoke the old one). Returned once."""
    store = ports.api_keys
    _known_tenant(store, tenant_id)
    api_key = _random_key(tenant_id)
    item = _key_item(tenant_id, api_key, iso(utc_now()))
    try:
        store.add_api_key(item)
    except Conflict:  # the tenant went between the read and the write (the key itself is new: 256 random bits)
        raise NotFound(f"no tenant {tenant_id}") from None
    return item, api_key


def list_api_keys(ports: TenantsPorts, tenant_id: str) -> list[ApiKeyItem]:
    """The tenant's keys, oldest first: key_id, times and status (never a key, nor its full hash)."""
    _known_tenant(ports.api_keys, tenant_id)
    return sorted(ports.api_keys.list_api_keys(tenant_id), key=lambda k: (k.created_at, k.key_hash))


def revoke_api_key(ports: TenantsPorts, tenant_id: str, key_id: str) -> ApiKeyItem:
    """Revokes the tenant's key named `key_id`; the authorizer refuses it once its cached answer expires.
    Revoking a revoked key again changes nothing."""
    if re.fullmatch(f"[0-9a-f]{{{KEY_ID_LENGTH}}}", key_id) is None:
        raise InvalidInput(f"a key id is {KEY_ID_LENGTH} hex digits, as `keys list` prints it")
    matches = [k for k in list_api_keys(ports, tenant_id) if k.key_id == key_id]
    if not matches:
        raise NotFound(f"no key {key_id} for tenant {tenant_id}")
    if len(matches) > 1:  # 48 bits: practically never, but never revoke the wrong one
        raise Conflict(f"several keys of tenant {tenant_id} share the id {key_id}")
    (key,) = matches
    if key.status != "revoked":
        now = iso(utc_now())
        try:
            ports.api_keys.revoke_api_key(tenant_id, key.key_hash, now)
        except Conflict:
            raise NotFound(f"no key {key_id} for tenant {tenant_id}") from None
        key = key.model_copy(update={"status": "revoked", "revoked_at": now})
    return key


class TenantSecrets:
    """Unwraps each tenant's identifier-HMAC secret once per container."""

    def __init__(self, store: TenantStore, kms: KeyWrapper) -> None:
        self._store = store
        self._kms = kms
        self.hmac_key = lru_cache(maxsize=256)(self._hmac_key)

    def _hmac_key(self, tenant_id: str) -> bytes:
        tenant = self._store.get_tenant(tenant_id)
        if tenant is None or tenant.hmac_key_wrapped is None:  # none, or offboarded: its secret is destroyed
            raise Unauthorized("unknown tenant")
        return self._kms.unwrap(tenant.hmac_key_wrapped, tenant_hmac_context(tenant_id))
