"""Tenants: creation with a first API key, and the per-tenant secret behind the identifier index and cursors.

The API key check is logic/api_keys.py, the authorizer's own small module."""

from __future__ import annotations

import secrets
from functools import lru_cache

from chatsphere.errors import Unauthorized
from chatsphere.logic.api_keys import API_KEY_RE, hash_api_key
from chatsphere.logic.crypto import tenant_hmac_context
from chatsphere.logic.ports import KeyWrapper, TenantStore
from chatsphere.models.common import iso, utc_now
from chatsphere.models.items import ApiKeyItem, TenantItem


def create_tenant(store: TenantStore, kms: KeyWrapper, name: str) -> tuple[TenantItem, str]:
    """A new tenant with one API key. The key is returned once; only its hash is stored."""
    tenant_id = "t" + secrets.token_hex(8)
    return create_tenant_with_key(store, kms, name, f"cs_{tenant_id}.{secrets.token_urlsafe(32)}")


def create_tenant_with_key(store: TenantStore, kms: KeyWrapper, name: str, api_key: str) -> tuple[TenantItem, str]:
    """A tenant whose id and first key are given (the key names the tenant: `cs_<tenant_id>.<secret>`).

    For the local stack's demo tenants, which must keep their ids and keys across restarts; a deployed tenant
    is made by create_tenant, with a random id and key. The store refuses a tenant id that exists."""
    match = API_KEY_RE.match(api_key)
    if match is None:
        raise ValueError("an API key is cs_<t + 16 hex>.<43 of [A-Za-z0-9_-]>")
    tenant_id = match.group(1)
    _, wrapped = kms.generate(tenant_hmac_context(tenant_id))
    now = iso(utc_now())
    tenant = TenantItem(tenant_id=tenant_id, name=name, created_at=now, hmac_key_wrapped=wrapped)
    store.create_tenant(tenant, ApiKeyItem(tenant_id=tenant_id, key_hash=hash_api_key(api_key), created_at=now))
    return tenant, api_key


class TenantSecrets:
    """Unwraps each tenant's identifier-HMAC secret once per container."""

    def __init__(self, store: TenantStore, kms: KeyWrapper) -> None:
        self._store = store
        self._kms = kms
        self.hmac_key = lru_cache(maxsize=256)(self._hmac_key)

    def _hmac_key(self, tenant_id: str) -> bytes:
        tenant = self._store.get_tenant(tenant_id)
        if tenant is None:
            raise Unauthorized("unknown tenant")
        return self._kms.unwrap(tenant.hmac_key_wrapped, tenant_hmac_context(tenant_id))
