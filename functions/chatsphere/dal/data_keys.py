"""SubjectKeysTable: one KMS-wrapped data key per subject. Deleting it is crypto-shredding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, deserialise, is_condition_failure, serialise
from chatsphere.models.reconcile import StoredKey


def key_item(tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> dict[str, Any]:
    return {"pk": keyspace.subject_pk(tenant_id, subject_id), "wrapped_key": wrapped, "created_at": created_at}


def create_key_op(table_name: str, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> dict[str, Any]:
    """A transaction Put of a new subject's key, only if it has none (put_if_absent's write, in a new profile's
    transaction: dal/subjects.py)."""
    return {
        "Put": {
            "TableName": table_name,
            "Item": serialise(key_item(tenant_id, subject_id, wrapped, created_at)),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


class DynamoDataKeyStore(DynamoTable):
    """SubjectKeysTable: the subjects' data keys (storage keys of items are in keyspace)."""

    def get(self, tenant_id: str, subject_id: str) -> bytes | None:
        resp = self._ddb.get_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.subject_pk(tenant_id, subject_id)}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        wrapped: bytes = deserialise(resp["Item"])["wrapped_key"]
        return wrapped

    def put_if_absent(self, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> bool:
        """False when another writer created the subject's key first; the caller then uses theirs."""
        item = key_item(tenant_id, subject_id, wrapped, created_at)
        try:
            self._ddb.put_item(
                TableName=self.table_name, Item=serialise(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def delete(self, tenant_id: str, subject_id: str) -> None:
        """Crypto-shredding: without this row no copy of the subject's data opens again, backups included."""
        self._ddb.delete_item(
            TableName=self.table_name, Key=serialise({"pk": keyspace.subject_pk(tenant_id, subject_id)})
        )

    def scan(self) -> Iterator[StoredKey]:
        """Every row's key and creation time (not the wrapped key): a full Scan, for the reconcile command."""
        pages = self._ddb.get_paginator("scan").paginate(
            TableName=self.table_name,
            ProjectionExpression="pk, created_at",
            ConsistentRead=True,
        )
        for page in pages:
            for raw in page["Items"]:
                item = deserialise(raw)
                owner = keyspace.parse_subject_pk(item["pk"])
                if owner is not None:
                    yield StoredKey(tenant_id=owner[0], subject_id=owner[1], created_at=item.get("created_at"))
