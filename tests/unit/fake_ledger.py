"""The evidence ledger's ports in memory (logic/ports.py: LedgerOutbox, LedgerIndex, LedgerArchive, Signer), with
the DAL's conditions: an append is all or nothing and only at the size it read, an entry id is appended once, a
signed head is kept once per size, the archive keeps every version it was given. Each counts its calls, so that a
test can show a cost that does not grow with the tree."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chatsphere.errors import Conflict
from chatsphere.models.ledger import LedgerEntry, LedgerHead, SignedTreeHead, StoredEntry

Node = tuple[int, int]


class FakeOutbox:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], LedgerEntry] = {}  # (tenant, time#entry id), as the table's keys
        self.calls: Counter[str] = Counter()

    def record(self, entry: LedgerEntry) -> None:
        self.calls["record"] += 1
        self.items[(entry.tenant_id, f"{entry.at}#{entry.entry_id}")] = entry

    def pending(self, tenant_id: str, limit: int) -> list[LedgerEntry]:
        self.calls["pending"] += 1
        return [e for (t, i), e in sorted(self.items.items()) if t == tenant_id][:limit]

    def entries(self, tenant_id: str | None = None) -> list[LedgerEntry]:
        return [e for (t, _), e in sorted(self.items.items()) if tenant_id in (None, t)]


class FakeLedgerIndex:
    def __init__(self, outbox: FakeOutbox) -> None:
        self.outbox = outbox
        self.heads: dict[str, LedgerHead] = {}
        self.leaf_items: dict[tuple[str, int], tuple[LedgerEntry, StoredEntry]] = {}
        self.marks: dict[tuple[str, str], int] = {}
        self.node_hashes: dict[tuple[str, Node], str] = {}
        self.signed: dict[tuple[str, int], SignedTreeHead] = {}
        self.calls: Counter[str] = Counter()
        self.fail_next_append = 0  # appends to refuse as if another writer had moved the tree

    def head(self, tenant_id: str) -> LedgerHead:
        self.calls["head"] += 1
        return self.heads.get(tenant_id, LedgerHead(tenant_id=tenant_id)).model_copy(deep=True)

    def appended(self, tenant_id: str, entry_ids: list[str]) -> set[str]:
        self.calls["appended"] += 1
        return {i for i in entry_ids if (tenant_id, i) in self.marks}

    def append(
        self,
        before: LedgerHead,
        after: LedgerHead,
        leaves: list[tuple[LedgerEntry, StoredEntry]],
        nodes: dict[Node, str],
        consumed: list[LedgerEntry],
    ) -> None:
        self.calls["append"] += 1
        tenant = before.tenant_id
        stored = self.heads.get(tenant, LedgerHead(tenant_id=tenant))
        if self.fail_next_append:
            self.fail_next_append -= 1
            raise Conflict("another writer appended to this ledger")
        if stored.size != before.size or any((tenant, e.entry_id) in self.marks for e, _ in leaves):
            raise Conflict("another writer appended to this ledger")
        self.heads[tenant] = stored.model_copy(update={"size": after.size, "frontier": list(after.frontier)})
        for entry, leaf in leaves:
            self.leaf_items[(tenant, leaf.seq)] = (entry, leaf)
            self.marks[(tenant, entry.entry_id)] = leaf.seq
        for node, digest in nodes.items():
            self.node_hashes[(tenant, node)] = digest
        for entry in consumed:
            self.outbox.items.pop((entry.tenant_id, f"{entry.at}#{entry.entry_id}"), None)

    def mark(self, tenant_id: str, size: int, **fields: int) -> None:
        self.calls["mark"] += 1
        head = self.heads[tenant_id]
        if head.size >= size:
            update = {k: v for k, v in fields.items() if getattr(head, k) < v}
            self.heads[tenant_id] = head.model_copy(update=update)

    def nodes(self, tenant_id: str, wanted: set[Node]) -> dict[Node, bytes]:
        self.calls["nodes"] += 1
        return {
            n: bytes.fromhex(self.node_hashes[(tenant_id, n)]) for n in wanted if (tenant_id, n) in self.node_hashes
        }

    def leaves(self, tenant_id: str, start: int = 0, end: int | None = None) -> Iterator[StoredEntry]:
        self.calls["leaves"] += 1
        for (t, seq), (_, leaf) in sorted(self.leaf_items.items()):
            if t == tenant_id and seq >= start and (end is None or seq < end):
                yield leaf

    def page(
        self, tenant_id: str, limit: int, after: int | None, type_: str | None, since: str | None, until: str | None
    ) -> tuple[list[StoredEntry], int | None]:
        self.calls["page"] += 1
        rows = [
            leaf
            for (t, seq), (entry, leaf) in sorted(self.leaf_items.items())
            if t == tenant_id
            and (after is None or seq > after)
            and (type_ is None or entry.type == type_)
            and (since is None or entry.at >= since)
            and (until is None or entry.at < until)
        ]
        return rows[:limit], rows[limit - 1].seq if len(rows) > limit else None

    def of_request(self, tenant_id: str, request_id: str) -> list[StoredEntry]:
        self.calls["of_request"] += 1
        return [
            leaf
            for (t, _), (entry, leaf) in sorted(self.leaf_items.items())
            if t == tenant_id and entry.data.get("request_id") == request_id
        ]

    def of_type(self, tenant_id: str, type_: str) -> Iterator[StoredEntry]:
        self.calls["of_type"] += 1
        for (t, _), (entry, leaf) in sorted(self.leaf_items.items()):
            if t == tenant_id and entry.type == type_:
                yield leaf

    def put_signed(self, signed: SignedTreeHead) -> bool:
        self.calls["put_signed"] += 1
        key = (signed.tree_head.tenant_id, signed.tree_head.tree_size)
        if key in self.signed:
            return False
        self.signed[key] = signed
        return True

    def signed_heads(self, tenant_id: str, at_least: int = 0, limit: int | None = None) -> list[SignedTreeHead]:
        self.calls["signed_heads"] += 1
        heads = [h for (t, size), h in sorted(self.signed.items()) if t == tenant_id and size >= at_least]
        return heads[:limit] if limit is not None else heads

    def restore(
        self,
        tenant_id: str,
        leaves: list[tuple[LedgerEntry, StoredEntry]],
        nodes: dict[Node, str],
        head: LedgerHead,
        signed: list[SignedTreeHead],
    ) -> None:
        for entry, leaf in leaves:
            self.leaf_items[(tenant_id, leaf.seq)] = (entry, leaf)
            self.marks[(tenant_id, entry.entry_id)] = leaf.seq
        for node, digest in nodes.items():
            self.node_hashes[(tenant_id, node)] = digest
        for each in signed:
            self.signed[(tenant_id, each.tree_head.tree_size)] = each
        self.heads[tenant_id] = head


class FakeLedgerArchive:
    def __init__(self) -> None:
        self.objects: dict[str, list[bytes]] = {}  # key -> every version written, oldest first
        self.calls: Counter[str] = Counter()
        self.fail_next_put = 0

    def put_entry(self, tenant_id: str, seq: int, document: str) -> None:
        self._put(f"tenants/{tenant_id}/ledger/entries/{seq:012d}.json", document.encode())

    def put_head(self, tenant_id: str, size: int, signed: SignedTreeHead) -> None:
        self._put(f"tenants/{tenant_id}/ledger/heads/{size:012d}.json", signed.model_dump_json().encode())

    def _put(self, key: str, body: bytes) -> None:
        self.calls["put"] += 1
        if self.fail_next_put:
            self.fail_next_put -= 1
            raise RuntimeError("S3 is unavailable")
        self.objects.setdefault(key, []).append(body)

    def documents(self, tenant_id: str, kind: str) -> Iterator[tuple[str, bytes]]:
        prefix = f"tenants/{tenant_id}/ledger/{kind}/"
        for key in sorted(k for k in self.objects if k.startswith(prefix)):
            yield key, self.objects[key][0]


class FakeSigner:
    """A real P-256 key: what it signs verifies as KMS's ECDSA_SHA_256 signatures do (DER, base64 here)."""

    def __init__(self, key_id: str = "fake-ledger-key") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = key_id
        self.calls: Counter[str] = Counter()

    def sign(self, message: bytes) -> tuple[str, str]:
        self.calls["sign"] += 1
        return base64.b64encode(self.key.sign(message, ec.ECDSA(hashes.SHA256()))).decode(), self.key_id

    def public_key_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
