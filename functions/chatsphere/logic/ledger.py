"""The evidence ledger: one append-only RFC 9162 Merkle tree per tenant, over every lifecycle event.

An action writes its entry to the outbox in its own transaction, so there is no action without its entry and no
entry without its action. The sequencer (`sequence`, run by the Ledger function on the outbox's stream) appends a
tenant's outbox entries in order: it gives each the next sequence number, and writes the leaves, the perfect
subtrees they complete, the head and the removal of the outbox items in one transaction conditioned on the tree's
size (one writer at a time), then archives the entries in the locked bucket. An entry id is appended once
(idempotent), and each append costs the same few calls whatever the tree's size: the head keeps the tree's
frontier (one hash per bit of the size), and a proof reads at most two hashes a level in one batch.

A signed tree head (the tenant, the size, the root, the time, signed by the ledger's KMS key) follows every
completed erasure, and the daily run signs every tree that grew since its last head; each is archived and
published as `LedgerCheckpointSigned`, so a tenant that keeps them can prove the log never forked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chatsphere.errors import Conflict, NotFound
from chatsphere.logic import evidence, merkle
from chatsphere.logic.ports import EventPublisher, LedgerArchive, LedgerIndex, LedgerOutbox, Signer, TenantStore
from chatsphere.models.ledger import (
    LEDGER_FORMAT,
    AuditEntry,
    AuditPage,
    LedgerEntry,
    LedgerHead,
    SignedTreeHead,
    StoredEntry,
    TreeHead,
)
from chatsphere.models.requests import issued_shape

# Entries per append transaction: each takes its leaf, its id's mark and its outbox item's removal, and the leaves
# complete at most two subtrees each plus one per level above: 1 + 10 * 3 + (20 + 40) items, under DynamoDB's 100.
BATCH = 10
# An entry of these gets its own signed tree head at once: the receipts of an erasure and of an offboarding.
SEALING_TYPES = frozenset({"deletion.receipt", "offboarding.receipt"})
CHECKPOINT_EVENT = "LedgerCheckpointSigned"
CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class LedgerPorts:
    outbox: LedgerOutbox
    index: LedgerIndex
    archive: LedgerArchive
    signer: Signer
    events: EventPublisher
    tenants: TenantStore  # every tenant, for the daily run (one whose outbox waits has no tree yet)


class ReceiptNotSealed(Conflict):
    """The receipt's entry is in the ledger, but no signed tree head covers it yet (seconds, after an erasure)."""

    slug = "receipt-not-sealed"

    def __init__(self) -> None:
        super().__init__("the erasure's receipt is not yet covered by a signed tree head; retry shortly")


# ------------------------------------------------------------------ appending
def sequence(ports: LedgerPorts, tenant_id: str, now: str) -> int:
    """Append every entry waiting in the tenant's outbox, in order; returns how many were appended. Signs a head
    at once when a sealing entry (an erasure's receipt) went in."""
    head = _archive(ports, ports.index.head(tenant_id), [])
    appended, seal = 0, False
    while pending := ports.outbox.pending(tenant_id, BATCH):
        head, added = _append(ports, head, pending)
        appended += len(added)
        seal = seal or any(entry.type in SEALING_TYPES for entry, _ in added)
        head = _archive(ports, head, [stored for _, stored in added])
        if len(pending) < BATCH:  # the outbox had no more: no need to ask it again
            break
    if seal:
        sign(ports, tenant_id, now, head=head)
    return appended


def _append(
    ports: LedgerPorts, head: LedgerHead, pending: list[LedgerEntry]
) -> tuple[LedgerHead, list[tuple[LedgerEntry, StoredEntry]]]:
    """Append one batch (entries appended before are only taken out of the outbox); retries when another writer
    moved the tree on, from the head it then reads."""
    for _ in range(CONFLICT_RETRIES):
        seen = ports.index.appended(head.tenant_id, [entry.entry_id for entry in pending])
        fresh: list[LedgerEntry] = []
        for entry in pending:
            if entry.entry_id not in seen:
                seen.add(entry.entry_id)
                fresh.append(entry)
        leaves = [(entry, stored_entry(entry, head.size + i)) for i, entry in enumerate(fresh)]
        frontier, nodes = merkle.append(
            head.size, [bytes.fromhex(h) for h in head.frontier], [bytes.fromhex(s.leaf_hash) for _, s in leaves]
        )
        after = head.model_copy(update={"size": head.size + len(fresh), "frontier": [h.hex() for h in frontier]})
        try:
            ports.index.append(head, after, leaves, {node: h.hex() for node, h in nodes.items()}, pending)
        except Conflict:
            head = ports.index.head(head.tenant_id)
            continue
        return after, leaves
    raise RuntimeError("the ledger's head kept moving; the stream will redeliver")


def stored_entry(entry: LedgerEntry, seq: int) -> StoredEntry:
    document = evidence.canonical(entry.document(seq))
    return StoredEntry(seq=seq, document=document.decode(), leaf_hash=merkle.leaf_hash(document).hex())


def _archive(ports: LedgerPorts, head: LedgerHead, appended: list[StoredEntry]) -> LedgerHead:
    """Copy to the locked bucket every leaf the index holds and the bucket not yet: the leaves just `appended`
    when they are exactly those, else (after a crash between the two) read back from the index."""
    if head.archived >= head.size:
        return head
    missing = appended if appended and appended[0].seq == head.archived else None
    for stored in missing if missing is not None else ports.index.leaves(head.tenant_id, head.archived, head.size):
        ports.archive.put_entry(head.tenant_id, stored.seq, stored.document)
    ports.index.mark(head.tenant_id, head.size, archived=head.size)
    return head.model_copy(update={"archived": head.size})


# ------------------------------------------------------------------ signing
def sign(
    ports: LedgerPorts, tenant_id: str, now: str, *, only_if_grown: bool = False, head: LedgerHead | None = None
) -> SignedTreeHead | None:
    """Sign the tenant's tree as it stands (`head`, when the caller has just written it), archive the head and
    publish it; None if there is nothing to sign (an empty tree, or with `only_if_grown` one whose newest signed
    head has its size)."""
    head = head or ports.index.head(tenant_id)
    if head.size == 0 or (only_if_grown and head.signed >= head.size):
        return None
    root = merkle.frontier_root(head.size, [bytes.fromhex(h) for h in head.frontier])
    tree_head = TreeHead(tenant_id=tenant_id, tree_size=head.size, root_hash=root.hex(), timestamp=now)
    signature, key_id = ports.signer.sign(evidence.tree_head_message(tree_head.model_dump()))
    signed = SignedTreeHead(tree_head=tree_head, signature=signature, key_id=key_id)
    if not ports.index.put_signed(signed):  # signed at this size before: that signature stands
        stored = ports.index.signed_heads(tenant_id, head.size, limit=1)
        return stored[0] if stored else None
    ports.archive.put_head(tenant_id, head.size, signed)
    ports.events.publish(
        CHECKPOINT_EVENT,
        {
            "tenant_id": tenant_id,
            "tree_size": str(head.size),
            "root_hash": tree_head.root_hash,
            "timestamp": now,
            "signature": signature,
            "key_id": key_id,
        },
    )
    ports.index.mark(tenant_id, head.size, signed=head.size)
    return signed


def daily(ports: LedgerPorts, now: str) -> dict[str, int]:
    """The daily run: sequence what waits, then sign each tree that grew since its newest signed head."""
    signed: dict[str, int] = {}
    for tenant_id in ports.tenants.tenant_ids():
        sequence(ports, tenant_id, now)
        head = sign(ports, tenant_id, now, only_if_grown=True)
        if head is not None:
            signed[tenant_id] = head.tree_head.tree_size
    return signed


# ------------------------------------------------------------------ proofs
def receipt(ports: LedgerPorts, tenant_id: str, request_id: str) -> dict[str, Any]:
    """The receipt of an erasure or an offboarding, self-contained: its entry, the inclusion proof, and the first
    signed head over it."""
    found = ports.index.of_request(tenant_id, request_id) if issued_shape(request_id) else []
    stored = [s for s in found if _type(s) in SEALING_TYPES]
    if not stored:
        raise NotFound("no receipt for this request (not a deletion or an offboarding, or not completed yet)")
    entry = stored[-1]
    heads = ports.index.signed_heads(tenant_id, entry.seq + 1, limit=1)
    if not heads:
        raise ReceiptNotSealed
    return document(ports, tenant_id, entry, heads[0])


def document(ports: LedgerPorts, tenant_id: str, entry: StoredEntry, signed: SignedTreeHead) -> dict[str, Any]:
    size = signed.tree_head.tree_size
    nodes = ports.index.nodes(tenant_id, merkle.needed_for_inclusion(entry.seq, size))
    return {
        "format": LEDGER_FORMAT,
        "entry": json.loads(entry.document),
        "leaf_index": entry.seq,
        "inclusion_proof": [h.hex() for h in merkle.inclusion_proof(entry.seq, size, nodes)],
        "tree_head": signed.tree_head.model_dump(),
        "signature": signed.signature,
        "key_id": signed.key_id,
        "signing_algorithm": signed.signing_algorithm,
    }


def consistency(ports: LedgerPorts, tenant_id: str, old: int, new: int) -> dict[str, Any]:
    """RFC 9162 consistency proof between two sizes of the tenant's tree, with both roots."""
    head = ports.index.head(tenant_id)
    if not 0 < old <= new <= head.size:
        raise NotFound(f"the sizes must satisfy 0 < from <= to <= {head.size}, the tree's size")
    wanted = merkle.needed_for_consistency(old, new) | set(merkle.frontier_nodes(old)) | set(merkle.frontier_nodes(new))
    nodes = ports.index.nodes(tenant_id, wanted)
    return {
        "from": old,
        "to": new,
        "from_root": merkle.range_hash(0, old, nodes).hex(),
        "to_root": merkle.range_hash(0, new, nodes).hex(),
        "proof": [h.hex() for h in merkle.consistency_proof(old, new, nodes)],
    }


def audit_page(
    ports: LedgerPorts,
    tenant_id: str,
    limit: int,
    after: int | None,
    type_: str | None,
    since: str | None,
    until: str | None,
) -> AuditPage:
    """Entries in sequence order, after `after`, of one type and between two times (`since` included)."""
    page, last = ports.index.page(tenant_id, limit, after, type_, since, until)
    items = [AuditEntry.model_validate(json.loads(s.document)) for s in page]
    return AuditPage(items=items, next_after=last)


def _type(stored: StoredEntry) -> str:
    return str(json.loads(stored.document)["type"])


# ------------------------------------------------------------------ checking and rebuilding
@dataclass(frozen=True)
class LedgerReport:
    entries: int
    heads: int
    faults: list[evidence.LogFault]


def verify(ports: LedgerPorts, tenant_id: str, public_key_pem: bytes) -> LedgerReport:
    """Re-read the tenant's whole log from the index, recompute the tree, check every signed head and that each
    later one extends the earlier (logic/evidence.verify_log), and that the index holds the very bytes the locked
    archive does: an entry edited in the index is named by its sequence number."""
    archived = {
        int(key.rsplit("/", 1)[1].removesuffix(".json")): body
        for key, body in ports.archive.documents(tenant_id, "entries")
    }
    faults: list[evidence.LogFault] = []

    def read() -> Iterator[tuple[dict[str, Any], bytes | None]]:
        for stored in ports.index.leaves(tenant_id):
            if stored.seq in archived and archived[stored.seq] != stored.document.encode():
                faults.append(
                    evidence.LogFault(stored.seq, "archive", f"entry #{stored.seq} differs from its locked copy")
                )
            yield json.loads(stored.document), bytes.fromhex(stored.leaf_hash)

    heads = [signed.model_dump() for signed in ports.index.signed_heads(tenant_id)]
    count, found = evidence.verify_log(read(), heads, public_key_pem)
    return LedgerReport(count, len(heads), sorted([*faults, *found], key=lambda f: (f.seq is None, f.seq or 0)))


def rebuild(ports: LedgerPorts, tenant_id: str) -> LedgerHead:
    """The index of a tenant's tree from the locked archive alone (after the table was lost or restored): every
    leaf, every perfect subtree, the head and the signed heads. Returns the head rebuilt."""
    leaves: list[tuple[LedgerEntry, StoredEntry]] = []
    frontier: list[bytes] = []
    nodes: dict[merkle.Node, str] = {}
    for _, body in ports.archive.documents(tenant_id, "entries"):
        document = json.loads(body)
        seq = document.pop("seq")
        if seq != len(leaves):
            raise RuntimeError(f"the archive has no entry #{len(leaves)}; the index cannot be rebuilt past it")
        stored = StoredEntry(seq=seq, document=body.decode(), leaf_hash=merkle.leaf_hash(body).hex())
        frontier, completed = merkle.append(seq, frontier, [merkle.leaf_hash(body)])
        nodes.update({node: h.hex() for node, h in completed.items()})
        leaves.append((LedgerEntry.model_validate(document), stored))
    signed = [SignedTreeHead.model_validate_json(body) for _, body in ports.archive.documents(tenant_id, "heads")]
    size = len(leaves)
    head = LedgerHead(
        tenant_id=tenant_id,
        size=size,
        frontier=[h.hex() for h in frontier],
        archived=size,
        signed=max((s.tree_head.tree_size for s in signed), default=0),
    )
    ports.index.restore(tenant_id, leaves, nodes, head, signed)
    return head
