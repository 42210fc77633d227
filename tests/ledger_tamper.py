"""What an operator with write access to LedgerTable could do: edit one entry in the index, its stored leaf hash
too (so that the leaf alone does not give it away). `chatsphere ledger verify` must name it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chatsphere.dal import keyspace
from chatsphere.logic import evidence, merkle


def edit_entry(ddb: Any, table: str, tenant_id: str, seq: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite entry `seq` of the tenant's tree in LedgerTable (dal/ledger.py's layout) after `change(document)`."""
    key = {"pk": {"S": keyspace.ledger_pk(tenant_id)}, "sk": {"S": keyspace.numbered_sk(keyspace.ENTRY_PREFIX, seq)}}
    document = json.loads(ddb.get_item(TableName=table, Key=key)["Item"]["document"]["S"])
    change(document)
    edited = evidence.canonical(document)
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #d = :d, leaf_hash = :h",
        ExpressionAttributeNames={"#d": "document"},
        ExpressionAttributeValues={":d": {"S": edited.decode()}, ":h": {"S": merkle.leaf_hash(edited).hex()}},
    )
