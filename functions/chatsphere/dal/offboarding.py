"""An offboarding's own items: the tenant's one offboarding marker and its package lines (RequestsTable), and the
removal of everything the tenant holds under its own partitions once its subjects are erased.

What stays, by design: the tenant item (status `offboarded`, its secret removed), tombstones (keyed hashes that can
no longer be linked to anyone once the secret is gone; they keep a restored copy from coming back), the request
metrics (counts per day, no subject) and the offboarding's own record, which carries its receipt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, deserialise, serialise
from chatsphere.dal.requests import request_ops, status_ops
from chatsphere.models.common import iso, utc_now
from chatsphere.models.offboarding import Leftover, PackageLine
from chatsphere.models.requests import RequestItem

LeftoverTable = Literal["tenants", "requests"]
PAGE = 100  # keys per Query: memory holds one page, however much the tenant leaves
# What each kind of leftover is counted as on the receipt, by its sort key's prefix (TenantsTable, RequestsTable).
TENANT_KINDS = {
    keyspace.SETTINGS_SK: "settings",
    keyspace.POLICY_PREFIX: "policy_versions",
    "POLICYVERSION#": "policy_versions",
    keyspace.api_key_sk(""): "api_keys",
    keyspace.ANALYTICS_PREFIX: "analytics_days",
}
REQUEST_PREFIXES = {keyspace.REQUEST_PREFIX: "request_records", keyspace.PACKAGE_LINE_PREFIX: "package_lines"}


def leftover_kind(table: LeftoverTable, sk: str) -> str:
    if table == "requests":
        return next(kind for prefix, kind in REQUEST_PREFIXES.items() if sk.startswith(prefix))
    return next((kind for prefix, kind in TENANT_KINDS.items() if sk.startswith(prefix)), "retention_state")


class DynamoOffboardingStore(DynamoTable):
    def __init__(self, requests_table: str, tenants_table: str, outbox_table: str) -> None:
        super().__init__(requests_table)
        self.tenants_table = tenants_table
        self.outbox_table = outbox_table

    # ------------------------------------------------------------ the one offboarding
    def create(self, item: RequestItem, replaces: str | None = None) -> None:
        """The record and the tenant's marker naming it, only if the tenant has no offboarding (or, with
        `replaces`, if its marker still names that one, a failed one); else Conflict."""
        marker: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": serialise(
                {"pk": keyspace.tenant_pk(item.tenant_id), "sk": keyspace.OFFBOARDING_SK, "request_id": item.request_id}
            ),
        }
        if replaces is None:
            marker["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            marker["ConditionExpression"] = "request_id = :r"
            marker["ExpressionAttributeValues"] = serialise({":r": replaces})
        ops = request_ops(self.table_name, self.outbox_table, item)
        self._transact([{"Put": marker}, *ops], "the tenant's offboarding was requested meanwhile")

    def current(self, tenant_id: str) -> str | None:
        """The request id of the tenant's offboarding, if it has one."""
        resp = self._ddb.get_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.OFFBOARDING_SK}),
            ConsistentRead=True,
        )
        return str(deserialise(resp["Item"])["request_id"]) if "Item" in resp else None

    # ------------------------------------------------------------ package lines
    def put_lines(self, tenant_id: str, request_id: str, lines: list[PackageLine]) -> None:
        """Idempotent Puts: a line written again (a retried page) replaces itself."""
        pk = keyspace.tenant_pk(tenant_id)
        self._write_batch(
            [
                {
                    "PutRequest": {
                        "Item": serialise(
                            {"pk": pk, "sk": keyspace.package_line_sk(request_id, line.subject_id), **line.model_dump()}
                        )
                    }
                }
                for line in lines
            ]
        )

    def lines(
        self, tenant_id: str, request_id: str, limit: int, after: str | None = None
    ) -> tuple[list[PackageLine], str | None]:
        """Up to `limit` lines in subject id order after the subject id `after`; and the last id if more follow."""
        pk = keyspace.tenant_pk(tenant_id)
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": serialise({":pk": pk, ":p": keyspace.package_line_sk(request_id, "")}),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after is not None:
            query["ExclusiveStartKey"] = serialise({"pk": pk, "sk": keyspace.package_line_sk(request_id, after)})
        resp = self._ddb.query(**query)
        fields = set(PackageLine.model_fields)
        found = [
            PackageLine.model_validate({k: v for k, v in deserialise(raw).items() if k in fields})
            for raw in resp["Items"]
        ]
        return found, (found[-1].subject_id if found and "LastEvaluatedKey" in resp else None)

    # ------------------------------------------------------------ what the tenant leaves
    def leftovers(self, tenant_id: str, keep_request: str, limit: int) -> list[Leftover]:
        """Up to `limit` of the tenant's items still to remove: in TenantsTable all but the tenant item; in
        RequestsTable its request records (but `keep_request`, the offboarding's own) and package lines."""
        found: list[Leftover] = []
        for item in self._leftovers(tenant_id, keep_request, page=min(limit, PAGE)):
            if len(found) == limit:
                break
            found.append(item)
        return found

    def leftover_counts(self, tenant_id: str, keep_request: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self._leftovers(tenant_id, keep_request, page=PAGE):
            counts[item.kind] = counts.get(item.kind, 0) + 1
        return counts

    def _leftovers(self, tenant_id: str, keep_request: str, page: int) -> Iterator[Leftover]:
        pk = keyspace.tenant_pk(tenant_id)
        sources: list[tuple[LeftoverTable, str, str | None]] = [
            ("tenants", self.tenants_table, None),
            ("requests", self.table_name, keyspace.REQUEST_PREFIX),
            ("requests", self.table_name, keyspace.PACKAGE_LINE_PREFIX),
        ]
        keep = {("tenants", keyspace.TENANT_SK), ("requests", keyspace.request_sk(keep_request))}
        for table, name, prefix in sources:
            query: dict[str, Any] = {
                "TableName": name,
                "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :p)" if prefix else ""),
                "ExpressionAttributeValues": serialise({":pk": pk, **({":p": prefix} if prefix else {})}),
                "ProjectionExpression": "sk",
                "ConsistentRead": True,
                "Limit": page,
            }
            while True:
                resp = self._ddb.query(**query)
                for raw in resp["Items"]:
                    key = deserialise(raw)["sk"]
                    if (table, key) not in keep:
                        yield Leftover(table=table, key=key, kind=leftover_kind(table, key))
                if "LastEvaluatedKey" not in resp:
                    break
                query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def remove(self, tenant_id: str, leftovers: list[Leftover]) -> None:
        pk = keyspace.tenant_pk(tenant_id)
        for table, name in (("tenants", self.tenants_table), ("requests", self.table_name)):
            keys = [{"pk": pk, "sk": item.key} for item in leftovers if item.table == table]
            DynamoTable(name)._delete_keys(keys)

    # ------------------------------------------------------------ the end
    def close(self, record: RequestItem, expected_status: tuple[str, ...]) -> None:
        """The offboarding's record closes (its receipt, and the receipt's ledger entry) and the tenant becomes
        `offboarded`, its identifier secret removed, in one transaction."""
        tenant = {
            "Update": {
                "TableName": self.tenants_table,
                "Key": serialise({"pk": keyspace.tenant_pk(record.tenant_id), "sk": keyspace.TENANT_SK}),
                "UpdateExpression": "SET #s = :o, offboarded_at = :at REMOVE hmac_key_wrapped",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": serialise(
                    {":o": "offboarded", ":at": record.completed_at or iso(utc_now())}
                ),
            }
        }
        self._transact(
            [tenant, *status_ops(self.table_name, self.outbox_table, record, expected_status)],
            "the offboarding is no longer in progress",
        )
