"""The evidence ledger's values: entries (one per lifecycle event), tree heads, and their stored forms.

An entry is a leaf of the tenant's RFC 9162 Merkle tree once the sequencer gives it a sequence number; what is
hashed is the RFC 8785 canonical JSON of `LedgerEntry.document(seq)` (logic/evidence.py). No entry holds a personal
value: a subject appears only as its keyed hash, a request by its id, a key by its key id, tenant text not at all.

Entry ids are deterministic where the action they record may be retried as a whole (a request's creation and each
status it reaches, a tombstone's two phases), so that the sequencer, which appends an entry id once, never records
one action twice; the other entries take a fresh id."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatsphere.models.common import iso, utc_now
from chatsphere.models.requests import DeletionReceipt, LegalHoldDetails, OffboardingResult, RequestItem
from chatsphere.models.retention import RetentionRunItem

EntryType = Literal[
    "request.created",
    "request.status_changed",
    "request.extended",
    "deletion.receipt",
    "deletion.tombstone",
    "offboarding.receipt",
    "retention.run",
    "settings.changed",
    "api_key.created",
    "api_key.revoked",
    "policy.published",
    "hold.placed",
    "hold.lifted",
    "reconcile.run",
    "reconcile.restore_addendum",
]
LEDGER_FORMAT = "chatsphere-receipt/1"
SIGNING_ALGORITHM = "ECDSA_SHA_256"


class LedgerEntry(BaseModel):
    """An event as the action's own transaction writes it to the outbox (OutboxTable), before it has a place."""

    model_config = ConfigDict(frozen=True)

    entry_id: str
    tenant_id: str
    type: EntryType
    at: str
    data: dict[str, Any]

    def document(self, seq: int) -> dict[str, Any]:
        """The leaf: what is canonicalised, hashed, archived and served."""
        return {"seq": seq, **self.model_dump()}


def fresh_id(at: str) -> str:
    """A new entry id, unique without coordination (the outbox orders entries by their time, then their id)."""
    return f"{at.replace('-', '').replace(':', '').replace('.', '')}-{uuid.uuid4().hex[:16]}"


# ---------------------------------------------------------------- request records
def _request_data(item: RequestItem) -> dict[str, Any]:
    details = item.details.model_dump(exclude_none=True)
    details.pop("reason", None)  # a hold's reason is tenant text, which may name a person
    return {"request_id": item.request_id, "request_type": item.type, "status": item.status, "details": details}


def request_created(item: RequestItem) -> LedgerEntry:
    data = {**_request_data(item), "received_at": item.received_at, "due_at": item.due_at}
    kind: EntryType = "request.created"
    if isinstance(item.details, LegalHoldDetails):
        kind = "hold.placed" if item.details.action == "place" else "hold.lifted"
    return LedgerEntry(
        entry_id=f"{item.request_id}.created", tenant_id=item.tenant_id, type=kind, at=item.received_at, data=data
    )


def _now() -> str:
    return iso(utc_now())


def status_changed(item: RequestItem, at: str | None = None) -> LedgerEntry:
    """A status the record reached. A completed erasure's is its receipt, whole (the lookup digests excepted: they
    are index keys, kept only while the job reads them back)."""
    data = _request_data(item)
    if item.completed_at:
        data["completed_at"] = item.completed_at
    kind: EntryType = "request.status_changed"
    if isinstance(item.result, DeletionReceipt) and not item.is_open:
        kind = "deletion.receipt"
        data.update(_receipt_data(item, item.result))
    elif isinstance(item.result, OffboardingResult) and not item.is_open:
        kind = "offboarding.receipt"
        data.update(_offboarding_data(item.result))
    elif item.result is not None and not item.is_open:
        data["result"] = _result_summary(item)
    return LedgerEntry(
        entry_id=f"{item.request_id}.{item.status}",
        tenant_id=item.tenant_id,
        type=kind,
        at=at or item.completed_at or _now(),
        data=data,
    )


def _receipt_data(item: RequestItem, receipt: DeletionReceipt) -> dict[str, Any]:
    """What an erasure proves: per store what it held and lost and what the read-back found, when each step really
    finished, the policy in force, and what a legal hold kept (its categories and the request that placed it; never
    its reason, which is tenant text)."""
    data: dict[str, Any] = {
        "subject_hash": item.subject_id if item.subject_deleted else None,
        "counts": dict(receipt.removed),
        "read_back": dict(receipt.remaining or {}),
        "verified": receipt.verified,
        "steps": [{"step": step, "completed_at": at} for step, at in sorted(receipt.steps.items(), key=lambda s: s[1])],
        "policy_version": receipt.policy_version,
    }
    if receipt.held:
        data["held"] = {
            "categories": list(receipt.held),
            "kept": dict(receipt.kept),
            "hold_request_id": receipt.held_by,
        }
    return data


def _offboarding_data(result: OffboardingResult) -> dict[str, Any]:
    """What an offboarding proves: what was returned (the manifest's digest), what each store lost, the subjects
    erased, and those a legal hold kept (their keyed hashes and the requests that placed the holds)."""
    return {
        "returned": {
            "packages": result.packages,
            "interactions": result.interactions,
            "bytes": result.package_bytes,
            "manifest_sha256": result.manifest_sha256,
            "delivered": result.delivered_to is not None,
        },
        "counts": dict(result.removed),
        "read_back": dict(result.remaining or {}),
        "subjects_erased": result.erased,
        "subjects_kept": [{"subject_hash": k.subject_hash, "hold_request_id": k.hold_request_id} for k in result.kept],
        "steps": [{"step": step, "completed_at": at} for step, at in sorted(result.steps.items(), key=lambda s: s[1])],
        "policy_version": result.policy_version,
    }


def receipt_of(data: dict[str, Any]) -> DeletionReceipt:
    """The receipt a `deletion.receipt` entry's data holds (the inverse of `_receipt_data`): what reconcile writes
    back on an erasure's record that a restore brought back open."""
    held = data.get("held") or {}
    return DeletionReceipt(
        removed=data.get("counts", {}),
        remaining=data.get("read_back", {}),
        verified=bool(data.get("verified")),
        steps={step["step"]: step["completed_at"] for step in data.get("steps", [])},
        policy_version=data.get("policy_version"),
        held=held.get("categories", []),
        kept=held.get("kept", {}),
        held_by=held.get("hold_request_id"),
    )


def _result_summary(item: RequestItem) -> dict[str, Any]:
    """What an outcome proves without a personal value: a package's digest and size, a refusal's code."""
    raw = item.result.model_dump(exclude_none=True) if item.result else {}
    keep = ("sha256", "bytes", "interaction_count", "files", "expires_at", "error")
    return {k: raw[k] for k in keep if k in raw}


def extended(item: RequestItem, at: str | None = None) -> LedgerEntry:
    ext = item.extension or {}
    return LedgerEntry(
        entry_id=f"{item.request_id}.extended",
        tenant_id=item.tenant_id,
        type="request.extended",
        at=at or str(ext.get("extended_at") or _now()),
        data={"request_id": item.request_id, "due_at": item.due_at, "days": ext.get("days")},
    )


def tombstone(
    tenant_id: str, subject_hash: str, request_id: str, started_at: str, deleted_at: str | None, at: str
) -> LedgerEntry:
    """A tombstone's two phases: the erasure started (the id is refused from then on), and it completed."""
    phase = "completed" if deleted_at else "started"
    data = {"subject_hash": subject_hash, "request_id": request_id, "phase": phase, "started_at": started_at}
    if deleted_at:
        data["deleted_at"] = deleted_at
    return LedgerEntry(
        entry_id=f"{request_id}.tombstone.{phase}", tenant_id=tenant_id, type="deletion.tombstone", at=at, data=data
    )


def retention_run(run: RetentionRunItem, phase: str) -> LedgerEntry:
    """A finished retention run's counts per category: when its last chunk was decided (`completed`), and again
    once that chunk's acts settled them (`settled`: what a hold kept or an erasure removed meanwhile)."""
    data = {"run_id": run.run_id, "as_of": run.as_of, "phase": phase, **run.counts.model_dump()}
    return LedgerEntry(
        entry_id=f"{run.run_id}.{phase}",
        tenant_id=run.tenant_id,
        type="retention.run",
        at=run.finished_at or run.as_of,
        data=data,
    )


def event(tenant_id: str, kind: EntryType, at: str, **data: Any) -> LedgerEntry:
    """Any other entry: settings, keys, policies, retention runs, reconcile (a fresh id each)."""
    return LedgerEntry(entry_id=fresh_id(at), tenant_id=tenant_id, type=kind, at=at, data=data)


# ---------------------------------------------------------------- the tree
class LedgerHead(BaseModel):
    """A tenant's tree as the sequencer keeps it (LedgerTable, sk = HEAD): its size, the hashes of the perfect
    subtrees of its binary decomposition (left to right: at most one per bit of the size), how much of it is in the
    bucket, and the size of its newest signed head. The size is the single writer's condition."""

    tenant_id: str
    size: int = 0
    frontier: list[str] = []  # hex
    archived: int = 0
    signed: int = 0


class TreeHead(BaseModel):
    """What is signed (RFC 8785 canonical JSON of this, by the ledger's KMS key)."""

    tenant_id: str
    tree_size: int
    root_hash: str  # hex
    timestamp: str


class SignedTreeHead(BaseModel):
    tree_head: TreeHead
    signature: str  # base64 of the DER-encoded ECDSA P-256 signature
    key_id: str
    signing_algorithm: str = SIGNING_ALGORITHM


class StoredEntry(BaseModel):
    """A leaf as the index keeps it: the canonical document (the very bytes hashed and archived) and its hash."""

    seq: int
    document: str
    leaf_hash: str  # hex


# ---------------------------------------------------------------- API views
class AuditEntry(BaseModel):
    """One ledger entry as a tenant reads it: its place in the tree and the entry itself."""

    seq: int
    entry_id: str
    type: EntryType
    at: str
    data: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last")


class ConsistencyProof(BaseModel):
    """RFC 9162 §2.1.4: the tree at `to` extends the tree at `from` (verify with both roots and `proof`)."""

    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    from_root: str
    to_root: str
    proof: list[str] = Field(description="Hex SHA-256 node hashes, in RFC 9162 order")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Receipt(BaseModel):
    """A self-contained proof of one ledger entry (`chatsphere verify RECEIPT.json --public-key KEY.pem`)."""

    format: str = LEDGER_FORMAT
    entry: dict[str, Any] = Field(description="The entry; its RFC 8785 canonical JSON is the leaf")
    leaf_index: int
    inclusion_proof: list[str] = Field(description="Hex SHA-256 node hashes, leaf to root (RFC 9162 §2.1.3)")
    tree_head: TreeHead
    signature: str = Field(description="Base64 DER ECDSA P-256 signature over the tree head's RFC 8785 JSON")
    key_id: str
    signing_algorithm: str = SIGNING_ALGORITHM
