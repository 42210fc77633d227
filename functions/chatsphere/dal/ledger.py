"""The evidence ledger's storage: the outbox, the index, the locked archive and the signing key.

- OutboxTable (pk = T#<tenant>, sk = O#<time>#<entry id>): an action's entry, written in the action's own transaction
  (`outbox_op`). Its stream wakes the Ledger function; the sequencer deletes the item as it appends the entry.
- LedgerTable, one tree per tenant, every key beginning with the tenant:
  pk = T#<tenant>#L: HEAD (the single writer's size condition), E#<seq> (a leaf: the canonical document and its
  hash), I#<entry id> (appended once: the sequencer's idempotency), H#<size> (a signed tree head);
  pk = T#<tenant>#N: <level>#<index> (the hash of each perfect subtree, so that a proof is one BatchGetItem).
  Leaves carry `req_pk` (RequestIndex: a request's entries) and `type_pk` (TypeIndex: entries of one type).
- LedgerBucket (S3 Object Lock, compliance mode): tenants/<tenant>/ledger/entries/<seq>.json and
  .../heads/<size>.json, the same bytes as the index; the index is rebuildable from it (`archived_documents`).
- The signing key: KMS ECC_NIST_P256, ECDSA_SHA_256 over the canonical tree head."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from chatsphere.dal import keyspace
from chatsphere.dal.clients import client
from chatsphere.dal.dynamo import DynamoTable, conflict_on_condition, deserialise, serialise
from chatsphere.models.ledger import SIGNING_ALGORITHM, LedgerEntry, LedgerHead, SignedTreeHead, StoredEntry

REQUEST_INDEX = "RequestIndex"
TYPE_INDEX = "TypeIndex"
BATCH_GET_KEYS = 100  # BatchGetItem's limit per call
Node = tuple[int, int]
E, H = keyspace.ENTRY_PREFIX, keyspace.SIGNED_PREFIX


def outbox_op(table_name: str, entry: LedgerEntry) -> dict[str, Any]:
    """The transaction Put of an action's entry. Unconditional: the action's own condition decides, and an entry
    id the tree holds already is appended once however often it is written here."""
    item = {"pk": keyspace.tenant_pk(entry.tenant_id), "sk": _outbox_sk(entry), **entry.model_dump()}
    return {"Put": {"TableName": table_name, "Item": serialise(item)}}


def _outbox_sk(entry: LedgerEntry) -> str:
    return keyspace.outbox_sk(entry.at, entry.entry_id)


def _node_sk(node: Node) -> str:
    return keyspace.node_sk(*node)


class DynamoOutbox(DynamoTable):
    """OutboxTable: entries not yet in their tenant's tree."""

    def record(self, entry: LedgerEntry) -> None:
        """An entry with no other write to go with (a reconcile run's summary, written after its removals)."""
        self._ddb.put_item(**outbox_op(self.table_name, entry)["Put"])

    def pending(self, tenant_id: str, limit: int) -> list[LedgerEntry]:
        """The tenant's oldest entries first (entry ids are in time order), strongly consistent."""
        resp = self._ddb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :o)",
            ExpressionAttributeValues=serialise({":pk": keyspace.tenant_pk(tenant_id), ":o": keyspace.OUTBOX_PREFIX}),
            ConsistentRead=True,
            Limit=limit,
        )
        return [LedgerEntry.model_validate(_without_keys(deserialise(raw))) for raw in resp["Items"]]


class DynamoLedgerIndex(DynamoTable):
    """LedgerTable: the sequencer's state and every tenant's tree, to page and prove from; an append also takes
    its entries out of OutboxTable."""

    def __init__(self, table_name: str, outbox_table: str) -> None:
        super().__init__(table_name)
        self.outbox_table = outbox_table

    def head(self, tenant_id: str) -> LedgerHead:
        resp = self._ddb.get_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.ledger_pk(tenant_id), "sk": keyspace.LEDGER_HEAD_SK}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return LedgerHead(tenant_id=tenant_id)
        return LedgerHead.model_validate(_without_keys(deserialise(resp["Item"])))

    def appended(self, tenant_id: str, entry_ids: list[str]) -> set[str]:
        """Which of these entry ids the tree holds already."""
        keys = [
            {"pk": keyspace.ledger_pk(tenant_id), "sk": keyspace.MARK_PREFIX + entry_id}
            for entry_id in sorted(set(entry_ids))
        ]
        return {item["sk"].removeprefix(keyspace.MARK_PREFIX) for item in self._batch_get(keys)}

    def append(
        self,
        before: LedgerHead,
        after: LedgerHead,
        leaves: list[tuple[LedgerEntry, StoredEntry]],
        nodes: Mapping[Node, str],
        consumed: list[LedgerEntry],
    ) -> None:
        """One transaction: the leaves, their idempotency marks, the completed subtrees, the outbox items they
        consume, and the head, if its size is still `before.size` (else Conflict: another writer appended)."""
        tenant = before.tenant_id
        ops: list[dict[str, Any]] = [self._head_op(before, after)]
        for entry, stored in leaves:
            for item in _leaf_items(entry, stored):
                ops.append(
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialise(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
        for node, digest in nodes.items():
            item = {"pk": keyspace.ledger_nodes_pk(tenant), "sk": _node_sk(node), "hash": digest}
            ops.append({"Put": {"TableName": self.table_name, "Item": serialise(item)}})
        for entry in consumed:
            key = {"pk": keyspace.tenant_pk(entry.tenant_id), "sk": _outbox_sk(entry)}
            ops.append({"Delete": {"TableName": self.outbox_table, "Key": serialise(key)}})
        with conflict_on_condition("another writer appended to this ledger"):
            self._ddb.transact_write_items(TransactItems=ops)

    def _head_op(self, before: LedgerHead, after: LedgerHead) -> dict[str, Any]:
        """The size and frontier only (`archived` and `signed` are marked apart), if the size is still `before`'s."""
        values: dict[str, Any] = {":t": after.tenant_id, ":n": after.size, ":f": after.frontier}
        if before.size:
            values[":was"] = before.size
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": serialise({"pk": keyspace.ledger_pk(before.tenant_id), "sk": keyspace.LEDGER_HEAD_SK}),
                "UpdateExpression": "SET tenant_id = :t, #n = :n, frontier = :f",
                "ConditionExpression": "#n = :was" if before.size else "attribute_not_exists(#n)",
                "ExpressionAttributeNames": {"#n": "size"},
                "ExpressionAttributeValues": serialise(values),
            }
        }

    def mark(self, tenant_id: str, size: int, **fields: int) -> None:
        """Set `archived` or `signed` on the head, never lowering it, while the head is at `size` or beyond."""
        sets = ", ".join(f"#{k} = :{k}" for k in fields)
        conds = " AND ".join(f"(attribute_not_exists(#{k}) OR #{k} < :{k})" for k in fields)
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=serialise({"pk": keyspace.ledger_pk(tenant_id), "sk": keyspace.LEDGER_HEAD_SK}),
                UpdateExpression=f"SET {sets}",
                ConditionExpression=f"#size >= :size AND {conds}",
                ExpressionAttributeNames={"#size": "size", **{f"#{k}": k for k in fields}},
                ExpressionAttributeValues=serialise({":size": size, **{f":{k}": v for k, v in fields.items()}}),
            )
        except ClientError as error:  # already as far or further: nothing to do
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    # ------------------------------------------------------------ reading the tree
    def nodes(self, tenant_id: str, wanted: set[Node]) -> dict[Node, bytes]:
        keys = [{"pk": keyspace.ledger_nodes_pk(tenant_id), "sk": _node_sk(node)} for node in sorted(wanted)]
        found: dict[Node, bytes] = {}
        for item in self._batch_get(keys):
            level, index = item["sk"].split("#")
            found[(int(level), int(index))] = bytes.fromhex(item["hash"])
        return found

    def leaves(self, tenant_id: str, start: int = 0, end: int | None = None) -> Iterator[StoredEntry]:
        """Leaves `start` (included) to `end` (excluded), in order; the whole tree when `end` is None."""
        condition = "pk = :pk AND sk BETWEEN :a AND :b"
        values = {
            ":pk": keyspace.ledger_pk(tenant_id),
            ":a": keyspace.numbered_sk(E, start),
            ":b": E + keyspace.AFTER_ALL if end is None else keyspace.numbered_sk(E, end - 1),
        }
        for item in self._query({"KeyConditionExpression": condition, "ExpressionAttributeValues": serialise(values)}):
            yield StoredEntry.model_validate({k: item[k] for k in StoredEntry.model_fields})

    def page(
        self, tenant_id: str, limit: int, after: int | None, type_: str | None, since: str | None, until: str | None
    ) -> tuple[list[StoredEntry], int | None]:
        """Entries in sequence order, after the sequence number `after`, of one type (TypeIndex) and between two
        times (a filter: entries are in sequence order, which follows time but does not sort by it)."""
        if type_:
            query: dict[str, Any] = {"IndexName": TYPE_INDEX, "KeyConditionExpression": "type_pk = :pk AND sk > :a"}
            first = E if after is None else keyspace.numbered_sk(E, after)
            values: dict[str, Any] = {":pk": keyspace.entry_type_pk(tenant_id, type_), ":a": first}
        else:
            query = {"KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :z"}
            first = keyspace.numbered_sk(E, 0 if after is None else after + 1)
            values = {":pk": keyspace.ledger_pk(tenant_id), ":a": first, ":z": E + keyspace.AFTER_ALL}
        filters = []
        if since:
            filters.append("#at >= :since")
            values[":since"] = since
        if until:
            filters.append("#at < :until")
            values[":until"] = until
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
            query["ExpressionAttributeNames"] = {"#at": "at"}
        query["ExpressionAttributeValues"] = serialise(values)
        page: list[StoredEntry] = []
        for item in self._query(query):
            if len(page) == limit:
                return page, page[-1].seq
            page.append(StoredEntry.model_validate({k: item[k] for k in StoredEntry.model_fields}))
        return page, None

    def of_request(self, tenant_id: str, request_id: str) -> list[StoredEntry]:
        query = {
            "IndexName": REQUEST_INDEX,
            "KeyConditionExpression": "req_pk = :pk",
            "ExpressionAttributeValues": serialise({":pk": keyspace.entry_request_pk(tenant_id, request_id)}),
        }
        return [StoredEntry.model_validate({k: i[k] for k in StoredEntry.model_fields}) for i in self._query(query)]

    def of_type(self, tenant_id: str, type_: str) -> Iterator[StoredEntry]:
        query = {
            "IndexName": TYPE_INDEX,
            "KeyConditionExpression": "type_pk = :pk",
            "ExpressionAttributeValues": serialise({":pk": keyspace.entry_type_pk(tenant_id, type_)}),
        }
        for item in self._query(query):
            yield StoredEntry.model_validate({k: item[k] for k in StoredEntry.model_fields})

    # ------------------------------------------------------------ signed tree heads
    def put_signed(self, signed: SignedTreeHead) -> bool:
        """Keep the first signature of a size (ECDSA signs differently each time); False if one was kept before."""
        head = signed.tree_head
        item = {
            "pk": keyspace.ledger_pk(head.tenant_id),
            "sk": keyspace.numbered_sk(H, head.tree_size),
            **signed.model_dump(),
        }
        try:
            self._ddb.put_item(
                TableName=self.table_name, Item=serialise(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def signed_heads(self, tenant_id: str, at_least: int = 0, limit: int | None = None) -> list[SignedTreeHead]:
        """Signed heads of size `at_least` or more, smallest first."""
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :z",
            "ExpressionAttributeValues": serialise(
                {
                    ":pk": keyspace.ledger_pk(tenant_id),
                    ":a": keyspace.numbered_sk(H, at_least),
                    ":z": H + keyspace.AFTER_ALL,
                }
            ),
        }
        heads = []
        for item in self._query(query, limit):
            heads.append(SignedTreeHead.model_validate({k: item[k] for k in SignedTreeHead.model_fields}))
            if limit is not None and len(heads) == limit:
                break
        return heads

    # ------------------------------------------------------------ rebuild
    def restore(
        self,
        tenant_id: str,
        leaves: list[tuple[LedgerEntry, StoredEntry]],
        nodes: Mapping[Node, str],
        head: LedgerHead,
        signed: list[SignedTreeHead],
    ) -> None:
        """Write back what the archive holds (an index rebuilt from the bucket): plain puts, in batches."""
        puts: list[dict[str, Any]] = []
        for entry, stored in leaves:
            puts += _leaf_items(entry, stored)
        puts += [{"pk": keyspace.ledger_nodes_pk(tenant_id), "sk": _node_sk(n), "hash": h} for n, h in nodes.items()]
        puts += [
            {
                "pk": keyspace.ledger_pk(tenant_id),
                "sk": keyspace.numbered_sk(H, s.tree_head.tree_size),
                **s.model_dump(),
            }
            for s in signed
        ]
        puts.append({"pk": keyspace.ledger_pk(tenant_id), "sk": keyspace.LEDGER_HEAD_SK, **head.model_dump()})
        self._write_batch([{"PutRequest": {"Item": serialise(p)}} for p in puts])

    # ------------------------------------------------------------ helpers
    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            request = {
                self.table_name: {
                    "Keys": [serialise(k) for k in keys[start : start + BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                }
            }
            while request:
                resp = self._ddb.batch_get_item(RequestItems=request)
                found.extend(deserialise(raw) for raw in resp["Responses"].get(self.table_name, []))
                request = resp.get("UnprocessedKeys") or {}
        return found

    def _query(self, query: dict[str, Any], limit: int | None = None) -> Iterator[dict[str, Any]]:
        query = {"TableName": self.table_name, **query}
        if limit is not None:
            query["Limit"] = limit
        if "IndexName" not in query:
            query["ConsistentRead"] = True
        while True:
            resp = self._ddb.query(**query)
            for raw in resp["Items"]:
                yield deserialise(raw)
            if "LastEvaluatedKey" not in resp:
                return
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _leaf_items(entry: LedgerEntry, stored: StoredEntry) -> list[dict[str, Any]]:
    """A leaf (in TypeIndex, and in RequestIndex when it names a request) and its entry id's mark."""
    tenant = entry.tenant_id
    leaf = {
        "pk": keyspace.ledger_pk(tenant),
        "sk": keyspace.numbered_sk(E, stored.seq),
        "type_pk": keyspace.entry_type_pk(tenant, entry.type),
        "at": entry.at,
        "entry_id": entry.entry_id,
        **stored.model_dump(),
    }
    request_id = entry.data.get("request_id")
    if isinstance(request_id, str):
        leaf["req_pk"] = keyspace.entry_request_pk(tenant, request_id)
    return [leaf, {"pk": keyspace.ledger_pk(tenant), "sk": keyspace.MARK_PREFIX + entry.entry_id, "seq": stored.seq}]


def _without_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


class S3LedgerArchive:
    """LedgerBucket: every entry and signed head, under the bucket's default Object Lock retention (compliance mode:
    no one, the service's roles and the account's root included, can overwrite a version or delete it before then)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def put_entry(self, tenant_id: str, seq: int, document: str) -> None:
        self._put(f"tenants/{tenant_id}/ledger/entries/{seq:012d}.json", document.encode())

    def put_head(self, tenant_id: str, size: int, signed: SignedTreeHead) -> None:
        self._put(f"tenants/{tenant_id}/ledger/heads/{size:012d}.json", signed.model_dump_json().encode())

    def _put(self, key: str, body: bytes) -> None:
        client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", ChecksumAlgorithm="SHA256"
        )

    def documents(self, tenant_id: str, kind: str) -> Iterator[tuple[str, bytes]]:
        """Each archived object of a kind (`entries`, `heads`) in key order, its first version (a later version of a
        key is a rewrite: the first is what was written, and compliance mode keeps it)."""
        s3 = client("s3")
        prefix = f"tenants/{tenant_id}/ledger/{kind}/"
        oldest: dict[str, str] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for version in page.get("Versions", []):  # newest to oldest within a key
                oldest[version["Key"]] = version["VersionId"]
        for key in sorted(oldest):
            body = s3.get_object(Bucket=self.bucket, Key=key, VersionId=oldest[key])["Body"].read()
            yield key, body


class KmsSigner:
    """The ledger's asymmetric KMS key: only the Ledger function may sign; any reader may have the public key."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id

    def sign(self, message: bytes) -> tuple[str, str]:
        resp = client("kms").sign(
            KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
        )
        return base64.b64encode(resp["Signature"]).decode(), resp["KeyId"]

    def public_key_pem(self) -> bytes:
        der = client("kms").get_public_key(KeyId=self.key_id)["PublicKey"]
        body = base64.encodebytes(der).decode().replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n").encode()
