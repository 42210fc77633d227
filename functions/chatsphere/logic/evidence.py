"""The ledger's evidence: canonical bytes of entries and tree heads, and their verification offline.

An *entry* (a ledger leaf) is a JSON object `{"seq", "entry_id", "tenant_id", "type", "at", "data"}`; its leaf hash
is RFC 9162's over its RFC 8785 canonical bytes (`entry_leaf`). A *tree head* `{"tenant_id", "tree_size",
"root_hash", "timestamp"}` is what KMS signs: ECDSA_SHA_256 (P-256, DER, carried base64) over its canonical bytes,
MessageType RAW (`tree_head_message`, `verify_signature`).

A *receipt* (`GET /v1/requests/{id}/receipt`, the file a user keeps) is one entry, its leaf index and audit path,
and a signed tree head::

    {"format": "chatsphere-receipt/1", "entry": {...}, "leaf_index": 41, "inclusion_proof": ["<hex>", ...],
     "tree_head": {...}, "signature": "<base64 DER>", "key_id": "<KMS key id or ARN>",
     "signing_algorithm": "ECDSA_SHA_256"}

`verify_receipt` needs only the receipt and the ledger's public key (PEM): it runs the checks `format`, `entry`,
`inclusion` and `signature` in that order, each reported by name, a later one "not run" once one fails, and when
all pass says in plain words what the receipt proves. `key_id` names the key but is not itself signed: what the
signature check proves is that the key given (its PEM) signed the head.

`verify_log` checks a whole log as `chatsphere ledger verify` reads it (entries streamed in seq order with their
stored leaf hashes, and the signed heads): contiguous seqs, leaf hashes, every head's signature and root, and that
each head extends the one before (a consistency proof from the recomputed tree). It keeps the frontier and only the
nodes those proofs need, so its memory is O(log n) per head, whatever the log's length.

Errors and details name seqs, sizes, tenants and entry types only; entries hold no personal value (only keyed
hashes), and nothing here prints an entry's data but `describe`, for the user the receipt is about.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import rfc8785

if TYPE_CHECKING:  # cryptography loads on the first verification: the sequencer and the routes never verify
    from cryptography.hazmat.primitives.asymmetric import ec

from chatsphere.logic import merkle

FORMAT = "chatsphere-receipt/1"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
ENTRY_FIELDS: Mapping[str, type] = {"seq": int, "entry_id": str, "tenant_id": str, "type": str, "at": str, "data": dict}
HEAD_FIELDS: Mapping[str, type] = {"tenant_id": str, "tree_size": int, "root_hash": str, "timestamp": str}
RECEIPT_FIELDS: Mapping[str, type] = {
    "format": str,
    "entry": dict,
    "leaf_index": int,
    "inclusion_proof": list,
    "tree_head": dict,
    "signature": str,
    "key_id": str,
    "signing_algorithm": str,
}
CHECKS = ("format", "entry", "inclusion", "signature")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
# A KMS key id, alias or ARN. key_id is not signed, and the statement quotes it: no spaces, no control characters,
# nothing that could pass for more of the statement.
_KEY_ID = re.compile(r"[A-Za-z0-9:/_.\-]{1,2048}")
NOT_RUN = "not run: an earlier check failed"  # the detail of a check after a failed one


def canonical(value: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical bytes of a JSON object. ValueError (rfc8785's) for what JSON cannot carry
    exactly: a float that is not finite, an integer beyond ±(2**53 - 1)."""
    return rfc8785.dumps(dict(value))


def entry_leaf(entry: Mapping[str, Any]) -> bytes:
    """The entry's leaf hash in the ledger's tree."""
    return merkle.leaf_hash(canonical(entry))


def tree_head_message(head: Mapping[str, Any]) -> bytes:
    """The bytes KMS signs for a tree head (MessageType RAW)."""
    return canonical(head)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checks: list[Check]
    statement: str  # what the receipt proves, in plain words; empty when not ok


@dataclass(frozen=True)
class LogFault:
    seq: int | None  # the first failing entry, where the fault is one entry's
    check: str
    detail: str


def _public_key(public_key_pem: bytes) -> ec.EllipticCurvePublicKey | None:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key


def _base64(text: object) -> bytes | None:
    """The bytes of canonical base64 text (padded, no stray bits or characters), else None: two texts never carry
    the same signature."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def verify_signature(head: Mapping[str, Any], signature_b64: str, public_key_pem: bytes) -> bool:
    """Whether `signature_b64` (base64 of a DER ECDSA signature, as KMS's ECDSA_SHA_256 gives) signs the tree
    head's canonical bytes under the P-256 public key in `public_key_pem`. False for any other key or malformed
    input, never an exception."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _public_key(public_key_pem)
    signature = _base64(signature_b64)
    if key is None or signature is None:
        return False
    try:
        key.verify(signature, tree_head_message(head), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_utc(value: object) -> bool:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return False
    offset = moment.utcoffset()
    return offset is not None and not offset


def _fields_problem(value: object, fields: Mapping[str, type], what: str) -> str | None:
    """Why `value` is not an object with exactly `fields`, each of its type (an int a count, not a bool)."""
    if not isinstance(value, Mapping):
        return f"{what} is not an object"
    if set(value) != set(fields):
        missing, extra = sorted(set(fields) - set(value)), sorted(set(value) - set(fields))
        return f"{what} has missing fields {missing} and unknown fields {extra}"
    for name, kind in fields.items():
        if not isinstance(value[name], kind) or (kind is int and not _is_count(value[name])):
            return f"{what}.{name} is not a {'count' if kind is int else kind.__name__}"
    return None


def _head_problem(head: object, what: str) -> str | None:
    problem = _fields_problem(head, HEAD_FIELDS, what)
    if problem is None and isinstance(head, Mapping):
        if not _HEX_HASH.fullmatch(head["root_hash"]):
            problem = f"{what}.root_hash is not 64 lower-case hex digits"
        elif not _is_utc(head["timestamp"]):
            problem = f"{what}.timestamp is not an ISO-8601 UTC time"
    return problem


def _format_problem(document: Mapping[str, Any]) -> str | None:
    problem = (
        _fields_problem(document, RECEIPT_FIELDS, "the receipt")
        or _fields_problem(document["entry"], ENTRY_FIELDS, "entry")
        or _head_problem(document["tree_head"], "tree_head")
    )
    if problem:
        return problem
    if document["format"] != FORMAT:
        return f"the format is not {FORMAT}"
    if not _KEY_ID.fullmatch(document["key_id"]):
        return "key_id is not a KMS key id, alias or ARN"
    if document["signing_algorithm"] != SIGNING_ALGORITHM:
        return f"signing_algorithm is not {SIGNING_ALGORITHM}"
    if not _is_utc(document["entry"]["at"]):
        return "entry.at is not an ISO-8601 UTC time"
    if not all(isinstance(h, str) and _HEX_HASH.fullmatch(h) for h in document["inclusion_proof"]):
        return "inclusion_proof is not a list of 64-hex-digit hashes"
    if _base64(document["signature"]) is None:
        return "signature is not canonical base64"
    return None


def _check_format(document: Mapping[str, Any], _: bytes) -> tuple[bool, str]:
    if not isinstance(document, Mapping):
        return False, "the receipt is not a JSON object"
    problem = _format_problem(document)
    return (False, problem) if problem else (True, f"{FORMAT}: every field present and of its type")


def _check_entry(document: Mapping[str, Any], _: bytes) -> tuple[bool, str]:
    entry, head, index = document["entry"], document["tree_head"], document["leaf_index"]
    if entry["seq"] != index:
        return False, f"the entry is #{entry['seq']} but the receipt places it at leaf {index}"
    if entry["tenant_id"] != head["tenant_id"]:
        return False, "the entry's tenant is not the tenant of the tree head"
    if index >= head["tree_size"]:
        return False, f"leaf {index} is outside the tree of {head['tree_size']} entries"
    return True, f"entry #{index} of tenant {head['tenant_id']}, inside the tree of {head['tree_size']} entries"


def _check_inclusion(document: Mapping[str, Any], _: bytes) -> tuple[bool, str]:
    head, index = document["tree_head"], document["leaf_index"]
    try:
        leaf = entry_leaf(document["entry"])
    except ValueError:
        return False, "the entry has a value JSON cannot carry exactly (RFC 8785)"
    proof = [bytes.fromhex(h) for h in document["inclusion_proof"]]
    if not merkle.verify_inclusion(leaf, index, head["tree_size"], proof, bytes.fromhex(head["root_hash"])):
        return False, f"the entry and its audit path do not give the root hash of the tree of {head['tree_size']}"
    return True, f"the entry's leaf hash and its {len(proof)}-hash audit path give the tree head's root hash"


def _check_signature(document: Mapping[str, Any], public_key_pem: bytes) -> tuple[bool, str]:
    if _public_key(public_key_pem) is None:
        return False, "the public key given is not a P-256 (secp256r1) public key in PEM"
    if not verify_signature(document["tree_head"], document["signature"], public_key_pem):
        return False, "the signature does not verify over the tree head with the public key given"
    return True, f"{SIGNING_ALGORITHM} over the canonical tree head verifies with the public key given"


_RECEIPT_CHECKS: tuple[Callable[[Mapping[str, Any], bytes], tuple[bool, str]], ...] = (
    _check_format,
    _check_entry,
    _check_inclusion,
    _check_signature,
)


def verify_receipt(document: Mapping[str, Any], public_key_pem: bytes) -> Verdict:
    """Check a receipt offline with the ledger's public key alone: `format`, `entry`, `inclusion`, `signature`,
    in that order, a later check not run once one fails. Never raises on any document."""
    checks: list[Check] = []
    for name, run in zip(CHECKS, _RECEIPT_CHECKS, strict=True):
        if checks and not checks[-1].ok:
            checks.append(Check(name, False, NOT_RUN))
            continue
        ok, detail = run(document, public_key_pem)
        checks.append(Check(name, ok, detail))
    if not all(check.ok for check in checks):
        return Verdict(False, checks, "")
    entry, head = document["entry"], document["tree_head"]
    statement = (
        f"The ledger of tenant {head['tenant_id']}, at size {head['tree_size']}, signed at {head['timestamp']} "
        f"with key {document['key_id']}, includes entry #{entry['seq']} ({entry['type']} at {entry['at']}): "
        f"{describe(entry)}"
    )
    return Verdict(True, checks, statement)


# describe: one or two sentences per entry type, from what the entry's data holds (any field may be absent)


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "(not given)"


def _counts(value: object) -> tuple[int, str]:
    """The total of a {store: count} mapping and its parts in words ("3 in profiles, 2 in objects")."""
    if not isinstance(value, Mapping):
        return 0, ""
    parts = {str(k): v for k, v in value.items() if _is_count(v)}
    return sum(parts.values()), ", ".join(f"{n} in {store}" for store, n in sorted(parts.items()))


def _items(value: object) -> str:
    total, parts = _counts(value)
    return f"{total} item{'' if total == 1 else 's'}" + (f" ({parts})" if parts else "")


def _summary(value: object) -> str:
    if not isinstance(value, Mapping):
        return ""
    return ", ".join(f"{k}: {v}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))


def _read_back(value: object) -> str:
    if not isinstance(value, Mapping) or not value:
        return ""
    if all(_is_count(v) for v in value.values()):  # {store: what is still there}
        total, _ = _counts(value)
        return f" A read-back found {_items(value)} left." if total else " A read-back afterwards found nothing left."
    return f" Read-back: {_summary(value)}."


def _steps(value: object) -> str:
    if not isinstance(value, list):
        return ""
    names = [str(step.get("step")) for step in value if isinstance(step, Mapping) and step.get("step")]
    return f" Steps completed: {', '.join(names)}." if names else ""


def _deletion_receipt(data: Mapping[str, Any]) -> str:
    text = f"Request {data.get('request_id', '(not given)')} was carried out: {_items(data.get('counts'))} deleted"
    if data.get("policy_version") is not None:
        text += f" under policy version {data['policy_version']}"
    text += "." + _read_back(data.get("read_back")) + _steps(data.get("steps"))
    if isinstance(data.get("held"), Mapping) and data["held"]:
        text += f" Kept under a legal hold: {_summary(data['held'])}."
    return text


def _offboarding_receipt(data: Mapping[str, Any]) -> str:
    given = data.get("returned")
    returned: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    kept = data.get("subjects_kept") if isinstance(data.get("subjects_kept"), list) else []
    text = (
        f"The tenant was offboarded by request {data.get('request_id', '(not given)')}: "
        f"{returned.get('packages', 0)} subjects' data returned (manifest {returned.get('manifest_sha256')}), "
        f"{data.get('subjects_erased', 0)} subjects erased, {_items(data.get('counts'))} deleted"
    )
    text += "." + _read_back(data.get("read_back")) + _steps(data.get("steps"))
    if kept:
        text += f" {len(kept)} subjects kept under a legal hold."
    return text


def _request_created(data: Mapping[str, Any]) -> str:
    kind = data.get("kind") or data.get("request_type")
    return f"Request {data.get('request_id', '(not given)')} was received" + (f" ({kind})." if kind else ".")


def _status_changed(data: Mapping[str, Any]) -> str:
    before, after = data.get("from") or data.get("previous_status"), data.get("to") or data.get("status")
    text = f"Request {data.get('request_id', '(not given)')}'s status changed to {after or '(not given)'}"
    return text + (f" (from {before})." if before else ".")


def _settings_changed(data: Mapping[str, Any]) -> str:
    changed = data.get("changed") or data.get("fields") or sorted(str(k) for k in data)
    names = ", ".join(str(c) for c in changed) if isinstance(changed, list | tuple) else _summary(changed)
    return f"The tenant's settings changed: {names or '(not given)'}."


def _counted(sentence: str) -> Callable[[Mapping[str, Any]], str]:
    def describe_counts(data: Mapping[str, Any]) -> str:
        return sentence.format_map(_Fields(data, items=_items(data.get("counts") or data.get("removed"))))

    return describe_counts


_TEMPLATES = {
    "deletion.tombstone": "A tombstone records that request {request_id}'s subject was erased, so that a restore "
    "from backup cannot bring the data back unnoticed.",
    "api_key.created": "API key {key_id} was created.",
    "api_key.revoked": "API key {key_id} was revoked.",
    "policy.published": "Policy version {policy_version} was published.",
    "hold.placed": "Legal hold {hold_id} was placed.",
    "hold.lifted": "Legal hold {hold_id} was lifted.",
}
_DESCRIBERS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "request.created": _request_created,
    "request.status_changed": _status_changed,
    "deletion.receipt": _deletion_receipt,
    "offboarding.receipt": _offboarding_receipt,
    "settings.changed": _settings_changed,
    "retention.run": _counted("A retention run removed {items} whose retention period had ended."),
    "reconcile.run": _counted("A reconcile run after a restore removed again {items} of erased subjects."),
    "reconcile.restore_addendum": _counted(
        "After a restore, what came back of request {request_id}'s erased subject was removed again: {items}."
    ),
}


def describe(entry: Mapping[str, Any]) -> str:
    """One or two plain sentences for a human about what the entry records, per entry type (a generic one for a
    type it does not know). Never raises."""
    kind = str(entry.get("type", "(no type)"))
    data = entry.get("data")
    data = data if isinstance(data, Mapping) else {}
    if kind in _DESCRIBERS:
        return _DESCRIBERS[kind](data)
    if kind in _TEMPLATES:
        return _TEMPLATES[kind].format_map(_Fields(data))
    return f"An entry of type {kind} was recorded."


# verify_log: one pass over the entries, a frontier, and only the nodes the heads' consistency proofs need


@dataclass(frozen=True)
class _Head:
    size: int
    root: bytes
    timestamp: str


def _since(matched: int, size: int) -> str:
    """Where a head's root mismatch lies, from the last head the entries matched (at size `matched`)."""
    if matched == size:
        return ": another head at this size matches them"
    if matched:
        return f": the first {matched} match an earlier head, so #{matched} to #{size - 1} or this head differ"
    return ""


class _LogChecker:
    def __init__(self, heads: Sequence[Mapping[str, Any]], public_key_pem: bytes) -> None:
        self.faults: list[LogFault] = []
        self.heads = self._valid_heads(heads, public_key_pem)
        self.wanted: set[merkle.Node] = set()
        for before, after in zip(self.heads, self.heads[1:], strict=False):
            self.wanted |= merkle.needed_for_consistency(before.size, after.size)
        self.kept: dict[merkle.Node, bytes] = {}
        self.frontier: list[bytes] = []
        self.size = 0  # entries read
        self.expected = 0  # the seq the next entry should have
        self.next_head = 0
        self.previous: _Head | None = None
        self.matched = 0  # the size of the last head whose root the entries gave: the entries before it are sound
        self._reach()

    def _valid_heads(self, heads: Sequence[Mapping[str, Any]], public_key_pem: bytes) -> list[_Head]:
        valid: list[_Head] = []
        for position, signed in enumerate(heads):
            head = signed.get("tree_head") if isinstance(signed, Mapping) else None
            problem = _head_problem(head, f"head {position}")
            if problem or not isinstance(head, Mapping):
                self.faults.append(LogFault(None, "head", problem or f"head {position} is not an object"))
                continue
            size = head["tree_size"]
            if not verify_signature(head, signed.get("signature", ""), public_key_pem):
                self.faults.append(LogFault(None, "signature", f"the head at size {size} is not signed by the key"))
            if valid and size < valid[-1].size:
                self.faults.append(LogFault(None, "head", f"the head at size {size} comes after a larger one"))
                continue
            valid.append(_Head(size, bytes.fromhex(head["root_hash"]), head["timestamp"]))
        return valid

    def add(self, entry: Mapping[str, Any], stored_leaf: bytes | None) -> None:
        seq = entry.get("seq") if isinstance(entry, Mapping) else None
        at = self.expected
        if not isinstance(seq, int) or not _is_count(seq):
            self.faults.append(LogFault(at, "seq", f"the entry read after #{at - 1} has no seq"))
        elif seq != at:
            gap = f"entries #{at} to #{seq - 1} are missing" if seq > at else f"#{seq} comes again after #{at - 1}"
            self.faults.append(LogFault(at, "seq", f"seqs are not contiguous: {gap}"))
            at = seq
        try:
            leaf = entry_leaf(entry)
        except (ValueError, TypeError, AttributeError):
            self.faults.append(LogFault(at, "entry", f"entry #{at} is not a JSON object RFC 8785 can canonicalise"))
            leaf = stored_leaf if stored_leaf is not None else merkle.leaf_hash(b"")
        if stored_leaf is not None and stored_leaf != leaf:
            self.faults.append(LogFault(at, "leaf", f"entry #{at} is not the entry whose leaf hash was stored"))
        self.frontier, completed = merkle.append(self.size, self.frontier, [leaf])
        self.kept |= {node: value for node, value in completed.items() if node in self.wanted}
        self.size += 1
        self.expected = at + 1
        self._reach()

    def _reach(self) -> None:
        """Check every head at the size the log has now reached: its root, and that it extends the one before."""
        while self.next_head < len(self.heads) and self.heads[self.next_head].size == self.size:
            head = self.heads[self.next_head]
            self.next_head += 1
            if merkle.frontier_root(self.size, self.frontier) == head.root:
                self.matched = head.size
            else:
                since = _since(self.matched, head.size)
                self.faults.append(
                    LogFault(
                        None,
                        "root",
                        f"the head at size {head.size} ({head.timestamp}) is not the root of the "
                        f"first {head.size} entries{since}",
                    )
                )
            if self.previous is not None:
                self._consistency(self.previous, head)
            self.previous = head

    def _consistency(self, before: _Head, after: _Head) -> None:
        proof = merkle.consistency_proof(before.size, after.size, self.kept)
        if not merkle.verify_consistency(before.size, after.size, before.root, after.root, proof):
            self.faults.append(
                LogFault(
                    None,
                    "consistency",
                    f"the head at size {after.size} ({after.timestamp}) does not extend "
                    f"the head at size {before.size} ({before.timestamp}): the log forked or was rewritten",
                )
            )

    def finish(self) -> tuple[int, list[LogFault]]:
        for head in self.heads[self.next_head :]:
            self.faults.append(
                LogFault(None, "head", f"a head at size {head.size} but the log has only {self.size} entries")
            )
        return self.size, self.faults


def verify_log(
    entries: Iterable[tuple[Mapping[str, Any], bytes | None]],
    heads: Sequence[Mapping[str, Any]],
    public_key_pem: bytes,
) -> tuple[int, list[LogFault]]:
    """Check a whole log: `entries` are (entry, its stored leaf hash or None) in seq order, streamed; `heads` the
    signed heads {"tree_head": {...}, "signature": "<base64>"} in size order. Finds a gap or repeat in the seqs, an
    entry that is not the one whose leaf was stored, a head not signed by the key, a head whose root is not the
    entries' root at its size, a head that does not extend the one before (a fork), a head beyond the log's end.
    Returns the number of entries read and the faults, each naming the first failing seq where it is one entry's."""
    checker = _LogChecker(heads, public_key_pem)
    for entry, stored_leaf in entries:
        checker.add(entry, stored_leaf)
    return checker.finish()
