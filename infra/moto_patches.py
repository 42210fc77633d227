"""Three changes to moto, for the local stack and the tests: a cheap snapshot of a table for transactions, a
Query of a table's own key that reads its partition alone, and a ListObjectVersions that copies its prefix alone.

moto's transact_write_items deep-copies every table a transaction touches, so that it can put it back
if the transaction fails. Every interaction is written in a transaction (its subject's status is part
of the write's condition), so with moto each write cost a copy of the whole SubjectsTable, values
included: O(stored data) time and memory per write, where DynamoDB pays nothing of the kind. The
snapshot here copies the table object and its item maps, not the items: puts and deletes replace map
entries, so the snapshot still restores them. An Update changes its item in place, and moto goes on applying
a transaction's operations after one fails its condition: so the items a transaction updates are copied
(those alone) before it runs, and put back if it fails, as DynamoDB would leave them.

moto answers a Query of a table's own key by sorting every item of the table and keeping those of the
partition: O(table) per Query, so a job that queries each of N subjects costs O(N²) where DynamoDB pays
O(partition). While such a Query runs, the table's item list is that partition's alone (in key order, as
the full sort would keep them), so the answers are the same. The partition is held per thread: the local
stack's moto serves threads, and a Scan or an index Query on another thread still sees every item.

moto's ListObjectVersions deep-copies every version of every object of the bucket (values included), then keeps
those under the prefix: O(bucket) time and memory per call, where an erasure lists one subject's prefix. While
such a call runs on a thread, the bucket's key store lists the names under its prefix alone (the filter moto
applies afterwards anyway, so pages, markers and answers are the same)."""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from typing import Any

_APPLIED = False
_QUERIED = threading.local()  # (table, hash key) of the base-table Query this thread is answering
_LISTED = threading.local()  # the prefix of the ListObjectVersions this thread is answering


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


def _partition_query(original: Any) -> Any:
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return original(self, hash_key, *args, **kwargs)
        _QUERIED.partition = (self, hash_key)
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            _QUERIED.partition = None

    return query


def _partition_items(original: Any) -> Any:
    def all_items(self: Any) -> Any:
        queried = getattr(_QUERIED, "partition", None)
        if queried is None or queried[0] is not self:
            return original(self)
        if queried[1] not in self.items:  # a defaultdict: a lookup would create the partition
            return []
        partition = self.items[queried[1]]
        if not self.range_key_attr:
            return [partition]
        return sorted(partition.values(), key=lambda item: item.range_key)

    return all_items


def _prefix_listing(original: Any) -> Any:
    def list_object_versions(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        _LISTED.prefix = kwargs.get("prefix") or None
        try:
            return original(self, bucket_name, *args, **kwargs)
        finally:
            _LISTED.prefix = None

    return list_object_versions


def _prefix_lists(original: Any) -> Any:
    def iterlists(self: Any) -> Any:
        prefix = getattr(_LISTED, "prefix", None)
        for name, versions in original(self):
            if prefix is None or name.startswith(prefix):
                yield name, versions

    return iterlists


def apply() -> None:
    """Idempotent; call before moto serves (the local stack) or mocks (the tests)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.s3.models import S3Backend
    from moto.s3.utils import _VersionedKeyStore

    Table.__deepcopy__ = _snapshot  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = _atomic_updates(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    Table.query = _partition_query(Table.query)  # type: ignore[method-assign]
    Table.all_items = _partition_items(Table.all_items)  # type: ignore[method-assign]
    S3Backend.list_object_versions = _prefix_listing(S3Backend.list_object_versions)  # type: ignore[method-assign]
    _VersionedKeyStore.iterlists = _VersionedKeyStore.lists = _prefix_lists(_VersionedKeyStore.iterlists)
    _APPLIED = True
