"""TenantsTable's settings item: a tenant's settings document and its version (pk = T#<tenant>, sk = SETTINGS)."""

from __future__ import annotations

from typing import Any

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, conflict_on_condition, deserialise, serialise
from chatsphere.models.settings import TenantSettings


class DynamoSettingsStore(DynamoTable):
    def get_settings(self, tenant_id: str) -> TenantSettings:
        return self.read_settings(tenant_id)[0]

    def read_settings(self, tenant_id: str) -> tuple[TenantSettings, int]:
        key = serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.SETTINGS_SK})
        resp = self._ddb.get_item(TableName=self.table_name, Key=key)
        if "Item" not in resp:
            return TenantSettings(), 0
        raw = deserialise(resp["Item"])
        return TenantSettings.model_validate_json(raw["document"]), int(raw.get("version", 0))

    def put_settings(
        self, tenant_id: str, settings: TenantSettings, updated_at: str, expected_version: int | None = None
    ) -> int:
        """One UpdateItem: the document, and the version incremented in place (ADD), so that two writes never
        store the same version; with expected_version, conditioned on the stored one."""
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.SETTINGS_SK}),
            "UpdateExpression": "SET #d = :d, updated_at = :u ADD version :one",
            "ExpressionAttributeNames": {"#d": "document"},
            "ExpressionAttributeValues": {":d": settings.model_dump_json(), ":u": updated_at, ":one": 1},
            "ReturnValues": "UPDATED_NEW",
        }
        if expected_version == 0:  # none stored yet (or stored before versions were)
            update["ConditionExpression"] = "attribute_not_exists(version)"
        elif expected_version is not None:
            update["ConditionExpression"] = "version = :v"
            update["ExpressionAttributeValues"][":v"] = expected_version
        update["ExpressionAttributeValues"] = serialise(update["ExpressionAttributeValues"])
        with conflict_on_condition("the settings changed since they were read"):
            resp = self._ddb.update_item(**update)
        return int(deserialise(resp["Attributes"])["version"])
