"""RequestsTable: rights request records (pk = T#<tenant>, sk = R#<request_id>).

Open requests carry `open_pk`, which puts them in the sparse OpenRequestsIndex sorted by due_at:
overdue requests are one Query per tenant, and one Scan of open requests only for the monitor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import (
    DynamoTable,
    backstop_expiry,
    deserialise,
    serialise,
)
from chatsphere.dal.ledger import outbox_op
from chatsphere.models import ledger
from chatsphere.models.reports import DayCounts, TypeCounts
from chatsphere.models.requests import OPEN_STATUSES, WHOLE_TENANT, ExportResult, RequestItem

OPEN_INDEX = "OpenRequestsIndex"
SUBJECT_INDEX = "SubjectIndex"
_ITEM_FIELDS = tuple(RequestItem.model_fields)
# The stored name of RequestItem.subject_deleted: records written before the code said "deletion" carry it, so the
# stored form keeps it (a record read without it would look un-pseudonymised to the deletion job and reconcile).
DELETED_FLAG = "subject_erased"


def request_record(item: RequestItem) -> dict[str, Any]:
    """The stored form, with the open-index attribute while the request is open."""
    record: dict[str, Any] = {"pk": keyspace.tenant_pk(item.tenant_id), "sk": keyspace.request_sk(item.request_id)}
    record.update(item.model_dump(exclude_none=True))
    record[DELETED_FLAG] = record.pop("subject_deleted")
    if item.is_open:
        record["open_pk"] = keyspace.tenant_pk(item.tenant_id)
    if not item.subject_deleted and item.subject_id != WHOLE_TENANT:
        record["subject_ref"] = keyspace.subject_pk(item.tenant_id, item.subject_id)
    record.update(closed_index(item))
    return record


def closed_index(item: RequestItem) -> dict[str, Any]:
    """A closed record's day index entry: X (export_packages) while it has a package, else R (closed_requests);
    and its TTL backstop. None of these while the record is open."""
    if item.is_open or item.completed_at is None:
        return {}
    has_package = isinstance(item.result, ExportResult) and item.result.package_key is not None
    category = "export_packages" if has_package else "closed_requests"
    entry = keyspace.day_entry(item.tenant_id, category, item.completed_at, item.request_id)
    return {**entry, "expires_at": backstop_expiry(item.completed_at)}


def put_request_op(table_name: str, item: RequestItem) -> dict[str, Any]:
    """A transaction Put that creates the record once (a retried transaction cannot double it)."""
    return {
        "Put": {
            "TableName": table_name,
            "Item": serialise(request_record(item)),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def request_ops(table_name: str, outbox_table: str, *items: RequestItem) -> list[dict[str, Any]]:
    """New records, their ledger entries and their counts in the request metrics, for one transaction: one ADD per
    day of receipt (a transaction may touch an item once; a hold's lift and the deletion it opens share a day)."""
    ops: list[dict[str, Any]] = []
    by_day: dict[tuple[str, str], dict[str, int]] = {}
    for item in items:
        ops += [put_request_op(table_name, item), outbox_op(outbox_table, ledger.request_created(item))]
        counts = {f"n#{item.type}#received": 1, **(_closed(item) if not item.is_open else _open(item, 1))}
        day = by_day.setdefault((item.tenant_id, item.received_at[:10]), {})
        for name, n in counts.items():
            day[name] = day.get(name, 0) + n
    ops += [metrics_op(table_name, tenant, received, counts) for (tenant, received), counts in by_day.items()]
    return ops


def status_ops(
    table_name: str, outbox_table: str, item: RequestItem, expected_status: tuple[str, ...]
) -> list[dict[str, Any]]:
    """A status change and its ledger entry (a completed erasure's is its receipt), for one transaction; and, when
    it closes an open record (every expected status open), the close in the request metrics."""
    ops = [
        {"Update": status_update(table_name, item, expected_status)},
        outbox_op(outbox_table, ledger.status_changed(item)),
    ]
    if not item.is_open and set(expected_status) <= set(OPEN_STATUSES):
        ops.append(metrics_op(table_name, item.tenant_id, item.received_at, {**_closed(item), **_open(item, -1)}))
    return ops


# ------------------------------------------------------------ request metrics (models/reports.py)
# pk = T#<tenant>, sk = M#<the day requests were received>: counters ADDed in the records' own transactions:
# n#<type>#received, n#<type>#<closing status>, d#<type>#<whole days to close>, s#<type> (ms to close, summed)
# and o#<type>#<due date> (open, by due date: past due is a sum over the dates before today).


def metrics_op(table_name: str, tenant_id: str, received_at: str, counts: dict[str, int]) -> dict[str, Any]:
    """The ADD of `counts` to the metrics of the day `received_at` falls on."""
    names = {f"#c{i}": name for i, name in enumerate(counts)}
    values = {f":c{i}": value for i, value in enumerate(counts.values())}
    return {
        "Update": {
            "TableName": table_name,
            "Key": serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.metrics_sk(received_at[:10])}),
            "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialise(values),
        }
    }


def _open(item: RequestItem, delta: int) -> dict[str, int]:
    return {f"o#{item.type}#{item.due_at[:10]}": delta}


def _closed(item: RequestItem) -> dict[str, int]:
    seconds = max(0.0, (_when(item.completed_at or item.received_at) - _when(item.received_at)).total_seconds())
    days = int(seconds // 86400)
    return {f"n#{item.type}#{item.status}": 1, f"d#{item.type}#{days}": 1, f"s#{item.type}": round(seconds * 1000)}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _day_counts(raw: dict[str, Any]) -> DayCounts:
    counts = DayCounts(day=str(raw["sk"]).removeprefix(keyspace.METRICS_PREFIX))
    for name, value in raw.items():
        kind, _, rest = name.partition("#")
        if kind not in ("n", "d", "s", "o"):
            continue
        type_, _, key = rest.partition("#")
        of_type = counts.by_type.setdefault(type_, TypeCounts())
        if kind == "n" and key == "received":
            of_type.received = int(value)
        elif kind == "n":
            of_type.closed[key] = int(value)
        elif kind == "d":
            of_type.close_days[int(key)] = int(value)
        elif kind == "s":
            of_type.close_seconds = int(value) / 1000
        else:
            of_type.open_due[key] = int(value)
    return counts


def status_update(table_name: str, item: RequestItem, expected_status: tuple[str, ...]) -> dict[str, Any]:
    """The UpdateItem of a status change (set_status), also a transaction's Update: status, completion time
    and result only, if the stored status is one of `expected_status`."""
    names = {"#s": "status"}
    values: dict[str, Any] = {":status": item.status, **{f":e{i}": s for i, s in enumerate(expected_status)}}
    sets, removes = ["#s = :status"], []
    written: dict[str, Any] = {
        "completed_at": item.completed_at,
        "result": item.result.model_dump(exclude_none=True) if item.result else None,
        "open_pk": keyspace.tenant_pk(item.tenant_id) if item.is_open else None,
        **dict.fromkeys(("day_pk", "day_sk", "expires_at")),
        **closed_index(item),
    }
    if item.subject_deleted:  # a deletion's own record completes with the subject's keyed hash
        written.update({"subject_id": item.subject_id, DELETED_FLAG: True, "subject_ref": None})
    for field, value in written.items():
        names[f"#{field}"] = field  # `result` is a reserved word
        if value is None:
            removes.append(f"#{field}")
        else:
            sets.append(f"#{field} = :{field}")
            values[f":{field}"] = value
    expected = ", ".join(f":e{i}" for i in range(len(expected_status)))
    return {
        "TableName": table_name,
        "Key": serialise({"pk": keyspace.tenant_pk(item.tenant_id), "sk": keyspace.request_sk(item.request_id)}),
        "UpdateExpression": f"SET {', '.join(sets)}" + (f" REMOVE {', '.join(removes)}" if removes else ""),
        "ConditionExpression": f"#s IN ({expected})",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": serialise(values),
    }


class DynamoRequestStore(DynamoTable):
    """Every write of a record goes with its ledger entry (OutboxTable), in one transaction."""

    def __init__(self, table_name: str, outbox_table: str) -> None:
        super().__init__(table_name)
        self.outbox_table = outbox_table

    def create(self, item: RequestItem, once_as: str | None = None, replaces: str | None = None) -> None:
        """The record; with `once_as`, in the same transaction the marker of that name naming it, only if no marker
        has the name (or, with `replaces`, if it still names that request): else Conflict. Of concurrent identical
        requests, one makes the record. The marker names a request id only, under a keyed name, and goes with its
        TTL backstop after the request's due date."""
        ops = request_ops(self.table_name, self.outbox_table, item)
        if once_as is not None:
            marker: dict[str, Any] = {
                "TableName": self.table_name,
                "Item": serialise(
                    {
                        "pk": keyspace.tenant_pk(item.tenant_id),
                        "sk": keyspace.ONCE_PREFIX + once_as,
                        "request_id": item.request_id,
                        "expires_at": backstop_expiry(item.due_at),
                    }
                ),
            }
            if replaces is None:
                marker["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                marker["ConditionExpression"] = "request_id = :r"
                marker["ExpressionAttributeValues"] = serialise({":r": replaces})
            ops.insert(0, {"Put": marker})
        self._transact(ops, "an identical request was made meanwhile" if once_as else "request id already exists")

    def marked(self, tenant_id: str, once_as: str) -> str | None:
        """The request id the marker `once_as` names, if there is one."""
        resp = self._ddb.get_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.ONCE_PREFIX + once_as}),
            ConsistentRead=True,
        )
        return str(deserialise(resp["Item"])["request_id"]) if "Item" in resp else None

    def get(self, tenant_id: str, request_id: str) -> RequestItem | None:
        resp = self._ddb.get_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.request_sk(request_id)}),
            ConsistentRead=True,
        )
        return _item(resp["Item"]) if "Item" in resp else None

    def set_status(self, item: RequestItem, expected_status: tuple[str, ...]) -> None:
        """Write the record's status, completion time and result, and nothing else (a stale copy never
        undoes an extension), if its stored status is one of `expected_status`: a compare-and-set."""
        self._transact(
            status_ops(self.table_name, self.outbox_table, item, expected_status),
            "the request is no longer in a state that allows this",
        )

    def extend(self, extended: RequestItem, previous_due_at: str) -> None:
        """Record the one extension: only while the request is open, not extended, and due when it was read."""
        assert extended.extension is not None
        values = {
            ":due": extended.due_at,
            ":ext": extended.extension,
            ":was": previous_due_at,
            **{f":o{i}": s for i, s in enumerate(OPEN_STATUSES)},
        }
        open_ = ", ".join(f":o{i}" for i in range(len(OPEN_STATUSES)))
        update = {
            "TableName": self.table_name,
            "Key": self._key(extended.tenant_id, extended.request_id),
            "UpdateExpression": "SET due_at = :due, extension = :ext",
            "ConditionExpression": f"attribute_not_exists(extension) AND due_at = :was AND #s IN ({open_})",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": serialise(values),
        }
        moved = {**_open(extended.model_copy(update={"due_at": previous_due_at}), -1), **_open(extended, 1)}
        ops = [{"Update": update}, outbox_op(self.outbox_table, ledger.extended(extended))]
        if previous_due_at[:10] != extended.due_at[:10]:  # the open count moves to its new due date
            ops.append(metrics_op(self.table_name, extended.tenant_id, extended.received_at, moved))
        self._transact(ops, "the request is closed or has been extended already")

    # ------------------------------------------------------------ a subject's records
    def of_subject(self, tenant_id: str, subject_id: str) -> list[RequestItem]:
        """Every record of the subject (SubjectIndex), oldest first; none once the subject is deleted."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": SUBJECT_INDEX,
            "KeyConditionExpression": "subject_ref = :s",
            "ExpressionAttributeValues": serialise({":s": keyspace.subject_pk(tenant_id, subject_id)}),
        }
        return list(self._query_pages(query, None))

    def pseudonymise(self, item: RequestItem, subject_hash: str) -> None:
        """The record keeps its proof and loses the subject id: the keyed hash takes its place (idempotent)."""
        export = isinstance(item.result, ExportResult)
        values = serialise({":h": subject_hash, ":t": True})
        if export:  # null: the package went with the subject
            values[":none"] = {"NULL": True}
        self._ddb.update_item(
            TableName=self.table_name,
            Key=self._key(item.tenant_id, item.request_id),
            # An export's package key names the subject's prefix: the package is gone, and so is its key.
            UpdateExpression=f"SET subject_id = :h, {DELETED_FLAG} = :t"
            + (", #r.package_key = :none" if export else "")
            + " REMOVE subject_ref",
            **({"ExpressionAttributeNames": {"#r": "result"}} if export else {}),
            ExpressionAttributeValues=values,
        )

    def metrics(self, tenant_id: str, first_day: str, last_day: str) -> list[DayCounts]:
        """The request metrics of the requests received from `first_day` to `last_day` (YYYY-MM-DD): one item per
        day that had a request, whatever the number of records."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": serialise(
                {
                    ":pk": keyspace.tenant_pk(tenant_id),
                    ":a": keyspace.metrics_sk(first_day),
                    ":b": keyspace.metrics_sk(last_day),
                }
            ),
        }
        days: list[DayCounts] = []
        while True:
            resp = self._ddb.query(**query)
            days.extend(_day_counts(deserialise(raw)) for raw in resp["Items"])
            if "LastEvaluatedKey" not in resp:
                return days
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def with_subject_ids(self) -> Iterator[RequestItem]:
        """A Scan of the sparse SubjectIndex: only records not pseudonymised carry subject_ref."""
        for page in self._ddb.get_paginator("scan").paginate(TableName=self.table_name, IndexName=SUBJECT_INDEX):
            for raw in page["Items"]:
                yield _item(raw)

    def _key(self, tenant_id: str, request_id: str) -> dict[str, Any]:
        return serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.request_sk(request_id)})

    def page(
        self,
        tenant_id: str,
        limit: int,
        after: str | None,
        statuses: Sequence[str] | None,
        type_: str | None,
        subject_id: str | None = None,
    ) -> tuple[list[RequestItem], str | None]:
        """Newest first, after the request id `after`; filters applied in DynamoDB; reads ahead so the last page
        says so. Returns the page and the id of its last request when more follow. One subject's records are a
        Query of the SubjectIndex (subject_ref, sk), the tenant's all a Query of its partition: one Query either way.
        A pseudonymised record has no subject_ref, so an erased subject's id finds none of its records."""
        tenant = keyspace.tenant_pk(tenant_id)
        values: dict[str, Any] = {":prefix": keyspace.REQUEST_PREFIX}
        query: dict[str, Any] = {"TableName": self.table_name, "ScanIndexForward": False}
        start: dict[str, Any] | None = {"pk": tenant, "sk": keyspace.request_sk(after)} if after else None
        if subject_id is None:
            query["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            values[":pk"] = tenant
        else:
            query |= {
                "IndexName": SUBJECT_INDEX,
                "KeyConditionExpression": "subject_ref = :s AND begins_with(sk, :prefix)",
            }
            values[":s"] = keyspace.subject_pk(tenant_id, subject_id)
            start = {**start, "subject_ref": values[":s"]} if start else None
        filters, names = [], {}
        if statuses:
            placeholders = [f":st{n}" for n in range(len(statuses))]
            filters.append(f"#st IN ({', '.join(placeholders)})")
            names["#st"] = "status"
            values.update(zip(placeholders, statuses, strict=True))
        if type_:
            filters.append("#ty = :type")
            names["#ty"] = "type"
            values[":type"] = type_
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
            query["ExpressionAttributeNames"] = names
        query["ExpressionAttributeValues"] = serialise(values)
        return _collect(self._query_pages(query, start), limit, lambda i: i.request_id)

    def overdue_page(
        self, tenant_id: str, now: str, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[RequestItem], tuple[str, str] | None]:
        """Open requests past due, most overdue first. `after` is (due_at, request_id) of the last one seen."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": "open_pk = :pk AND due_at < :now",
            "ExpressionAttributeValues": serialise({":pk": keyspace.tenant_pk(tenant_id), ":now": now}),
        }
        start = None
        if after:
            start = {
                "open_pk": keyspace.tenant_pk(tenant_id),
                "due_at": after[0],
                "pk": keyspace.tenant_pk(tenant_id),
                "sk": keyspace.request_sk(after[1]),
            }
        items, last = _collect(self._query_pages(query, start), limit, lambda i: i)
        return items, (last.due_at, last.request_id) if last else None

    def count_open(self, tenant_id: str) -> int:
        """The tenant's open requests: a counting Query of the sparse OpenRequestsIndex (one call per 1 MB of it)."""
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=OPEN_INDEX,
            KeyConditionExpression="open_pk = :pk",
            ExpressionAttributeValues=serialise({":pk": keyspace.tenant_pk(tenant_id)}),
            Select="COUNT",
        )
        return sum(page["Count"] for page in pages)

    def open_requests(self) -> Iterator[RequestItem]:
        """Every open request of every tenant: a Scan of the sparse index, whose size is the open backlog."""
        paginator = self._ddb.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table_name, IndexName=OPEN_INDEX):
            for raw in page["Items"]:
                yield _item(raw)

    def _query_pages(self, query: dict[str, Any], start: dict[str, Any] | None) -> Iterator[RequestItem]:
        if start:
            query = {**query, "ExclusiveStartKey": serialise(start)}
        while True:
            resp = self._ddb.query(**query)
            for raw in resp["Items"]:
                yield _item(raw)
            if "LastEvaluatedKey" not in resp:
                return
            query = {**query, "ExclusiveStartKey": resp["LastEvaluatedKey"]}


def _item(raw: dict[str, Any]) -> RequestItem:
    data = deserialise(raw)
    if DELETED_FLAG in data:
        data["subject_deleted"] = data.pop(DELETED_FLAG)
    return RequestItem.model_validate({k: data[k] for k in _ITEM_FIELDS if k in data})


def _collect(items: Iterator[RequestItem], limit: int, position: Any) -> tuple[list[RequestItem], Any]:
    """Up to `limit` items, and the position of the last one if at least one more follows."""
    page: list[RequestItem] = []
    for item in items:
        if len(page) == limit:
            return page, position(page[-1])
        page.append(item)
    return page, None
