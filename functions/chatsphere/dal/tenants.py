"""TenantsTable's tenant items (pk = T#<tenant>, sk = TENANT), in the sparse TenantRegistry index.

The same table holds each tenant's API keys (dal/api_keys.py), settings (dal/settings.py), policy versions
(dal/policies.py) and retention's state (dal/retention.py), all under pk = T#<tenant>."""

from __future__ import annotations

from chatsphere.dal import keyspace
from chatsphere.dal.api_keys import api_key_put, key_entry_op
from chatsphere.dal.dynamo import DynamoTable, deserialise, serialise
from chatsphere.dal.settings import DynamoSettingsStore
from chatsphere.models.items import ApiKeyItem, TenantItem
from chatsphere.models.settings import TenantSettings

TENANT_REGISTRY_INDEX = "TenantRegistry"


class DynamoTenantStore(DynamoTable):
    """The tenants; a new tenant's first key goes with its ledger entry."""

    def __init__(self, table_name: str, outbox_table: str) -> None:
        super().__init__(table_name)
        self.outbox_table = outbox_table

    def get_tenant(self, tenant_id: str) -> TenantItem | None:
        key = serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.TENANT_SK})
        resp = self._ddb.get_item(TableName=self.table_name, Key=key)
        return TenantItem.model_validate(deserialise(resp["Item"])) if "Item" in resp else None

    def tenant_ids(self) -> list[str]:
        """Every tenant, in id order: a Query of the sparse TenantRegistry index (only TENANT items carry it)."""
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=TENANT_REGISTRY_INDEX,
            KeyConditionExpression="registry = :r",
            ExpressionAttributeValues=serialise({":r": keyspace.TENANT_REGISTRY}),
        )
        return [deserialise(raw)["tenant_id"] for page in pages for raw in page["Items"]]

    def create_tenant(self, tenant: TenantItem, api_key: ApiKeyItem) -> None:
        """Both items or neither; a tenant id that exists already is never overwritten."""
        pk = keyspace.tenant_pk(tenant.tenant_id)
        item = {"pk": pk, "sk": keyspace.TENANT_SK, "registry": keyspace.TENANT_REGISTRY}
        self._ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": serialise({**item, **tenant.model_dump()}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                api_key_put(self.table_name, api_key),
                key_entry_op(self.outbox_table, api_key, "api_key.created", api_key.created_at),
            ]
        )


class DynamoTenantDirectory:
    """What a job reads of its tenant (logic/ports.TenantDirectory): the tenant, and its settings."""

    def __init__(self, table_name: str) -> None:
        self._tenants = DynamoTenantStore(table_name, outbox_table="")  # reads only
        self._settings = DynamoSettingsStore(table_name)

    def get_tenant(self, tenant_id: str) -> TenantItem | None:
        return self._tenants.get_tenant(tenant_id)

    def get_settings(self, tenant_id: str) -> TenantSettings:
        return self._settings.get_settings(tenant_id)
