"""TenantsTable: tenants and their API key hashes, all under pk = T#<tenant>."""

from __future__ import annotations

from typing import Any

from chatsphere.dal import keys
from chatsphere.dal.clients import client
from chatsphere.dal.dynamo import deserialise, serialise
from chatsphere.models.items import ApiKeyItem, TenantItem


class DynamoTenantStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return client("dynamodb")

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self._ddb.get_item(TableName=self.table_name, Key=serialise({"pk": pk, "sk": sk}))
        return deserialise(resp["Item"]) if "Item" in resp else None

    def get_tenant(self, tenant_id: str) -> TenantItem | None:
        raw = self._get(keys.tenant_pk(tenant_id), keys.TENANT_SK)
        return TenantItem.model_validate(raw) if raw else None

    def get_api_key(self, tenant_id: str, key_hash: str) -> ApiKeyItem | None:
        raw = self._get(keys.tenant_pk(tenant_id), keys.api_key_sk(key_hash))
        return ApiKeyItem.model_validate(raw) if raw else None

    def create_tenant(self, tenant: TenantItem, api_key: ApiKeyItem) -> None:
        """Both items or neither; a tenant id that exists already is never overwritten."""
        pk = keys.tenant_pk(tenant.tenant_id)
        self._ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": serialise({"pk": pk, "sk": keys.TENANT_SK, **tenant.model_dump()}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": serialise({"pk": pk, "sk": keys.api_key_sk(api_key.key_hash), **api_key.model_dump()}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
