"""One change to moto, for the local stack and the tests: a cheap snapshot of a table for transactions.

moto's transact_write_items deep-copies every table a transaction touches, so that it can put it back
if the transaction fails. Every interaction is written in a transaction (its subject's status is part
of the write's condition), so with moto each write cost a copy of the whole SubjectsTable, values
included: O(stored data) time and memory per write, where DynamoDB pays nothing of the kind. The
snapshot here copies the table object and its item maps, not the items: puts and deletes replace map
entries, so the snapshot still restores them. An Update changes its item in place, and moto goes on applying
a transaction's operations after one fails its condition: so the items a transaction updates are copied
(those alone) before it runs, and put back if it fails, as DynamoDB would leave them."""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

_APPLIED = False


def _snapshot(table: Any, memo: dict[int, Any]) -> Any:
    clone = copy.copy(table)
    items: defaultdict[Any, Any] = defaultdict(dict)
    for hash_key, value in table.items.items():
        items[hash_key] = dict(value) if isinstance(value, dict) else value
    clone.items = items
    return clone


def _updated_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """(item, a copy of its attributes) of each existing item that an Update of the transaction targets."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved = []
    for op in transact_items:
        update = op.get("Update")
        if update is None:
            continue
        table = backend.get_table(update["TableName"])
        key = update["Key"]
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        item = table.get_item(hash_value, range_value)
        if item is not None:
            saved.append((item, copy.deepcopy(item.attrs)))
    return saved


def _atomic_updates(original: Any) -> Any:
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _updated_items(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            for item, attrs in saved:  # the restored snapshot holds these same item objects
                item.attrs = attrs
            raise

    return transact_write_items


def apply() -> None:
    """Idempotent; call before moto serves (the local stack) or mocks (the tests)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    Table.__deepcopy__ = _snapshot  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = _atomic_updates(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    _APPLIED = True
