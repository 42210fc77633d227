"""TenantsTable's API key items, read for the authorizer: one GetItem, a plain dict, no models.

The item DynamoTenantStore.create_tenant writes (pk = T#<tenant>, sk = APIKEY#<hash>)."""

from __future__ import annotations

from typing import Any

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, deserialise, serialise


class DynamoApiKeyReader(DynamoTable):
    """The client is the shared lazy one of dal/clients.py: built on the first read, never at import."""

    def read_api_key(self, tenant_id: str, key_hash: str) -> dict[str, Any] | None:
        key = serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.api_key_sk(key_hash)})
        resp = self._ddb.get_item(TableName=self.table_name, Key=key)
        return deserialise(resp["Item"]) if "Item" in resp else None
