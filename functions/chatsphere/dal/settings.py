"""TenantsTable's settings item: a tenant's settings document and its version (pk = T#<tenant>, sk = SETTINGS)."""

from __future__ import annotations

from typing import Any

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import TRANSACTION_ATTEMPTS, DynamoTable, deserialise, serialise
from chatsphere.dal.ledger import outbox_op
from chatsphere.errors import Conflict
from chatsphere.models import ledger
from chatsphere.models.settings import TenantSettings


class DynamoSettingsStore(DynamoTable):
    """A tenant's settings. Each write goes with its ledger entry (which fields changed, and the processor
    register when it did), in one transaction; a store built without the outbox only reads."""

    def __init__(self, table_name: str, outbox_table: str = "") -> None:
        super().__init__(table_name)
        self.outbox_table = outbox_table

    def get_settings(self, tenant_id: str) -> TenantSettings:
        return self.read_settings(tenant_id)[0]

    def read_settings(self, tenant_id: str, consistent: bool = False) -> tuple[TenantSettings, int]:
        key = serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.SETTINGS_SK})
        resp = self._ddb.get_item(TableName=self.table_name, Key=key, ConsistentRead=consistent)
        if "Item" not in resp:
            return TenantSettings(), 0
        raw = deserialise(resp["Item"])
        return TenantSettings.model_validate_json(raw["document"]), int(raw.get("version", 0))

    def put_settings(
        self,
        tenant_id: str,
        settings: TenantSettings,
        updated_at: str,
        expected_version: int | None = None,
        previous: TenantSettings | None = None,
    ) -> int:
        """The document and the next version, conditioned on the version read (`expected_version`, else the one
        stored now, retried when another write lands between), with the entry; returns the new version. The entry
        names the fields that changed from `previous`, the document at `expected_version` when the caller read it
        (else this reads it). A document equal to the stored one writes nothing and returns the stored version."""
        if not self.outbox_table:
            raise RuntimeError("this settings store was built to read only")
        for _ in range(TRANSACTION_ATTEMPTS):
            if expected_version is not None and previous is not None:
                current, version = previous, expected_version  # read by the caller: the condition checks it
            else:
                current, version = self.read_settings(tenant_id, consistent=True)
            if expected_version is not None and version != expected_version:
                raise Conflict("the settings changed since they were read")
            changed = [
                name for name in TenantSettings.model_fields if getattr(current, name) != getattr(settings, name)
            ]
            if not changed:  # the same document: nothing is written, and the version (the ETag) stays
                return version
            data: dict[str, Any] = {"version": version + 1, "fields": changed}
            if "processors" in changed:
                data["processors"] = [p.model_dump(mode="json") for p in settings.processors]
            values: dict[str, Any] = {":d": settings.model_dump_json(), ":u": updated_at, ":n": version + 1}
            update: dict[str, Any] = {
                "TableName": self.table_name,
                "Key": serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.SETTINGS_SK}),
                "UpdateExpression": "SET #d = :d, updated_at = :u, version = :n",
                "ExpressionAttributeNames": {"#d": "document"},
                # none stored yet (or stored before versions were), else the one read
                "ConditionExpression": "version = :v" if version else "attribute_not_exists(version)",
            }
            if version:
                values[":v"] = version
            update["ExpressionAttributeValues"] = serialise(values)
            entry = ledger.event(tenant_id, "settings.changed", updated_at, **data)
            try:
                self._transact([{"Update": update}, outbox_op(self.outbox_table, entry)], "the settings changed")
            except Conflict:
                if expected_version is not None:
                    raise
                continue
            return version + 1
        raise Conflict("the settings are being changed concurrently; retry")
