"""The local stack's and the tests' moto: a transaction costs what it touches, and a failed one still
leaves no trace (infra/moto_patches.py)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra import moto_patches


@pytest.fixture
def table() -> Any:
    moto_patches.apply()
    with mock_aws():
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ddb


def put(sk: str, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": sk}, "v": {"S": "x" * 100}}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def test_a_failed_transaction_leaves_no_trace_and_keeps_what_was_there(table: Any) -> None:
    table.transact_write_items(TransactItems=[put("a")])
    with pytest.raises(ClientError):
        table.transact_write_items(TransactItems=[put("b"), put("a", "attribute_not_exists(pk)")])
    items = table.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert [i["sk"]["S"] for i in items["Items"]] == ["a"]


def test_a_failed_transaction_undoes_its_update_whichever_operation_fails(table: Any) -> None:
    # moto applies the operations after the one that fails: an Update changes its item in place
    table.transact_write_items(TransactItems=[put("a"), put("b")])
    update = {"TableName": "t", "UpdateExpression": "SET v = :new", "ExpressionAttributeValues": {":new": {"S": "new"}}}
    failing = {**update, "ConditionExpression": "v = :new"}
    with pytest.raises(ClientError):
        table.transact_write_items(
            TransactItems=[
                {"Update": {**failing, "Key": {"pk": {"S": "p"}, "sk": {"S": "a"}}}},
                {"Update": {**update, "Key": {"pk": {"S": "p"}, "sk": {"S": "b"}}}},
            ]
        )
    items = table.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert [i["v"]["S"] for i in items["Items"]] == ["x" * 100, "x" * 100]


def test_a_transaction_does_not_copy_the_items_of_the_table(table: Any) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    for n in range(300):
        table.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": f"{n:04d}"}, "v": {"S": "y" * 1000}})
    copies = 0
    original = Item.__deepcopy__

    def counted(self: Any, memo: Any) -> Any:
        nonlocal copies
        copies += 1
        return original(self, memo)

    Item.__deepcopy__ = counted  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        table.transact_write_items(TransactItems=[put("new")])
        print(f"one transaction over 300 items: {time.perf_counter() - started:.4f}s, {copies} item copies")
    finally:
        Item.__deepcopy__ = original  # type: ignore[method-assign]
    assert copies == 0


def _seed(table: Any, partitions: int, per_partition: int) -> None:
    for p in range(partitions):
        for n in range(per_partition):
            # range keys written out of order, so that the answer's order is the sort's and not the insertion's
            item = {"pk": {"S": f"p{p}"}, "sk": {"S": f"{(n * 7) % per_partition:03d}"}, "v": {"S": "z"}}
            table.put_item(TableName="t", Item=item)


def _query_all(table: Any, pk: str, **extra: Any) -> list[str]:
    found, kwargs = [], {"TableName": "t", "KeyConditionExpression": "pk = :p", **extra}
    kwargs["ExpressionAttributeValues"] = {":p": {"S": pk}, **extra.get("ExpressionAttributeValues", {})}
    while True:
        page = table.query(**kwargs)
        found += [i["sk"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_a_query_of_the_table_key_answers_as_the_whole_table_sorted_would(table: Any) -> None:
    _seed(table, partitions=5, per_partition=12)
    expected = [f"{n:03d}" for n in range(12)]
    assert _query_all(table, "p3") == expected
    assert _query_all(table, "p3", ScanIndexForward=False) == expected[::-1]
    assert _query_all(table, "p3", Limit=5) == expected  # paged: each page starts after the last key
    between = {"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b"}
    values = {":a": {"S": "003"}, ":b": {"S": "006"}}
    assert _query_all(table, "p3", **between, ExpressionAttributeValues=values) == expected[3:7]
    assert _query_all(table, "nowhere") == []
    # asking for a partition that does not exist does not create it: a Scan still sees the 60 items alone
    assert table.scan(TableName="t")["Count"] == 60


def test_a_query_reads_its_partition_and_a_scan_or_an_index_query_still_reads_every_item(table: Any) -> None:
    from moto.dynamodb.models.table import Table

    _seed(table, partitions=20, per_partition=5)
    table.update_table(
        TableName="t",
        AttributeDefinitions=[{"AttributeName": "v", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "byv",
                    "KeySchema": [{"AttributeName": "v", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            }
        ],
    )
    seen: list[int] = []
    original = Table.all_items

    def counted(self: Any) -> Any:
        items = original(self)
        seen.append(len(items))
        return items

    Table.all_items = counted  # type: ignore[method-assign]
    try:
        _query_all(table, "p7")
        assert seen == [5]  # the partition, not the table's 100 items
        seen.clear()
        assert table.scan(TableName="t")["Count"] == 100
        index = table.query(
            TableName="t",
            IndexName="byv",
            KeyConditionExpression="v = :v",
            ExpressionAttributeValues={":v": {"S": "z"}},
        )
        assert index["Count"] == 100 and all(n == 100 for n in seen)
    finally:
        Table.all_items = original  # type: ignore[method-assign]


@pytest.fixture
def bucket() -> Any:
    moto_patches.apply()
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="versions-bucket")
        s3.put_bucket_versioning(Bucket="versions-bucket", VersioningConfiguration={"Status": "Enabled"})
        for owner in ("a", "b", "c"):
            for n in range(4):
                for _ in range(2):  # two versions of each
                    s3.put_object(Bucket="versions-bucket", Key=f"{owner}/x/{n}", Body=b"v" * 10)
                s3.put_object(Bucket="versions-bucket", Key=f"{owner}/y/{n}", Body=b"w")
            s3.delete_object(Bucket="versions-bucket", Key=f"{owner}/y/0")  # a delete marker
        yield s3


def _versions(s3: Any, **args: Any) -> list[tuple[str, str, bool]]:
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket="versions-bucket", **args):
        found += [(v["Key"], v["VersionId"], v["IsLatest"]) for v in page.get("Versions", [])]
        found += [(m["Key"], m["VersionId"], m["IsLatest"]) for m in page.get("DeleteMarkers", [])]
        found += [(p["Prefix"], "", False) for p in page.get("CommonPrefixes", [])]
    return sorted(found)


def test_a_listing_of_versions_under_a_prefix_answers_as_the_whole_bucket_filtered_would(bucket: Any) -> None:
    everything = _versions(bucket)
    assert len(everything) == 3 * (4 * 2 + 4 + 1)
    for prefix in ("b/", "b/x/", "b/y/0", "nowhere/"):
        expected = [v for v in everything if v[0].startswith(prefix)]
        assert _versions(bucket, Prefix=prefix) == expected
        assert _versions(bucket, Prefix=prefix, PaginationConfig={"PageSize": 3}) == expected
    assert _versions(bucket, Prefix="b/", Delimiter="/") == [("b/x/", "", False), ("b/y/", "", False)]


def test_a_listing_of_versions_copies_only_what_is_under_its_prefix(bucket: Any) -> None:
    from moto.s3.models import FakeKey

    copied = 0
    original = FakeKey.__setstate__

    def counted(self: Any, state: Any) -> None:
        nonlocal copied
        copied += 1
        original(self, state)

    FakeKey.__setstate__ = counted  # type: ignore[method-assign]
    try:
        bucket.list_object_versions(Bucket="versions-bucket", Prefix="c/x/")
        assert copied == 8  # c/x/'s 4 objects, 2 versions each: not the bucket's 36
        copied = 0
        bucket.list_object_versions(Bucket="versions-bucket")
        assert copied == 3 * (4 * 2 + 4)  # no prefix: every object version (a delete marker is no FakeKey)
    finally:
        FakeKey.__setstate__ = original  # type: ignore[method-assign]
