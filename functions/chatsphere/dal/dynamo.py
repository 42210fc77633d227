"""Low-level DynamoDB helpers: typed (de)serialisation and error classification."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chatsphere.dal.clients import client
from chatsphere.errors import Conflict

_SER = TypeSerializer()
_DE = TypeDeserializer()


class DynamoTable:
    """Base of the table stores: the table's name and the shared lazy client."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return client("dynamodb")


def serialise(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in item.items() if v is not None}


def deserialise(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: _DE.deserialize(v) for k, v in item.items()}
    return {k: (bytes(v.value) if isinstance(v, Binary) else _plain(v)) for k, v in out.items()}


def _plain(value: Any) -> Any:
    """Numbers come back as Decimal; our numbers are all integers."""
    if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):
        return {k: (bytes(v.value) if isinstance(v, Binary) else _plain(v)) for k, v in value.items()}
    return value


def is_condition_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


@contextmanager
def conflict_on_condition(detail: str) -> Iterator[None]:
    """A write whose condition (or a transaction member's) fails raises the domain's Conflict(detail)."""
    try:
        yield
    except ClientError as error:
        if is_condition_failure(error):
            raise Conflict(detail) from None
        raise


def is_transaction_conflict(error: ClientError) -> bool:
    """Another transaction was working on one of the items: worth retrying, unlike a failed condition."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    return any(r.get("Code") == "TransactionConflict" for r in reasons)
