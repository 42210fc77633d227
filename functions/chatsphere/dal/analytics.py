"""Analytics' reads of profiles (status and objections only, never a sealed value) and its daily aggregates in
TenantsTable (sk = DAY#<YYYY-MM-DD>), which hold counts only and outlive the interactions they came from."""

from __future__ import annotations

import random
import time
from typing import Any

from botocore.exceptions import ClientError

from chatsphere.dal import keyspace
from chatsphere.dal.dynamo import DynamoTable, deserialise, is_condition_failure, serialise
from chatsphere.models.analytics import DailyAggregate

BATCH_GET_KEYS = 100
ATTEMPTS = 8


class DynamoAnalyticsStore:
    def __init__(self, subjects_table: str, tenants_table: str) -> None:
        self.subjects = DynamoTable(subjects_table)
        self.tenants = DynamoTable(tenants_table)

    def profiles(self, tenant_id: str, subject_ids: list[str]) -> dict[str, tuple[str, list[str]]]:
        """Subject id -> (status, purposes objected to), for those that have a profile: BatchGetItem, 100 a call."""
        found: dict[str, tuple[str, list[str]]] = {}
        table = self.subjects.table_name
        for start in range(0, len(subject_ids), BATCH_GET_KEYS):
            keys = [
                serialise({"pk": keyspace.subject_pk(tenant_id, s), "sk": keyspace.PROFILE_SK})
                for s in subject_ids[start : start + BATCH_GET_KEYS]
            ]
            request: dict[str, Any] = {
                table: {
                    "Keys": keys,
                    "ProjectionExpression": "subject_id, #s, objections",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ConsistentRead": True,
                }
            }
            for attempt in range(ATTEMPTS):
                resp = self.subjects._ddb.batch_get_item(RequestItems=request)
                for raw in resp["Responses"].get(table, []):
                    item = deserialise(raw)
                    found[item["subject_id"]] = (item["status"], sorted(item.get("objections") or {}))
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security
            else:
                raise RuntimeError("DynamoDB left profile reads unprocessed; the run will retry")
        return found

    def get_day(self, tenant_id: str, day: str) -> DailyAggregate | None:
        resp = self.tenants._ddb.get_item(
            TableName=self.tenants.table_name,
            Key=serialise({"pk": keyspace.tenant_pk(tenant_id), "sk": keyspace.analytics_sk(day)}),
            ConsistentRead=True,
        )
        return DailyAggregate.model_validate_json(deserialise(resp["Item"])["document"]) if "Item" in resp else None

    def put_day(self, tenant_id: str, aggregate: DailyAggregate) -> bool:
        """Store a day's aggregate once; False if it was computed already (it is kept as first computed)."""
        item = {
            "pk": keyspace.tenant_pk(tenant_id),
            "sk": keyspace.analytics_sk(aggregate.day),
            "document": aggregate.model_dump_json(),
        }
        try:
            self.tenants._ddb.put_item(
                TableName=self.tenants.table_name,
                Item=serialise(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def days(self, tenant_id: str, first: str, last: str) -> list[DailyAggregate]:
        """The stored aggregates from `first` to `last` (YYYY-MM-DD, inclusive), oldest first."""
        pages = self.tenants._ddb.get_paginator("query").paginate(
            TableName=self.tenants.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=serialise(
                {
                    ":pk": keyspace.tenant_pk(tenant_id),
                    ":lo": keyspace.analytics_sk(first),
                    ":hi": keyspace.analytics_sk(last),
                }
            ),
        )
        return [
            DailyAggregate.model_validate_json(deserialise(raw)["document"]) for page in pages for raw in page["Items"]
        ]
