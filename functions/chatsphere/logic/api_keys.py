"""API keys: their format, their hash, and the check the TOKEN authorizer makes on every cold request.

Kept apart from logic/tenants.py so that the authorizer imports neither pydantic nor the item models."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from chatsphere.errors import Unauthorized

if TYPE_CHECKING:
    from chatsphere.logic.ports import ApiKeyReader

# cs_<tenant_id>.<secret>: the tenant travels in the key, so its hash is looked up under that tenant's own key.
API_KEY_RE = re.compile(r"^cs_(t[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def authorize(store: ApiKeyReader, authorization: str) -> str:
    """The tenant id for an `Authorization: Bearer <key>` value; Unauthorized if the key is not an active one."""
    scheme, _, token = authorization.partition(" ")
    match = API_KEY_RE.match(token) if scheme == "Bearer" else None
    if match is None:
        raise Unauthorized("malformed key")
    tenant_id = match.group(1)
    item = store.read_api_key(tenant_id, hash_api_key(token))
    # A stored key without a status is active, as models.items.ApiKeyItem defaults it.
    if item is None or item.get("status", "active") != "active":
        raise Unauthorized("unknown key")
    return tenant_id
