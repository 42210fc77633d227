"""TenantsTable: tenants, their API key hashes, settings and policy versions, all under pk = T#<tenant>."""

from __future__ import annotations

import json
from typing import Any

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, conflict_on_condition, deserialise, serialise
from chatsphere.models.items import ApiKeyItem, PolicyItem, TenantItem
from chatsphere.models.settings import TenantSettings

TENANT_REGISTRY_INDEX = "TenantRegistry"


class DynamoTenantStore(DynamoTable):
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self._ddb.get_item(TableName=self.table_name, Key=serialise({"pk": pk, "sk": sk}))
        return deserialise(resp["Item"]) if "Item" in resp else None

    def get_tenant(self, tenant_id: str) -> TenantItem | None:
        raw = self._get(keyspace.tenant_pk(tenant_id), keyspace.TENANT_SK)
        return TenantItem.model_validate(raw) if raw else None

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
        self._ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": serialise(
                            {
                                "pk": pk,
                                "sk": keyspace.TENANT_SK,
                                "registry": keyspace.TENANT_REGISTRY,
                                **tenant.model_dump(),
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": serialise(
                            {"pk": pk, "sk": keyspace.api_key_sk(api_key.key_hash), **api_key.model_dump()}
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    # ------------------------------------------------------------ API keys (the authorizer reads them: dal/api_keys.py)
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
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialise(
                                {"pk": pk, "sk": keyspace.api_key_sk(api_key.key_hash), **api_key.model_dump()}
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyItem]:
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
        """Conditional on the key existing, so that a revocation never creates an item; a second one is a no-op."""
        with conflict_on_condition("no such key"):
            self._ddb.update_item(
                TableName=self.table_name,
                Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.api_key_sk(key_hash)}),
                UpdateExpression="SET #s = :revoked, revoked_at = if_not_exists(revoked_at, :at)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=serialise({":revoked": "revoked", ":at": revoked_at}),
            )

    # ------------------------------------------------------------ settings
    def get_settings(self, tenant_id: str) -> TenantSettings:
        return self.read_settings(tenant_id)[0]

    def read_settings(self, tenant_id: str) -> tuple[TenantSettings, int]:
        raw = self._get(keyspace.tenant_pk(tenant_id), keyspace.SETTINGS_SK)
        if raw is None:
            return TenantSettings(), 0
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

    # ------------------------------------------------------------ policies
    def add_policy(self, policy: PolicyItem) -> None:
        """The policy and a marker that makes its version unique; Conflict if the version exists."""
        pk = keyspace.tenant_pk(policy.tenant_id)
        with conflict_on_condition("this policy version exists already"):
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialise(
                                {
                                    "pk": pk,
                                    "sk": keyspace.policy_version_sk(policy.version),
                                    "ref": json.dumps([policy.effective_at, policy.version]),
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialise(
                                {
                                    "pk": pk,
                                    "sk": keyspace.policy_sk(policy.effective_at, policy.version),
                                    **policy.model_dump(),
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )

    def get_policy(self, tenant_id: str, version: str) -> PolicyItem | None:
        marker = self._get(keyspace.tenant_pk(tenant_id), keyspace.policy_version_sk(version))
        if marker is None:
            return None
        effective_at, _ = json.loads(marker["ref"])
        raw = self._get(keyspace.tenant_pk(tenant_id), keyspace.policy_sk(effective_at, version))
        return PolicyItem.model_validate(raw) if raw else None

    def mark_announced(self, policy: PolicyItem) -> None:
        self._ddb.update_item(
            TableName=self.table_name,
            Key=serialise(
                {
                    "pk": keyspace.tenant_pk(policy.tenant_id),
                    "sk": keyspace.policy_sk(policy.effective_at, policy.version),
                }
            ),
            UpdateExpression="SET announced = :t",
            ExpressionAttributeValues=serialise({":t": True}),
        )

    def list_policies(self, tenant_id: str) -> list[PolicyItem]:
        """Oldest first. A tenant publishes a handful of versions a year: one page in practice, paged anyway."""
        paginator = self._ddb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialise(
                {":pk": keyspace.tenant_pk(tenant_id), ":prefix": keyspace.POLICY_PREFIX}
            ),
        )
        return [PolicyItem.model_validate(deserialise(i)) for page in pages for i in page["Items"]]

    def policy_in_force(self, tenant_id: str, at: str) -> PolicyItem | None:
        """The latest version whose effective_at is at or before `at`: one Query, one item."""
        resp = self._ddb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=serialise(
                {
                    ":pk": keyspace.tenant_pk(tenant_id),
                    ":lo": keyspace.POLICY_PREFIX,
                    ":hi": f"{keyspace.POLICY_PREFIX}{at}#~",
                }
            ),
            ScanIndexForward=False,
            Limit=1,
        )
        return PolicyItem.model_validate(deserialise(resp["Items"][0])) if resp["Items"] else None
