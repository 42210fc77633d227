"""TenantsTable's policy items: a tenant's privacy policy versions, under pk = T#<tenant>.

Each version is two items: the policy at sk = POLICY#<effective_at>#<version> (so that the one in force is one
Query), and a marker at sk = POLICYVERSION#<version> that makes the version unique and points at the policy."""

from __future__ import annotations

import json
from typing import Any

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, conflict_on_condition, deserialise, serialise
from chatsphere.dal.ledger import outbox_op
from chatsphere.models import ledger
from chatsphere.models.items import PolicyItem


def published_entry(policy: PolicyItem) -> ledger.LedgerEntry:
    """The version, when it takes effect, and the digest of its text (its URL is the tenant's, not ours to keep)."""
    return ledger.event(
        policy.tenant_id,
        "policy.published",
        policy.published_at,
        version=policy.version,
        effective_at=policy.effective_at,
        sha256=policy.sha256,
    )


class DynamoPolicyStore(DynamoTable):
    """A tenant's policy versions; a publication goes with its ledger entry, in one transaction."""

    def __init__(self, table_name: str, outbox_table: str) -> None:
        super().__init__(table_name)
        self.outbox_table = outbox_table

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self._ddb.get_item(TableName=self.table_name, Key=serialise({"pk": pk, "sk": sk}))
        return deserialise(resp["Item"]) if "Item" in resp else None

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
                    outbox_op(self.outbox_table, published_entry(policy)),
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
