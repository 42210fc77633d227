"""The day indexes (SubjectsTable and RequestsTable DayIndex, SubjectsTable HoldIndex) and retention's own state in
TenantsTable: per-category watermarks, run records and the lease that keeps one run per tenant at a time.

Retention reads only these indexes, never a Scan: a run's cost grows with what is due, not with what is stored."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from botocore.exceptions import ClientError

from chatsphere import day_index
from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, deserialise, is_condition_failure, is_transaction_conflict, serialise
from chatsphere.dal.ledger import outbox_op
from chatsphere.errors import Conflict
from chatsphere.models import ledger
from chatsphere.models.retention import (
    REMOVALS_PER_TRANSACTION,
    Act,
    ActOutcome,
    Category,
    DueEntry,
    IndexedRef,
    RetentionRunItem,
)

DAY_INDEX = "DayIndex"
HOLD_INDEX = "HoldIndex"
LEASE_SK = "RETENTION#LEASE"
ACT_PREFIX = "RETENTION#ACT#"
ACT_RECORD_SECONDS = 7 * 86400  # an act's outcome outlives any redo of its chunk (a stopped run is abandoned in 1 h)
SUBJECT_CATEGORIES = ("interactions", "inactive_profiles")
# Retention writes into a subject only while it is one of these: an erasing, erased or restricted subject (and any
# status added later) is refused by the write's own condition.
OPEN_STATUSES = ("active", "deactivated")
OPEN_CONDITION = "#s IN (:open0, :open1)"
TRANSACTION_ATTEMPTS = 4


def _open_values() -> dict[str, str]:
    return {f":open{n}": status for n, status in enumerate(OPEN_STATUSES)}


def act_sk(act: Act) -> str:
    """TenantsTable sk of an act's outcome record (no subject id: the chunk's seq and the act's name)."""
    return f"{ACT_PREFIX}{act.run_id}#{act.seq:010d}#{act.name}"


class DynamoRetentionStore:
    def __init__(self, subjects_table: str, requests_table: str, tenants_table: str, outbox_table: str) -> None:
        self.subjects = DynamoTable(subjects_table)
        self.requests = DynamoTable(requests_table)
        self.tenants = DynamoTable(tenants_table)
        self.outbox_table = outbox_table  # a finished run's counts go to the ledger with its record

    def _table(self, category: Category) -> DynamoTable:
        return self.subjects if category in SUBJECT_CATEGORIES else self.requests

    # ------------------------------------------------------------------ the day index
    def due(
        self,
        tenant_id: str,
        category: Category,
        bucket: str,
        shard: int,
        upto: str,
        after: IndexedRef | None,
        limit: int,
        since: str | None = None,
    ) -> tuple[list[DueEntry], IndexedRef | None]:
        """One page (at most `limit`) of a bucket's items whose time is at or before `upto` (and at or after
        `since`), oldest first, after the item `after`; and the last item read, if the bucket may hold more (its
        key and index keys are the next Query's ExclusiveStartKey)."""
        table = self._table(category)
        day_pk = keyspace.day_pk(tenant_id, category, bucket, shard)
        values = {":p": day_pk, ":u": keyspace.day_sk_bound(upto)}
        condition = "day_pk = :p AND day_sk <= :u"
        if since is not None:
            values[":s"] = since
            condition = "day_pk = :p AND day_sk BETWEEN :s AND :u"
        query: dict[str, Any] = {
            "TableName": table.table_name,
            "IndexName": DAY_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": serialise(values),
            "Limit": limit,
        }
        if after is not None:
            start = {**item_key(tenant_id, after), "day_pk": day_pk, "day_sk": keyspace.day_sk(after.at, after.item_id)}
            query["ExclusiveStartKey"] = serialise(start)
        resp = table._ddb.query(**query)
        entries = [_entry(deserialise(raw)) for raw in resp["Items"]]
        return entries, entries[-1].ref if resp.get("LastEvaluatedKey") and entries else None

    def holds(self, tenant_id: str) -> dict[str, list[str]]:
        """Subject id -> the categories its legal hold keeps, for every held subject of the tenant."""
        pages = self.subjects._ddb.get_paginator("query").paginate(
            TableName=self.subjects.table_name,
            IndexName=HOLD_INDEX,
            KeyConditionExpression="held_pk = :h",
            ExpressionAttributeValues=serialise({":h": keyspace.held_pk(tenant_id)}),
        )
        held: dict[str, list[str]] = {}
        for page in pages:
            for raw in page["Items"]:
                item = deserialise(raw)
                hold = item.get("legal_hold") or {}
                held[item["subject_id"]] = list(hold.get("categories") or [])
        return held

    def last_activity(self, tenant_id: str, subject_id: str) -> str | None:
        """The time of the subject's latest interaction, or of the latest one retention removed (its activity
        marker): one Query, newest first, over ACTIVITY#... and I#... (nothing else sorts between them)."""
        resp = self.subjects._ddb.query(
            TableName=self.subjects.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=serialise(
                {
                    ":pk": keyspace.subject_pk(tenant_id, subject_id),
                    ":lo": keyspace.ACTIVITY_PREFIX,
                    ":hi": f"{keyspace.INTERACTION_PREFIX}~",
                }
            ),
            ProjectionExpression="sk",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        if not resp["Items"]:
            return None
        sk = deserialise(resp["Items"][0])["sk"]
        if sk.startswith(keyspace.ACTIVITY_PREFIX):
            return str(sk.removeprefix(keyspace.ACTIVITY_PREFIX))
        return str(sk.removeprefix(keyspace.INTERACTION_PREFIX).rpartition("#")[0])

    # ------------------------------------------------------------------ acts (each idempotent)
    def remove(self, category: Category, tenant_id: str, refs: list[IndexedRef]) -> None:
        """Delete items that belong to no subject (closed request records), 25 keys a BatchWriteItem."""
        self._table(category)._delete_keys([item_key(tenant_id, ref) for ref in refs])

    def remove_unless_held(
        self,
        act: Act,
        category: Category,
        subject_id: str,
        refs: list[IndexedRef],
        marker: str | None,
    ) -> ActOutcome | None:
        """Delete one subject's items (at most REMOVALS_PER_TRANSACTION), put its activity marker and record the
        act as `removed`, in one TransactWriteItems whose ConditionCheck on the profile is the write's own: the
        profile exists, its status is open, and no legal hold covers the category. None if that check refuses
        (nothing is written); the outcome already recorded if another attempt recorded this act first."""
        if len(refs) > REMOVALS_PER_TRANSACTION:
            raise ValueError("more removals than one transaction holds")
        keys = [item_key(act.tenant_id, ref) for ref in refs]
        pk = keyspace.subject_pk(act.tenant_id, subject_id)
        ops: list[dict[str, Any]] = [
            {
                "ConditionCheck": {
                    "TableName": self.subjects.table_name,
                    "Key": serialise({"pk": pk, "sk": keyspace.PROFILE_SK}),
                    "ConditionExpression": f"attribute_exists(pk) AND {OPEN_CONDITION} AND "
                    "(attribute_not_exists(legal_hold) OR NOT contains(legal_hold.categories, :category))",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": serialise({**_open_values(), ":category": category}),
                }
            }
        ]
        if marker is not None:
            ops.append({"Put": {"TableName": self.subjects.table_name, "Item": serialise(_marker(pk, marker))}})
        ops.extend({"Delete": {"TableName": self.subjects.table_name, "Key": serialise(k)}} for k in keys)
        ops.append(self._outcome_put(act, "removed"))
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self.subjects._ddb.transact_write_items(TransactItems=ops)
                return "removed"
            except ClientError as error:
                reasons = error.response.get("CancellationReasons") or []
                if _failed(reasons, 0):
                    return None
                if _failed(reasons, len(ops) - 1):
                    return self._recorded(act)
                if not is_transaction_conflict(error) or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security
        raise AssertionError("unreachable")

    def record_outcome(self, act: Act, outcome: ActOutcome) -> ActOutcome:
        """Record what an act found, once: the outcome in force (another attempt's, if it recorded first)."""
        put = self._outcome_put(act, outcome)["Put"]
        try:
            self.tenants._ddb.put_item(**put)
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return self._recorded(act)
        return outcome

    def outcomes(self, tenant_id: str, run_id: str, seq: int) -> dict[str, ActOutcome]:
        """Act name -> outcome, of every act of the chunk committed at `seq` recorded so far (one Query)."""
        prefix = act_sk(Act(tenant_id=tenant_id, run_id=run_id, seq=seq, name=""))
        pages = self.tenants._ddb.get_paginator("query").paginate(
            TableName=self.tenants.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
            ExpressionAttributeValues=serialise({":pk": keyspace.tenant_pk(tenant_id), ":a": prefix}),
            ConsistentRead=True,
        )
        found = (deserialise(raw) for page in pages for raw in page["Items"])
        return {item["sk"].removeprefix(prefix): item["outcome"] for item in found}

    def _outcome_put(self, act: Act, outcome: ActOutcome) -> dict[str, Any]:
        item = {
            "pk": keyspace.tenant_pk(act.tenant_id),
            "sk": act_sk(act),
            "outcome": outcome,
            "expires_at": int(time.time()) + ACT_RECORD_SECONDS,
        }
        return {
            "Put": {
                "TableName": self.tenants.table_name,
                "Item": serialise(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _recorded(self, act: Act) -> ActOutcome:
        resp = self.tenants._ddb.get_item(
            TableName=self.tenants.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(act.tenant_id), "sk": act_sk(act)}),
            ConsistentRead=True,
        )
        outcome: ActOutcome = deserialise(resp["Item"])["outcome"]
        return outcome

    def refile_late(self, category: Category, tenant_id: str, refs: list[IndexedRef]) -> int:
        """Move items a legal hold keeps to the late bucket (read on every run, so they go once the hold is
        lifted) and clear their TTL backstop, which would otherwise remove them regardless of the hold. A profile
        is refiled only while its status is open (an erasing one is the erasure's). Returns how many it moved."""
        table = self._table(category)
        profiles = category == "inactive_profiles"
        moved = 0
        for ref in refs:
            shard = day_index.shard_of(ref.item_id)
            moved += self._update_existing(
                table,
                item_key(tenant_id, ref),
                "SET day_pk = :p REMOVE expires_at",
                {
                    ":p": keyspace.day_pk(tenant_id, category, day_index.LATE, shard),
                    **(_open_values() if profiles else {}),
                },
                names={"#s": "status"} if profiles else None,
                extra_condition=OPEN_CONDITION if profiles else None,
            )
        return moved

    def reindex_profile(self, tenant_id: str, subject_id: str, active_at: str, version: int) -> bool:
        """The profile was found active at `active_at`: file it under that time (late bucket), unless it changed
        since it was read or is no longer open (its version and status are the condition; the write bumps the
        version, as every profile write). Whether it wrote."""
        entry = keyspace.day_entry(tenant_id, "inactive_profiles", active_at, subject_id, late=True)
        key = {"pk": keyspace.subject_pk(tenant_id, subject_id), "sk": keyspace.PROFILE_SK}
        values = {":a": active_at, ":p": entry["day_pk"], ":s": entry["day_sk"], ":one": 1, ":v": version}
        return self._update_existing(
            self.subjects,
            key,
            "SET active_at = :a, day_pk = :p, day_sk = :s, version = version + :one",
            {**values, **_open_values()},
            names={"#s": "status"},
            extra_condition=f"version = :v AND {OPEN_CONDITION}",
        )

    def package_gone(self, tenant_id: str, request_id: str, completed_at: str, now: str) -> None:
        """The export's package is removed: the record says so, and moves on to the closed_requests category."""
        entry = keyspace.day_entry(tenant_id, "closed_requests", completed_at, request_id, late=True)
        self._update_existing(
            self.requests,
            {"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.request_sk(request_id)},
            "SET #r.package_removed_at = :now, day_pk = :p, day_sk = :s REMOVE #r.package_key",
            {":now": now, ":p": entry["day_pk"], ":s": entry["day_sk"]},
            names={"#r": "result"},
        )

    @staticmethod
    def _update_existing(
        table: DynamoTable,
        key: dict[str, str],
        expression: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        extra_condition: str | None = None,
    ) -> bool:
        """An UpdateItem that never re-creates an item removed meanwhile; a failed condition is a no-op (False)."""
        condition = "attribute_exists(pk)" + (f" AND {extra_condition}" if extra_condition else "")
        try:
            table._ddb.update_item(
                TableName=table.table_name,
                Key=serialise(key),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=serialise(values),
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return False
        return True

    # ------------------------------------------------------------------ watermarks
    def watermark(self, tenant_id: str, category: str) -> str | None:
        """The last day (YYYY-MM-DD) of the category whose bucket is done: no run queries it again."""
        resp = self.tenants._ddb.get_item(
            TableName=self.tenants.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.watermark_sk(category)}),
            ConsistentRead=True,
        )
        return str(deserialise(resp["Item"])["day"]) if "Item" in resp else None

    def watermarks(self, tenant_id: str) -> dict[str, str]:
        """Every category's watermark of the tenant: one Query."""
        resp = self.tenants._ddb.query(
            TableName=self.tenants.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :w)",
            ExpressionAttributeValues=serialise(
                {":pk": keyspace.tenant_pk(tenant_id), ":w": keyspace.WATERMARK_PREFIX}
            ),
            ConsistentRead=True,
        )
        found = (deserialise(raw) for raw in resp["Items"])
        return {item["sk"].removeprefix(keyspace.WATERMARK_PREFIX): str(item["day"]) for item in found}

    def advance_watermark(self, tenant_id: str, category: str, day: str) -> None:
        """Only ever forward."""
        try:
            self.tenants._ddb.put_item(
                TableName=self.tenants.table_name,
                Item=serialise(
                    {"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.watermark_sk(category), "day": day}
                ),
                ConditionExpression="attribute_not_exists(pk) OR #d < :d",
                ExpressionAttributeNames={"#d": "day"},
                ExpressionAttributeValues=serialise({":d": day}),
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    # ------------------------------------------------------------------ runs and the lease
    def lease(self, tenant_id: str) -> tuple[str, str] | None:
        """(run id, held until) of the tenant's current run, if any."""
        resp = self.tenants._ddb.get_item(
            TableName=self.tenants.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": LEASE_SK}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        item = deserialise(resp["Item"])
        return str(item["run_id"]), str(item["until"])

    def start_run(self, run: RetentionRunItem, until: str, replaces: str | None) -> None:
        """Take the lease (free, or the expired one of `replaces`) and create the run record, in one
        transaction; Conflict if another run holds it."""
        lease = {"pk": keyspace.tenant_pk(run.tenant_id), "sk": LEASE_SK, "run_id": run.run_id, "until": until}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if replaces is not None:
            condition = {
                "ConditionExpression": "run_id = :old",
                "ExpressionAttributeValues": serialise({":old": replaces}),
            }
        self._transact(
            [
                {"Put": {"TableName": self.tenants.table_name, "Item": serialise(lease), **condition}},
                {
                    "Put": {
                        "TableName": self.tenants.table_name,
                        "Item": serialise(_run_record(run)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    def get_run(self, tenant_id: str, run_id: str) -> RetentionRunItem | None:
        resp = self.tenants._ddb.get_item(
            TableName=self.tenants.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.run_sk(run_id)}),
            ConsistentRead=True,
        )
        return load_run(deserialise(resp["Item"])["document"]) if "Item" in resp else None

    def commit(self, run: RetentionRunItem, until: str | None) -> None:
        """Write the run record if its stored seq is the one before this one, and renew (or, `until` None,
        release) the lease it holds, in one transaction; Conflict if another worker committed first or the
        run lost its lease."""
        lease_key = serialise({"pk": keyspace.tenant_pk(run.tenant_id), "sk": LEASE_SK})
        mine = serialise({":me": run.run_id})
        lease_op: dict[str, Any]
        if until is None:
            lease_op = {"Delete": {"Key": lease_key, "ConditionExpression": "run_id = :me"}}
        else:
            lease_op = {
                "Update": {
                    "Key": lease_key,
                    "UpdateExpression": "SET #u = :until",
                    "ConditionExpression": "run_id = :me",
                    "ExpressionAttributeNames": {"#u": "until"},
                }
            }
            mine.update(serialise({":until": until}))
        lease_op[next(iter(lease_op))].update(TableName=self.tenants.table_name, ExpressionAttributeValues=mine)
        self._transact(
            [
                {
                    "Put": {
                        "TableName": self.tenants.table_name,
                        "Item": serialise(_run_record(run)),
                        "ConditionExpression": "seq = :before",
                        "ExpressionAttributeValues": serialise({":before": run.seq - 1}),
                    }
                },
                lease_op,
                *self._finished_entry(run, "completed"),
            ]
        )

    def _finished_entry(self, run: RetentionRunItem, phase: str) -> list[dict[str, Any]]:
        """A finished run's ledger entry (its counts per category), for the transaction that records them."""
        if run.status != "completed":
            return []
        return [outbox_op(self.outbox_table, ledger.retention_run(run, phase))]

    def settle(self, run: RetentionRunItem) -> None:
        """Write the counts that include what the pending chunk's acts found, once (the record still at its seq,
        not yet settled); a no-op if another attempt settled it or the run went on."""
        put = {
            "TableName": self.tenants.table_name,
            "Item": serialise(_run_record(run)),
            "ConditionExpression": "seq = :s AND (attribute_not_exists(settled) OR settled = :f)",
            "ExpressionAttributeValues": serialise({":s": run.seq, ":f": False}),
        }
        try:
            self.tenants._ddb.transact_write_items(TransactItems=[{"Put": put}, *self._finished_entry(run, "settled")])
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def abandon(self, tenant_id: str, run_id: str) -> None:
        """Mark a run whose lease expired (it stopped, e.g. its message went to the DLQ) as abandoned."""
        run = self.get_run(tenant_id, run_id)
        if run is None or run.status != "running":
            return
        abandoned = run.model_copy(update={"status": "abandoned", "pending": None})
        try:
            self.tenants._ddb.put_item(
                TableName=self.tenants.table_name,
                Item=serialise(_run_record(abandoned)),
                ConditionExpression="seq = :s",
                ExpressionAttributeValues=serialise({":s": run.seq}),
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def runs_page(self, tenant_id: str, limit: int, after: str | None) -> tuple[list[RetentionRunItem], str | None]:
        """Newest first, after the run `after`; reads one ahead so that the last page has no next run id. (A cursor
        signed before pages were by run id holds the run's sk, RUN#<id>: read as that id.)"""
        query: dict[str, Any] = {
            "TableName": self.tenants.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :run)",
            "ExpressionAttributeValues": serialise({":pk": keyspace.tenant_pk(tenant_id), ":run": keyspace.RUN_PREFIX}),
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after:
            sk = keyspace.run_sk(after.removeprefix(keyspace.RUN_PREFIX))
            query["ExclusiveStartKey"] = serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": sk})
        raw = self.tenants._ddb.query(**query)["Items"]
        runs = [load_run(deserialise(i)["document"]) for i in raw[:limit]]
        more = len(raw) > limit and runs
        return runs, runs[-1].run_id if more else None

    def _transact(self, ops: list[dict[str, Any]]) -> None:
        try:
            self.tenants._ddb.transact_write_items(TransactItems=ops)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise Conflict("another retention run holds this tenant, or committed first") from error
            raise


def load_run(document: str) -> RetentionRunItem:
    """A stored run record; one written before items were named by IndexedRef (its pending chunk and cursor held
    table keys) is read in today's form, so that its run goes on and the runs' listing reads it."""
    data = json.loads(document)
    cursor, pending = data.get("cursor") or {}, data.get("pending")
    if "start_key" in cursor:
        start = cursor.pop("start_key")
        cursor["after"] = item_ref(start).model_dump() if start else None
    if pending:
        for field in ("remove", "refile"):
            pending[field] = [_legacy_ref(k).model_dump() if "pk" in k else k for k in pending.get(field, [])]
        texts = pending.get("texts") or {}
        pending["texts"] = {key.rpartition("#")[2]: blob for key, blob in texts.items()}  # sk I#<at>#<id>, or <id>
        pending["filed"] = {
            s: IndexedRef(kind="profile", item_id=s, at=f.partition("#")[0], subject_id=s).model_dump()
            if isinstance(f, str)
            else f
            for s, f in (pending.get("filed") or {}).items()
        }
    return RetentionRunItem.model_validate(data)


def _legacy_ref(key: dict[str, str]) -> IndexedRef:
    """The ref of an earlier record's {pk, sk} (with its day_sk where it kept one): an interaction's time and id are
    in its sk; a request record's time is needed by no act."""
    if "day_sk" in key:
        return item_ref(key)
    sk = key["sk"]
    day_sk = sk.removeprefix(keyspace.INTERACTION_PREFIX) if sk.startswith(keyspace.INTERACTION_PREFIX) else "#"
    return item_ref({**key, "day_sk": day_sk})


def _run_record(run: RetentionRunItem) -> dict[str, Any]:
    return {
        "pk": keyspace.tenant_pk(run.tenant_id),
        "sk": keyspace.run_sk(run.run_id),
        "seq": run.seq,
        "settled": run.settled,
        "document": run.model_dump_json(),
    }


def _marker(pk: str, at: str) -> dict[str, str]:
    return {"pk": pk, "sk": keyspace.activity_sk(at)}


def _failed(reasons: list[dict[str, Any]], index: int) -> bool:
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"


def item_key(tenant_id: str, ref: IndexedRef) -> dict[str, str]:
    """The table key of the item `ref` names (of `tenant_id`: a ref never names another tenant's item)."""
    if ref.kind == "request":
        return {"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.request_sk(ref.item_id)}
    assert ref.subject_id is not None, "an interaction or profile ref names its subject"
    pk = keyspace.subject_pk(tenant_id, ref.subject_id)
    if ref.kind == "profile":
        return {"pk": pk, "sk": keyspace.PROFILE_SK}
    return {"pk": pk, "sk": keyspace.interaction_sk(ref.at, ref.item_id)}


def item_ref(item: dict[str, Any]) -> IndexedRef:
    """The ref of an item the day index returned, from its table key and its day_sk (<at>#<id>)."""
    at, _, item_id = str(item["day_sk"]).partition("#")
    sk = str(item["sk"])
    owner = keyspace.parse_subject_pk(str(item["pk"]))
    if owner is None:
        return IndexedRef(kind="request", item_id=sk.removeprefix(keyspace.REQUEST_PREFIX), at=at)
    if sk == keyspace.PROFILE_SK:
        return IndexedRef(kind="profile", item_id=owner[1], at=at, subject_id=owner[1])
    return IndexedRef(kind="interaction", item_id=item_id, at=at, subject_id=owner[1])


def _entry(item: dict[str, Any]) -> DueEntry:
    result = item.get("result") or {}
    return DueEntry(
        ref=item_ref(item),
        subject_id=item.get("subject_id"),
        conversation_id=item.get("conversation_id"),
        role=item.get("role"),
        channel=item.get("channel"),
        text_blob_key=item.get("text_blob_key"),
        version=item.get("version"),
        expires="expires_at" in item,
        type=item.get("type"),
        package_key=result.get("package_key") if isinstance(result, dict) else None,
    )
