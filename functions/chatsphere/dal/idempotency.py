"""IdempotencyTable: Powertools' records, one partition per subject (id = T#<tenant>#S#<subject>#idempotency),
so that deleting a subject finds its records with one Query, never a Scan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from botocore.exceptions import ClientError

from chatsphere.dal import keyspace
from chatsphere.dal.clients import client
from chatsphere.dal.dynamo import DynamoTable, deserialise, is_condition_failure
from chatsphere.models.reconcile import IdempotencyRef
from chatsphere.models.refs import RecordRef


class DeletionSafePersistenceLayer(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB layer whose completion never re-creates a record that an erasure removed.

    Powertools puts the record INPROGRESS (conditionally), runs the function, then saves COMPLETED with an
    UpdateItem, which creates the item if it is gone. When the subject is erased between the function's write
    and that update, the erasure's read-back has already passed: an unconditional update would bring the record
    back, and a replay of the key would answer the cached 201 for a day instead of 410. So the update is
    conditional on the record still existing. When it is gone the function's answer stands (its write did
    happen, before the erasure removed it) and no record is written: a replay runs the function again, which
    answers 410. `_update_record` is Powertools' only write after the INPROGRESS put (`_delete_record`, on a
    failure, re-creates nothing)."""

    def _update_record(self, data_record: DataRecord) -> None:
        names = {
            "#id": self.key_attr,
            "#data": self.data_attr,
            "#expiry": self.expiry_attr,
            "#status": self.status_attr,
        }
        values: dict[str, Any] = {
            ":data": {"S": data_record.response_data},
            ":expiry": {"N": str(data_record.expiry_timestamp)},
            ":status": {"S": data_record.status},
        }
        expression = "SET #data = :data, #expiry = :expiry, #status = :status"
        if self.payload_validation_enabled:
            names["#validation"] = self.validation_key_attr
            values[":validation"] = {"S": data_record.payload_hash}
            expression += ", #validation = :validation"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._get_key(data_record.idempotency_key),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise


def persistence_layer(table_name: str, tenant_id: str, subject_id: str) -> DynamoDBPersistenceLayer:
    """Powertools' layer for one subject's records (a cheap object over the shared client)."""
    return DeletionSafePersistenceLayer(
        table_name=table_name,
        static_pk_value=keyspace.idempotency_pk(tenant_id, subject_id),
        sort_key_attr="sk",
        boto3_client=client("dynamodb"),
    )


def record_key(ref: RecordRef) -> dict[str, str]:
    return {"id": keyspace.idempotency_pk(ref.tenant_id, ref.subject_id), "sk": ref.idempotency_key}


class DynamoIdempotencyRecords(DynamoTable):
    def layer(self, tenant_id: str, subject_id: str) -> DynamoDBPersistenceLayer:
        """Intake's persistence layer for one subject (bootstrap hands this method to IntakePorts)."""
        return persistence_layer(self.table_name, tenant_id, subject_id)

    def record_refs(self, tenant_id: str, subject_id: str, limit: int) -> list[RecordRef]:
        keys = self._partition_keys("id", keyspace.idempotency_pk(tenant_id, subject_id), limit)
        return [RecordRef(tenant_id, subject_id, k["sk"]) for k in keys]

    def delete_records(self, refs: list[RecordRef]) -> None:
        self._delete_keys([record_key(r) for r in refs])

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
                        ref=RecordRef(owner[0], owner[1], item["sk"]),
                        expires_at=int(expires) if expires is not None else None,
                    )
