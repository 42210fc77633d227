"""IdempotencyTable: Powertools' records, one partition per subject (id = T#<tenant>#S#<subject>#idempotency),
so that deleting a subject finds its records with one Query, never a Scan."""

from __future__ import annotations

from collections.abc import Iterator

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from chatsphere.dal import keyspace
from chatsphere.dal.clients import client
from chatsphere.dal.dynamo import DynamoTable, deserialise
from chatsphere.models.reconcile import IdempotencyRef


def persistence_layer(table_name: str, tenant_id: str, subject_id: str) -> DynamoDBPersistenceLayer:
    """Powertools' layer for one subject's records (a cheap object over the shared client)."""
    return DynamoDBPersistenceLayer(
        table_name=table_name,
        static_pk_value=keyspace.idempotency_pk(tenant_id, subject_id),
        sort_key_attr="sk",
        boto3_client=client("dynamodb"),
    )


class DynamoIdempotencyRecords(DynamoTable):
    def layer(self, tenant_id: str, subject_id: str) -> DynamoDBPersistenceLayer:
        return persistence_layer(self.table_name, tenant_id, subject_id)

    def record_keys(self, tenant_id: str, subject_id: str, limit: int) -> list[dict[str, str]]:
        return self._partition_keys("id", keyspace.idempotency_pk(tenant_id, subject_id), limit)

    def delete_keys(self, keys: list[dict[str, str]]) -> None:
        self._delete_keys(keys)

    def scan(self) -> Iterator[IdempotencyRef]:
        """Every record's key and expiry (not its data): a full Scan, for the reconcile command only."""
        names = {"#i": "id", "#s": "sk", "#e": "expiration"}
        pages = self._ddb.get_paginator("scan").paginate(
            TableName=self.table_name,
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
            ConsistentRead=True,
        )
        for page in pages:
            for raw in page["Items"]:
                item = deserialise(raw)
                owner = keyspace.parse_idempotency_pk(item["id"])
                if owner is not None:
                    expires = item.get("expiration")
                    yield IdempotencyRef(
                        tenant_id=owner[0],
                        subject_id=owner[1],
                        key={"id": item["id"], "sk": item["sk"]},
                        expires_at=int(expires) if expires is not None else None,
                    )
