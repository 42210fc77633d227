"""RequestsTable's tombstones: what is left of an erased subject (pk = T#<tenant>, sk = TOMB#<keyed hash>).

A tombstone without deleted_at marks an erasure that runs; with it, one that completed. A completed erasure's
tombstone is filed for the orphan sweep (logic/sweep.py) in the DayIndex's `deleted_subjects` late bucket, with
the subject id sealed, until the sweep forgets it."""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from chatsphere import day_index
from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, deserialise, is_condition_failure, serialise
from chatsphere.dal.ledger import outbox_op
from chatsphere.errors import Conflict
from chatsphere.models import ledger
from chatsphere.models.items import TombstoneItem

DAY_INDEX = "DayIndex"


def tombstone_check_op(table_name: str, tenant_id: str, subject_hash: str, reuse_deleted_id: bool) -> dict[str, Any]:
    """A transaction ConditionCheck that admits a new profile under an id: no tombstone (never erased), or, when a
    new person reuses the id, a completed one; never while an erasure runs (tombstone without deleted_at)."""
    condition = "attribute_not_exists(pk)" + (" OR attribute_exists(deleted_at)" if reuse_deleted_id else "")
    return {
        "ConditionCheck": {
            "TableName": table_name,
            "Key": serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.tombstone_sk(subject_hash)}),
            "ConditionExpression": condition,
        }
    }


class DynamoTombstoneStore(DynamoTable):
    """Each tombstone's write goes with its ledger entry (OutboxTable), in one transaction: the ledger's record of
    an erasure outlives any restore of this table (logic/reconcile.py reads it back)."""

    def __init__(self, table_name: str, outbox_table: str) -> None:
        super().__init__(table_name)
        self.outbox_table = outbox_table

    def put_tombstone(self, tombstone: TombstoneItem) -> None:
        """Create or complete the tombstone; a completed one is never changed again."""
        item = {"pk": keyspace.tenant_pk(tombstone.tenant_id), "sk": keyspace.tombstone_sk(tombstone.subject_hash)}
        item.update(tombstone.model_dump(exclude_none=True))
        if tombstone.deleted_at is not None and tombstone.sealed_subject_id is not None:  # filed for the sweep
            item.update(
                keyspace.day_entry(
                    tombstone.tenant_id, "deleted_subjects", tombstone.deleted_at, tombstone.subject_hash, late=True
                )
            )
        put = {
            "TableName": self.table_name,
            "Item": serialise(item),
            "ConditionExpression": "attribute_not_exists(deleted_at)",
        }
        entry = ledger.tombstone(
            tombstone.tenant_id,
            tombstone.subject_hash,
            tombstone.request_id,
            tombstone.started_at,
            tombstone.deleted_at,
            at=tombstone.deleted_at or tombstone.started_at,
        )
        with contextlib.suppress(Conflict):  # completed before: it never changes again
            self._transact([{"Put": put}, outbox_op(self.outbox_table, entry)])

    def get_tombstone(self, tenant_id: str, subject_hash: str) -> TombstoneItem | None:
        resp = self._ddb.get_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.tombstone_sk(subject_hash)}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        return _tombstone(deserialise(resp["Item"]))

    def settled_tombstones(self, tenant_id: str, upto: str) -> list[TombstoneItem]:
        """The tombstones filed for the orphan sweep whose erasure completed at or before `upto`: one Query per
        shard of the `deleted_subjects` late bucket (DayIndex), which holds only those not yet swept, then each
        tombstone itself (the index projects its keys alone: day_sk is <deleted_at>#<subject hash>)."""
        hashes: list[str] = []
        for shard in range(day_index.DAY_SHARDS):
            query: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": DAY_INDEX,
                "KeyConditionExpression": "day_pk = :p AND day_sk <= :u",
                "ExpressionAttributeValues": serialise(
                    {
                        ":p": keyspace.day_pk(tenant_id, "deleted_subjects", day_index.LATE, shard),
                        ":u": keyspace.day_sk_bound(upto),
                    }
                ),
            }
            while True:
                resp = self._ddb.query(**query)
                hashes += [str(deserialise(raw)["day_sk"]).rpartition("#")[2] for raw in resp["Items"]]
                if "LastEvaluatedKey" not in resp:
                    break
                query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        found = [self.get_tombstone(tenant_id, subject_hash) for subject_hash in hashes]
        return sorted((t for t in found if t is not None), key=lambda t: (t.deleted_at or "", t.subject_hash))

    def forget_subject_id(self, tenant_id: str, subject_hash: str) -> None:
        """Remove the sealed subject id and the index entry; the tombstone stays (never re-created)."""
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.tombstone_sk(subject_hash)}),
                UpdateExpression="REMOVE sealed_subject_id, day_pk, day_sk",
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def tombstones(self, tenant_id: str) -> list[TombstoneItem]:
        """Every tombstone of the tenant (for reconcile, after a restore)."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :t)",
            "ExpressionAttributeValues": serialise(
                {":pk": keyspace.tenant_pk(tenant_id), ":t": keyspace.TOMBSTONE_PREFIX}
            ),
        }
        out: list[TombstoneItem] = []
        while True:
            resp = self._ddb.query(**query)
            for raw in resp["Items"]:
                data = deserialise(raw)
                out.append(TombstoneItem.model_validate({k: data[k] for k in TombstoneItem.model_fields if k in data}))
            if "LastEvaluatedKey" not in resp:
                return out
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _tombstone(data: dict[str, Any]) -> TombstoneItem:
    return TombstoneItem.model_validate({k: data[k] for k in TombstoneItem.model_fields if k in data})
