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
