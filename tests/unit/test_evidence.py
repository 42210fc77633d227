"""Canonical entries, receipts verified offline with only the ledger's public key, and the whole-log checker
(logic/evidence.py), on a log built with merkle.append and a P-256 key signing as KMS's ECDSA_SHA_256 does."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chatsphere.logic import evidence, merkle

TENANT = "tn_8f1c2d"
KEY_ID = "arn:aws:kms:eu-west-1:111122223333:key/0b7d2c5e-ledger"
SIZE = 50
RECEIPT_SEQ = 41


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_PEM = _key_pem(SIGNING_KEY)
OTHER_PEM = _key_pem(ec.generate_private_key(ec.SECP256R1()))


def sign(head: dict[str, Any], key: ec.EllipticCurvePrivateKey = SIGNING_KEY) -> str:
    """As KMS Sign with ECDSA_SHA_256 and MessageType RAW: a DER signature over the message's SHA-256."""
    return base64.b64encode(key.sign(evidence.tree_head_message(head), ec.ECDSA(hashes.SHA256()))).decode()


DATA_BY_TYPE: dict[str, dict[str, Any]] = {
    "request.created": {"request_id": "rq_1", "kind": "deletion"},
    "request.status_changed": {"request_id": "rq_1", "from": "received", "to": "in_progress"},
    "deletion.receipt": {
        "request_id": "rq_1",
        "subject_hash": "5b1f0c9e" * 8,
        "counts": {"profiles": 1, "interactions": 12, "objects": 3},
        "read_back": {"profiles": 0, "interactions": 0, "objects": 0},
        "steps": [
            {"step": "profile", "completed_at": "2026-12-01T10:00:01Z"},
            {"step": "objects", "completed_at": "2026-12-01T10:00:04Z"},
        ],
        "policy_version": 3,
        "held": {"interactions": 2},
    },
    "deletion.tombstone": {"request_id": "rq_1", "subject_hash": "5b1f0c9e" * 8},
    "retention.run": {"run_id": "rr_1", "counts": {"interactions": 40, "exports": 2}},
    "settings.changed": {"changed": ["retention_days", "webhook_url"]},
    "api_key.created": {"key_id": "k_2"},
    "api_key.revoked": {"key_id": "k_1"},
    "policy.published": {"policy_version": 4},
    "hold.placed": {"hold_id": "h_1"},
    "hold.lifted": {"hold_id": "h_1"},
    "reconcile.run": {"counts": {"profiles": 1}},
    "reconcile.restore_addendum": {"request_id": "rq_1", "counts": {"objects": 2}},
}
TYPES = list(DATA_BY_TYPE)


def make_entry(seq: int, tenant: str = TENANT) -> dict[str, Any]:
    kind = "deletion.receipt" if seq == RECEIPT_SEQ else TYPES[seq % len(TYPES)]
    return {
        "seq": seq,
        "entry_id": f"le_{seq:06d}",
        "tenant_id": tenant,
        "type": kind,
        "at": f"2026-12-01T10:{seq // 60:02d}:{seq % 60:02d}Z",
        "data": copy.deepcopy(DATA_BY_TYPE[kind]),
    }


class Log:
    """A tenant's ledger in memory: its entries, every stored node, and heads signed at any size."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.leaves = [evidence.entry_leaf(e) for e in entries]
        _, self.nodes = merkle.append(0, [], self.leaves)

    def head(self, size: int, tenant: str = TENANT, at: str = "2026-12-03T14:00:00Z") -> dict[str, Any]:
        return {
            "tenant_id": tenant,
            "tree_size": size,
            "root_hash": merkle.range_hash(0, size, self.nodes).hex(),
            "timestamp": at,
        }

    def signed(self, size: int, key: ec.EllipticCurvePrivateKey = SIGNING_KEY) -> dict[str, Any]:
        head = self.head(size)
        return {"tree_head": head, "signature": sign(head, key)}

    def receipt(self, seq: int, size: int = SIZE) -> dict[str, Any]:
        head = self.head(size)
        return {
            "format": "chatsphere-receipt/1",
            "entry": copy.deepcopy(self.entries[seq]),
            "leaf_index": seq,
            "inclusion_proof": [h.hex() for h in merkle.inclusion_proof(seq, size, self.nodes)],
            "tree_head": head,
            "signature": sign(head),
            "key_id": KEY_ID,
            "signing_algorithm": "ECDSA_SHA_256",
        }

    def stream(self) -> Iterator[tuple[dict[str, Any], bytes | None]]:
        yield from zip(self.entries, self.leaves, strict=True)


LOG = Log([make_entry(seq) for seq in range(SIZE)])


def failed_at(verdict: evidence.Verdict) -> str:
    """The check that failed; every later one must be reported as not run."""
    names = [c.name for c in verdict.checks]
    assert names == ["format", "entry", "inclusion", "signature"]
    first = next(i for i, c in enumerate(verdict.checks) if not c.ok)
    assert all(c.ok for c in verdict.checks[:first])
    assert all(not c.ok and c.detail.startswith("not run") for c in verdict.checks[first + 1 :])
    assert not verdict.ok and verdict.statement == ""
    return names[first]


# canonical: RFC 8785's own examples


def test_canonical_sorts_keys_by_utf16_code_units() -> None:
    # RFC 8785 §3.2.3's example: keys sorted by their UTF-16 code units (the emoji's surrogates sort before U+FB33)
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert evidence.canonical(value) == expected.encode()


def test_canonical_numbers_strings_and_literals() -> None:
    # RFC 8785 §3.2.2's example: numbers as ECMAScript prints them, strings escaped minimally, UTF-8
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        r'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        r'"string":"€$\u000f\nA'
        r"'"
        r'B\"\\\\\"/"}'
    )
    assert evidence.canonical(value) == expected.encode()


def test_canonical_integers_and_nesting() -> None:
    assert evidence.canonical({"b": [3, {"z": 1, "a": -7}], "a": 0}) == b'{"a":0,"b":[3,{"a":-7,"z":1}]}'
    assert evidence.canonical({"n": 2**53 - 1}) == b'{"n":9007199254740991}'
    with pytest.raises(rfc8785.IntegerDomainError):  # beyond what an IEEE double carries exactly (a ValueError)
        evidence.canonical({"n": 2**53})
    entry = make_entry(3)
    assert evidence.entry_leaf(entry) == merkle.leaf_hash(evidence.canonical(dict(reversed(list(entry.items())))))


# receipts


def test_a_good_receipt_verifies_with_only_the_public_key() -> None:
    document = json.loads(json.dumps(LOG.receipt(RECEIPT_SEQ)))  # as the user's saved file reads back
    verdict = evidence.verify_receipt(document, PUBLIC_PEM)
    assert verdict.ok, verdict.checks
    assert [(c.name, c.ok) for c in verdict.checks] == [(n, True) for n in evidence.CHECKS]
    assert verdict.statement.startswith(
        f"The ledger of tenant {TENANT}, at size {SIZE}, signed at 2026-12-03T14:00:00Z with key {KEY_ID}, "
        f"includes entry #{RECEIPT_SEQ} (deletion.receipt at 2026-12-01T10:00:41Z): "
    )
    assert verdict.statement.endswith(evidence.describe(document["entry"]))
    assert "5b1f0c9e" not in verdict.statement  # not even the keyed hash of the subject


@pytest.mark.parametrize(("seq", "size"), [(0, 1), (0, SIZE), (SIZE - 1, SIZE), (17, 18), (31, 32), (32, 33)])
def test_receipts_at_every_shape_verify(seq: int, size: int) -> None:
    assert evidence.verify_receipt(LOG.receipt(seq, size), PUBLIC_PEM).ok


def _key_id_span(text: str) -> range:
    start = text.index(json.dumps(KEY_ID))
    return range(start, start + len(json.dumps(KEY_ID)))


def test_any_changed_byte_fails() -> None:
    text = json.dumps(LOG.receipt(RECEIPT_SEQ), separators=(",", ":")).encode()
    assert evidence.verify_receipt(json.loads(text), PUBLIC_PEM).ok
    # key_id names the key and is not signed: the check is against the key the verifier is given
    unsigned = _key_id_span(text.decode())
    failed: dict[str, int] = {}
    for position in range(len(text)):
        if position in unsigned:
            continue
        for flip in (0x01, 0x02, 0x20):
            changed = bytearray(text)
            changed[position] ^= flip
            try:
                document = json.loads(bytes(changed))
            except ValueError:  # not JSON (or not UTF-8) any more: refused before any check
                failed["parse"] = failed.get("parse", 0) + 1
                continue
            verdict = evidence.verify_receipt(document, PUBLIC_PEM)
            assert not verdict.ok, (position, bytes(changed[max(0, position - 20) : position + 20]))
            check = failed_at(verdict)
            failed[check] = failed.get(check, 0) + 1
    # every check caught some of them
    assert set(failed) == {"parse", "format", "entry", "inclusion", "signature"}, failed


def test_a_proof_for_another_entry_fails_inclusion() -> None:
    document = LOG.receipt(RECEIPT_SEQ)
    document["inclusion_proof"] = LOG.receipt(RECEIPT_SEQ - 1)["inclusion_proof"]
    assert failed_at(evidence.verify_receipt(document, PUBLIC_PEM)) == "inclusion"
    other = LOG.receipt(RECEIPT_SEQ)
    other["entry"] = copy.deepcopy(LOG.entries[RECEIPT_SEQ - 1])  # another entry, placed at its own seq
    other["entry"]["seq"] = RECEIPT_SEQ
    assert failed_at(evidence.verify_receipt(other, PUBLIC_PEM)) == "inclusion"


def test_another_key_fails_signature() -> None:
    verdict = evidence.verify_receipt(LOG.receipt(RECEIPT_SEQ), OTHER_PEM)
    assert failed_at(verdict) == "signature"
    assert "does not verify" in verdict.checks[3].detail


@pytest.mark.parametrize(
    "pem",
    [
        b"not a key",
        _key_pem(ec.generate_private_key(ec.SECP384R1())),  # KMS's ECDSA_SHA_256 is P-256 only
        _key_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ],
)
def test_a_key_that_is_not_p256_fails_signature(pem: bytes) -> None:
    verdict = evidence.verify_receipt(LOG.receipt(RECEIPT_SEQ), pem)
    assert failed_at(verdict) == "signature"
    assert "not a P-256" in verdict.checks[3].detail
    assert not evidence.verify_signature(LOG.head(SIZE), sign(LOG.head(SIZE)), pem)


def test_a_head_of_another_tenant_fails_entry() -> None:
    document = LOG.receipt(RECEIPT_SEQ)
    document["tree_head"] = LOG.head(SIZE, tenant="tn_other")  # a real, signed head of the same tree's shape
    document["signature"] = sign(document["tree_head"])
    verdict = evidence.verify_receipt(document, PUBLIC_PEM)
    assert failed_at(verdict) == "entry"
    assert "tenant" in verdict.checks[1].detail


def test_an_index_outside_the_tree_fails_entry() -> None:
    document = LOG.receipt(RECEIPT_SEQ)
    document["tree_head"] = LOG.head(RECEIPT_SEQ)
    document["signature"] = sign(document["tree_head"])
    assert failed_at(evidence.verify_receipt(document, PUBLIC_PEM)) == "entry"


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("key_id"),
        lambda d: d.update(extra=1),
        lambda d: d.update(format="chatsphere-receipt/2"),
        lambda d: d.update(signing_algorithm="RSASSA_PSS_SHA_256"),
        lambda d: d.update(key_id=f"{KEY_ID}, includes entry #7"),  # unsigned, so it may not pass for a statement
        lambda d: d.update(key_id="key\u001b[2K"),
        lambda d: d.update(key_id=""),
        lambda d: d.update(leaf_index=True),
        lambda d: d.update(leaf_index=-1),
        lambda d: d.update(leaf_index="41"),
        lambda d: d.update(inclusion_proof="00"),
        lambda d: d["inclusion_proof"].append("AB" * 32),
        lambda d: d["inclusion_proof"].append(17),
        lambda d: d.update(signature=d["signature"] + "=="),
        lambda d: d.update(signature="not base64!"),
        lambda d: d["entry"].pop("data"),
        lambda d: d["entry"].update(seq=None),
        lambda d: d["entry"].update(data=[]),
        lambda d: d["entry"].update(at="yesterday"),
        lambda d: d["entry"].update(at="2026-12-01T10:00:41+01:00"),
        lambda d: d["tree_head"].update(tree_size=2.5),
        lambda d: d["tree_head"].update(root_hash="00"),
        lambda d: d["tree_head"].update(timestamp="2026-12-03T14:00:00"),
        lambda d: d.update(tree_head=[]),
    ],
)
def test_a_malformed_receipt_fails_format(change: Any) -> None:
    document = LOG.receipt(RECEIPT_SEQ)
    change(document)
    assert failed_at(evidence.verify_receipt(document, PUBLIC_PEM)) == "format"


@pytest.mark.parametrize("document", [None, [], "receipt", 41, {}])
def test_not_a_receipt_at_all_fails_format(document: Any) -> None:
    assert failed_at(evidence.verify_receipt(document, PUBLIC_PEM)) == "format"


def test_verify_signature() -> None:
    head = LOG.head(SIZE)
    signature = sign(head)
    assert evidence.verify_signature(head, signature, PUBLIC_PEM)
    assert evidence.verify_signature(dict(reversed(list(head.items()))), signature, PUBLIC_PEM)  # canonical bytes
    assert not evidence.verify_signature({**head, "tree_size": SIZE - 1}, signature, PUBLIC_PEM)
    assert not evidence.verify_signature(head, signature, OTHER_PEM)
    assert not evidence.verify_signature(head, base64.b64encode(b"\x30\x00").decode(), PUBLIC_PEM)
    assert not evidence.verify_signature(head, "", PUBLIC_PEM)
    assert not evidence.verify_signature({"n": 2**60}, signature, PUBLIC_PEM)


# describe


@pytest.mark.parametrize("kind", TYPES)
def test_describe_every_type(kind: str) -> None:
    text = evidence.describe({"type": kind, "data": DATA_BY_TYPE[kind]})
    assert text.endswith(".") and "(not given)" not in text and "{" not in text
    assert "5b1f0c9e" not in text
    bare = evidence.describe({"type": kind, "data": {}})  # every field absent: still a sentence
    assert bare.endswith(".")


def test_describe_a_deletion_receipt() -> None:
    text = evidence.describe({"type": "deletion.receipt", "data": DATA_BY_TYPE["deletion.receipt"]})
    assert text == (
        "Request rq_1 was carried out: 16 items (12 in interactions, 3 in objects, 1 in profiles) deleted under "
        "policy version 3. A read-back afterwards found nothing left. Steps completed: profile, objects. Kept "
        "under a legal hold: interactions: 2."
    )
    left = {**DATA_BY_TYPE["deletion.receipt"], "read_back": {"objects": 1, "profiles": 0}}
    assert "A read-back found 1 item (1 in objects, 0 in profiles) left." in evidence.describe(
        {"type": "deletion.receipt", "data": left}
    )


@pytest.mark.parametrize(
    "entry",
    [
        {},
        {"type": "something.new", "data": {"x": 1}},
        {"type": "deletion.receipt", "data": "not an object"},
        {"type": "deletion.receipt", "data": {"counts": {"a": "many", "b": True}, "steps": [1, {}], "held": []}},
        {"type": "settings.changed", "data": {"changed": {"a": 1}}},
        {"type": "retention.run", "data": {"counts": None}},
    ],
)
def test_describe_never_raises(entry: dict[str, Any]) -> None:
    assert evidence.describe(entry).endswith(".")


def test_describe_a_status_change() -> None:
    assert evidence.describe({"type": "request.status_changed", "data": DATA_BY_TYPE["request.status_changed"]}) == (
        "Request rq_1's status changed to in_progress (from received)."
    )
    assert evidence.describe({"type": "request.status_changed", "data": {"request_id": "rq_2", "status": "done"}}) == (
        "Request rq_2's status changed to done."
    )


def test_describe_an_unknown_type() -> None:
    assert evidence.describe({"type": "something.new"}) == "An entry of type something.new was recorded."


# verify_log

HEAD_SIZES = (0, 1, 10, 25, 32, SIZE, SIZE)


def test_a_good_log_verifies() -> None:
    count, faults = evidence.verify_log(LOG.stream(), [LOG.signed(n) for n in HEAD_SIZES], PUBLIC_PEM)
    assert (count, faults) == (SIZE, [])
    unstored = ((entry, None) for entry, _ in LOG.stream())  # no stored leaf hashes: roots alone
    assert evidence.verify_log(unstored, [LOG.signed(n) for n in HEAD_SIZES], PUBLIC_PEM) == (SIZE, [])
    assert evidence.verify_log(iter(()), [], PUBLIC_PEM) == (0, [])


def test_an_edited_entry_is_named() -> None:
    def edited() -> Iterator[tuple[dict[str, Any], bytes | None]]:
        for entry, leaf in LOG.stream():
            if entry["seq"] == 17:
                entry = {**entry, "data": {**entry["data"], "counts": {"profiles": 0}}}
            yield entry, leaf

    count, faults = evidence.verify_log(edited(), [LOG.signed(n) for n in HEAD_SIZES], PUBLIC_PEM)
    assert count == SIZE
    assert (faults[0].seq, faults[0].check) == (17, "leaf")
    roots = [f.detail.split(" (")[0] for f in faults if f.check == "root"]  # the heads after #17: 25, 32, 50, 50
    assert roots == [f"the head at size {n}" for n in (25, 32, SIZE, SIZE)]
    # with the stored leaf edited too, the signed heads after it still find it
    rewritten = Log([*LOG.entries[:17], {**LOG.entries[17], "type": "hold.lifted"}, *LOG.entries[18:]])
    _, faults = evidence.verify_log(rewritten.stream(), [LOG.signed(n) for n in HEAD_SIZES], PUBLIC_PEM)
    assert {f.check for f in faults} == {"root", "consistency"}
    assert (faults[0].check, faults[0].detail) == (
        "root",
        "the head at size 25 (2026-12-03T14:00:00Z) is not the root of the first 25 entries: the first 10 match an "
        "earlier head, so #10 to #24 or this head differ",
    )


def test_a_dropped_entry_is_named() -> None:
    dropped = [pair for pair in LOG.stream() if pair[0]["seq"] != 30]
    count, faults = evidence.verify_log(iter(dropped), [LOG.signed(n) for n in HEAD_SIZES], PUBLIC_PEM)
    assert count == SIZE - 1
    assert (faults[0].seq, faults[0].check) == (30, "seq") and "#30 to #29" not in faults[0].detail
    assert "entries #30 to #30 are missing" in faults[0].detail
    assert any(f.check == "head" and f"only {SIZE - 1} entries" in f.detail for f in faults)
    repeated = [*list(LOG.stream())[:10], (LOG.entries[5], LOG.leaves[5])]
    _, faults = evidence.verify_log(iter(repeated), [], PUBLIC_PEM)
    assert [(f.seq, f.check) for f in faults] == [(10, "seq")]


def test_a_forked_head_is_found() -> None:
    forked = Log([*LOG.entries[:20], *(make_entry(seq, tenant="tn_fork") for seq in range(20, SIZE))])
    heads = [LOG.signed(10), LOG.signed(25), forked.signed(40), LOG.signed(SIZE)]
    _, faults = evidence.verify_log(LOG.stream(), heads, PUBLIC_PEM)
    consistency = [f for f in faults if f.check == "consistency"]
    assert len(consistency) == 2  # 25 -> 40 and 40 -> 50 are not extensions
    assert "size 40" in consistency[0].detail and "size 25" in consistency[0].detail
    assert [f.detail for f in faults if f.check == "root"] == [
        "the head at size 40 (2026-12-03T14:00:00Z) is not the root of the first 40 entries: the first 25 match an "
        "earlier head, so #25 to #39 or this head differ"
    ]
    # two heads at one size with different roots
    _, faults = evidence.verify_log(LOG.stream(), [LOG.signed(40), forked.signed(40)], PUBLIC_PEM)
    assert [f.check for f in faults] == ["root", "consistency"]
    assert faults[0].detail.endswith("entries: another head at this size matches them")


def test_a_bad_signature_is_found() -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    heads = [LOG.signed(10), LOG.signed(25, key=other_key), LOG.signed(SIZE)]
    _, faults = evidence.verify_log(LOG.stream(), heads, PUBLIC_PEM)
    assert [(f.seq, f.check) for f in faults] == [(None, "signature")]
    assert "size 25" in faults[0].detail


def test_malformed_and_unordered_heads_are_faults() -> None:
    heads: list[Any] = [LOG.signed(25), LOG.signed(10), {"tree_head": {"tree_size": 3}}, "head", LOG.signed(SIZE)]
    _, faults = evidence.verify_log(LOG.stream(), heads, PUBLIC_PEM)
    assert [f.check for f in faults] == ["head", "head", "head"]
    assert "comes after a larger one" in faults[0].detail


def test_malformed_entries_are_faults() -> None:
    entries: list[tuple[Any, bytes | None]] = [(LOG.entries[0], None), ({"seq": "1"}, None), ({"n": 2**60}, None)]
    count, faults = evidence.verify_log(iter(entries), [], PUBLIC_PEM)
    assert count == 3
    assert [(f.seq, f.check) for f in faults] == [(1, "seq"), (2, "seq"), (2, "entry")]


def test_verify_log_keeps_only_the_nodes_the_heads_need() -> None:
    big = Log([make_entry(seq) for seq in range(1500)])
    heads = [big.signed(n) for n in (100, 777, 1024, 1499)]
    checker = evidence._LogChecker(heads, PUBLIC_PEM)
    for entry, leaf in big.stream():
        checker.add(entry, leaf)
        assert len(checker.frontier) <= 11
    assert checker.finish() == (1500, [])
    assert len(checker.kept) <= len(checker.wanted) <= 3 * (2 * 11 + 2)  # O(log n) per pair of heads, not O(n)
