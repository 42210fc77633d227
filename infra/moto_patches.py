"""One change to moto, for the local stack and the tests: a cheap snapshot of a table for transactions.

moto's transact_write_items deep-copies every table a transaction touches, so that it can put it back
if the transaction fails. Every interaction is written in a transaction (its subject's status is part
of the write's condition), so with moto each write cost a copy of the whole SubjectsTable, values
included: O(stored data) time and memory per write, where DynamoDB pays nothing of the kind. The
snapshot here copies the table object and its item maps, not the items: puts and deletes replace map
entries, so the snapshot still restores them. (An Update that applied before a later operation of the
same transaction failed would stay applied; none of our transactions puts an Update before an
operation that can fail.)"""

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


def apply() -> None:
    """Idempotent; call before moto serves (the local stack) or mocks (the tests)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.dynamodb.models.table import Table

    Table.__deepcopy__ = _snapshot  # type: ignore[attr-defined]
    _APPLIED = True
