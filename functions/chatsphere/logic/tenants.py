"""Tenants: creation, API key checks, and the per-tenant secret behind the identifier index."""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import lru_cache

from chatsphere.errors import Unauthorized
from chatsphere.logic.crypto import tenant_hmac_context
from chatsphere.logic.ports import KeyWrapper, TenantStore
from chatsphere.models.common import iso, utc_now
from chatsphere.models.items import ApiKeyItem, TenantItem

# cs_<tenant_id>.<secret>: the tenant travels in the key, so its hash is looked up under that tenant's own key.
API_KEY_RE = re.compile(r"^cs_(t[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
TENANT_ID_RE = re.compile(r"^t[0-9a-f]{16}$")


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_tenant(store: TenantStore, kms: KeyWrapper, name: str) -> tuple[TenantItem, str]:
    """A new tenant with one API key. The key is returned once; only its hash is stored."""
    tenant_id = "t" + secrets.token_hex(8)
    api_key = f"cs_{tenant_id}.{secrets.token_urlsafe(32)}"
    _, wrapped = kms.generate(tenant_hmac_context(tenant_id))
    now = iso(utc_now())
    tenant = TenantItem(tenant_id=tenant_id, name=name, created_at=now, hmac_key_wrapped=wrapped)
    store.create_tenant(tenant, ApiKeyItem(tenant_id=tenant_id, key_hash=hash_api_key(api_key), created_at=now))
    return tenant, api_key


def authorize(store: TenantStore, authorization: str) -> str:
    """The tenant id for an `Authorization: Bearer <key>` value; Unauthorized if the key is not an active one."""
    scheme, _, token = authorization.partition(" ")
    match = API_KEY_RE.match(token) if scheme == "Bearer" else None
    if match is None:
        raise Unauthorized("malformed key")
    tenant_id = match.group(1)
    item = store.get_api_key(tenant_id, hash_api_key(token))
    if item is None or item.status != "active":
        raise Unauthorized("unknown key")
    return tenant_id


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
