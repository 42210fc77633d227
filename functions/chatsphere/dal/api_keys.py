"""TenantsTable's API key items (pk = T#<tenant>, sk = APIKEY#<hash>): the authorizer's read and the console
command's administration.

The authorizer imports this module: it must load no models (tests/unit/test_authorizer_imports.py), so
DynamoApiKeyReader returns plain dicts, and DynamoApiKeyStore imports the item models inside its methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, conflict_on_condition, deserialise, serialise
from chatsphere.errors import Conflict

if TYPE_CHECKING:
    from chatsphere.models.items import ApiKeyItem, TenantItem


def api_key_put(table_name: str, api_key: ApiKeyItem) -> dict[str, Any]:
    """A transaction Put of the key item, never over a key that exists (DynamoTenantStore.create_tenant's too)."""
    item = {"pk": keyspace.tenant_pk(api_key.tenant_id), "sk": keyspace.api_key_sk(api_key.key_hash)}
    return {
        "Put": {
            "TableName": table_name,
            "Item": serialise({**item, **api_key.model_dump()}),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


class DynamoApiKeyReader(DynamoTable):
    """The client is the shared lazy one of dal/clients.py: built on the first read, never at import."""

    def read_api_key(self, tenant_id: str, key_hash: str) -> dict[str, Any] | None:
        key = serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.api_key_sk(key_hash)})
        resp = self._ddb.get_item(TableName=self.table_name, Key=key)
        return deserialise(resp["Item"]) if "Item" in resp else None


def key_entry_op(outbox_table: str, api_key: ApiKeyItem, kind: str, at: str) -> dict[str, Any]:
    """The ledger entry of a key's creation or revocation: its key id only (never the key or its hash)."""
    from chatsphere.dal.ledger import outbox_op
    from chatsphere.models import ledger

    entry = ledger.event(api_key.tenant_id, kind, at, key_id=api_key.key_id)  # type: ignore[arg-type]
    return outbox_op(outbox_table, entry)


class DynamoApiKeyStore(DynamoTable):
    """A tenant's keys, for the console command (logic/tenants.py): add, list, revoke, and the tenant's read.
    Each creation and revocation goes with its ledger entry, in one transaction."""

    def __init__(self, table_name: str, outbox_table: str) -> None:
        super().__init__(table_name)
        self.outbox_table = outbox_table

    def get_tenant(self, tenant_id: str) -> TenantItem | None:
        from chatsphere.dal.tenants import DynamoTenantStore

        return DynamoTenantStore(self.table_name, self.outbox_table).get_tenant(tenant_id)

    def add_api_key(self, api_key: ApiKeyItem) -> None:
        """Only under a tenant that exists, and never over a key that does."""
        pk = keyspace.tenant_pk(api_key.tenant_id)
        with conflict_on_condition("no such tenant, or the key exists"):
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table_name,
                            "Key": serialise({"pk": pk, "sk": keyspace.TENANT_SK}),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    api_key_put(self.table_name, api_key),
                    key_entry_op(self.outbox_table, api_key, "api_key.created", api_key.created_at),
                ]
            )

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyItem]:
        from chatsphere.models.items import ApiKeyItem

        pages = self._ddb.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialise(
                {":pk": keyspace.tenant_pk(tenant_id), ":prefix": keyspace.api_key_sk("")}
            ),
            ConsistentRead=True,
        )
        return [ApiKeyItem.model_validate(deserialise(raw)) for page in pages for raw in page["Items"]]

    def revoke_api_key(self, tenant_id: str, key_hash: str, revoked_at: str) -> None:
        """Conditional on the key being active, so that a revocation never creates an item and is recorded once; a
        second one is a no-op (Conflict only when there is no such key)."""
        from chatsphere.models.items import ApiKeyItem

        key = serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.api_key_sk(key_hash)})
        update = {
            "TableName": self.table_name,
            "Key": key,
            "UpdateExpression": "SET #s = :revoked, revoked_at = :at",
            "ConditionExpression": "attribute_exists(pk) AND #s <> :revoked",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": serialise({":revoked": "revoked", ":at": revoked_at}),
        }
        stub = ApiKeyItem.model_construct(tenant_id=tenant_id, key_hash=key_hash, created_at=revoked_at)
        try:
            self._transact([{"Update": update}, key_entry_op(self.outbox_table, stub, "api_key.revoked", revoked_at)])
        except Conflict:
            resp = self._ddb.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
            if "Item" not in resp:
                raise Conflict("no such key") from None
