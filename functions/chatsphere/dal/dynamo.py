"""Low-level DynamoDB helpers: typed (de)serialisation and error classification."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chatsphere.dal.clients import client
from chatsphere.errors import Conflict

_SER = TypeSerializer()
_DE = TypeDeserializer()


BATCH_WRITE_KEYS = 25  # BatchWriteItem's limit per call
BATCH_ATTEMPTS = 8
TRANSACTION_ATTEMPTS = 4


class DynamoTable:
    """Base of the table stores: the table's name and the shared lazy client."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return client("dynamodb")

    def _partition_keys(self, key_name: str, value: str, limit: int, sort_key: str = "sk") -> list[dict[str, str]]:
        """Up to `limit` keys of one partition, oldest sort key first (strongly consistent)."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#k = :v",
            "ExpressionAttributeNames": {"#k": key_name, "#s": sort_key},
            "ExpressionAttributeValues": serialise({":v": value}),
            "ProjectionExpression": "#k, #s",
            "ConsistentRead": True,
        }
        keys: list[dict[str, str]] = []
        while len(keys) < limit:
            resp = self._ddb.query(**query, Limit=limit - len(keys))
            keys.extend(deserialise(item) for item in resp["Items"])
            if "LastEvaluatedKey" not in resp:
                break
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return keys

    def _transact(
        self,
        ops: list[dict[str, Any]],
        refused: str = "the subject changed or does not allow this write; read it again",
    ) -> None:
        """TransactWriteItems; a conflict with another transaction in flight is retried (botocore does not),
        a failed condition is the domain's Conflict."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                with conflict_on_condition(refused):
                    self._ddb.transact_write_items(TransactItems=ops)
                return
            except ClientError as error:
                if not is_transaction_conflict(error) or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security

    def _delete_keys(self, keys: list[dict[str, str]]) -> None:
        self._write_batch([{"DeleteRequest": {"Key": serialise(k)}} for k in keys])

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 requests a call; what DynamoDB leaves unprocessed is retried with backoff."""
        for start in range(0, len(requests), BATCH_WRITE_KEYS):
            pending = requests[start : start + BATCH_WRITE_KEYS]
            for attempt in range(BATCH_ATTEMPTS):
                resp = self._ddb.batch_write_item(RequestItems={self.table_name: pending})
                pending = resp.get("UnprocessedItems", {}).get(self.table_name, [])
                if not pending:
                    break
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security
            else:
                raise RuntimeError("DynamoDB left writes unprocessed; the job will retry")


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


# The TTL backstop (expires_at): past the longest period any tenant may set, so that it never removes what a
# tenant still keeps; retention removes items on time, and clears the TTL of what a legal hold keeps.
TTL_BACKSTOP_MARGIN_DAYS = 30


def backstop_expiry(at: str) -> int:
    """Epoch seconds of the TTL backstop for an item whose retention is measured from `at`."""
    # Imported here, not with the module: the authorizer's key reader (dal/api_keys.py) builds on this module and
    # must load no models, which means no pydantic (tests/unit/test_authorizer_imports.py).
    from chatsphere.models.settings import MAX_RETENTION_DAYS

    days = MAX_RETENTION_DAYS + TTL_BACKSTOP_MARGIN_DAYS
    return int((datetime.fromisoformat(at) + timedelta(days=days)).timestamp())
