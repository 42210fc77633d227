"""An erasure end to end on `make run`'s stack, over HTTP: a subject with interactions inline and in S3,
idempotency records and a finished export is erased by DeletionFunction through its queue, in chunks of 3
(conftest sets DELETION_CHUNK), so the job continues several times. Afterwards every route of the subject
answers 410, lookups find nobody, the neighbours in both tenants keep every item, and the residue scanner
finds nothing of the subject in the stack's moto but its keyed hash."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.local_stack.conftest import RunningStack, http
from tests.residue import SubjectValues, assert_no_residue, kinds, residue

pytestmark = pytest.mark.local_stack

KIB = 1024
SUBJECT = "u-del"
NEIGHBOUR = "u-keep"  # in tenant A beside the erased subject, and in tenant B under the same id
PERSON = {
    "name": "Zephyrine Quillfeather",
    "email": "zephyrine.quillfeather@example.org",
    "phone": "+12025550187",
    "contact": {"telegram": "@zephyrine_qf_8841"},
}
# Ten interactions; three over 32 KiB, so they are stored in S3. Each one distinctive, for the residue scan.
LONG = {2, 5, 8}
TEXTS = [
    f"Zephyrine #{n}: " + ("the saffron ledger, long " + "Q" * (33 * KIB) if n in LONG else f"parcel {n} to Vellmar")
    for n in range(10)
]
IDEMPOTENT = 4  # the first four are posted with an Idempotency-Key: their records must go too
# Hang guards, not performance assertions: the pollers run the job and its continuations in a few seconds.
EXPORT_GUARD_S = 60
DELETION_GUARD_S = 60


def wait_until_closed(stack: RunningStack, request_id: str, key: str, guard_s: float) -> tuple[dict[str, Any], float]:
    """Polls the record until it is no longer open; returns it and the seconds it took."""
    started = time.monotonic()
    while True:
        record = http("GET", f"{stack.api_url}/v1/requests/{request_id}", key=key).body
        if record["status"] not in ("received", "in_progress"):
            return record, time.monotonic() - started
        if time.monotonic() - started > guard_s:
            pytest.fail(f"request still {record['status']} after {guard_s} s:\n{stack.log()[-3000:]}")
        time.sleep(0.1)


def populate(stack: RunningStack, key: str, subject: str, body: dict[str, Any], texts: list[str]) -> None:
    api = stack.api_url
    created = http("PUT", f"{api}/v1/subjects/{subject}", key=key, json_body=body)
    assert created.status == 201, created.body
    for n, text in enumerate(texts):
        headers = {"Idempotency-Key": f"{subject}-{n}"} if n < IDEMPOTENT else {}
        said = {"conversation_id": f"c-{n // 4}", "role": "customer" if n % 2 else "agent", "text": text}
        r = http("POST", f"{api}/v1/subjects/{subject}/interactions", key=key, json_body=said, headers=headers)
        assert r.status == 201, r.body


def read_back(stack: RunningStack, key: str, subject: str) -> tuple[dict[str, Any], list[str]]:
    """The profile and every interaction's text, over HTTP."""
    api = stack.api_url
    profile = http("GET", f"{api}/v1/subjects/{subject}", key=key)
    assert profile.status == 200, profile.body
    page = http("GET", f"{api}/v1/subjects/{subject}/interactions?limit=100", key=key)
    assert page.status == 200, page.body
    return profile.body, [i["text"] for i in page.body["items"]]


def test_an_erasure_over_http_spans_continuations_and_leaves_nothing_but_its_hash(stack: RunningStack) -> None:
    api, key_a, key_b = stack.api_url, stack.key(0), stack.key(1)
    neighbour_a = {"name": "Ingram Keepsake", "email": "ingram.keepsake@example.net"}
    neighbour_b = {"name": "Brunhild Staywell", "phone": "+12025550133"}
    texts_a = ["Ingram stays: first", "Ingram stays: " + "K" * (33 * KIB)]
    texts_b = ["Brunhild stays: only message"]
    # Given the subject, an export of it that completed, and a neighbour in each tenant
    populate(stack, key_a, SUBJECT, PERSON, TEXTS)
    populate(stack, key_a, NEIGHBOUR, neighbour_a, texts_a)
    populate(stack, key_b, NEIGHBOUR, neighbour_b, texts_b)
    exported = http("POST", f"{api}/v1/subjects/{SUBJECT}/exports", key=key_a, json_body={"format": "json"})
    assert exported.status == 202, exported.body
    export, _ = wait_until_closed(stack, exported.body["request_id"], key_a, EXPORT_GUARD_S)
    assert export["status"] == "completed", export
    before_a, before_b = read_back(stack, key_a, NEIGHBOUR), read_back(stack, key_b, NEIGHBOUR)
    values, moto = SubjectValues.from_profile(SUBJECT, PERSON, TEXTS), stack.state["aws_endpoint_url"]
    assert kinds(residue(values, endpoint_url=moto)) >= {"subject_id", "name", "email"}  # the scan sees the stack

    # When tenant A erases the subject
    log_before = len(stack.functions_log())
    accepted = http("DELETE", f"{api}/v1/subjects/{SUBJECT}", key=key_a)
    assert accepted.status == 202, accepted.body
    request_id = accepted.body["request_id"]
    record, took = wait_until_closed(stack, request_id, key_a, DELETION_GUARD_S)

    # Then the request completes with a receipt that counts each item once, across many continuations
    assert record["status"] == "completed", record
    receipt = record["result"]
    assert receipt["verified"] is True and not any(receipt["remaining"].values()), receipt
    removed = receipt["removed"]
    assert removed["profile"] == 1 and removed["interactions"] == len(TEXTS) and removed["lookup_items"] == 2
    assert removed["idempotency_records"] == IDEMPOTENT and removed["data_key"] == 1
    assert removed["object_versions"] == len(LONG) + 1 and removed["delete_markers"] == 0  # texts and the package
    assert removed["exports_cancelled"] == 0 and removed.get("swept_items", 0) == 0
    continued = stack.functions_log()[log_before:].count('"outcome":"continue"')
    assert continued >= 5, stack.functions_log()[log_before:][-3000:]  # 13 items, 4 object versions, 4 records, by 3
    print(f"erasure of {len(TEXTS)} interactions: {continued} continuations, completed in {took:.1f} s of polling")
    # and every route of the subject answers 410 naming the deletion
    said = {"conversation_id": "c-9", "role": "customer", "text": "a replay"}
    answers = [
        http("GET", f"{api}/v1/subjects/{SUBJECT}", key=key_a),
        http("PUT", f"{api}/v1/subjects/{SUBJECT}", key=key_a, json_body=PERSON),
        http("PATCH", f"{api}/v1/subjects/{SUBJECT}", key=key_a, json_body={"name": "X"}),
        http("POST", f"{api}/v1/subjects/{SUBJECT}/interactions", key=key_a, json_body=said),
        http(
            "POST",
            f"{api}/v1/subjects/{SUBJECT}/interactions",
            key=key_a,
            json_body=said,
            headers={"Idempotency-Key": f"{SUBJECT}-0"},
        ),
        http("GET", f"{api}/v1/subjects/{SUBJECT}/interactions", key=key_a),
        http("POST", f"{api}/v1/subjects/{SUBJECT}/exports", key=key_a, json_body={"format": "json"}),
        http("PUT", f"{api}/v1/subjects/{SUBJECT}/objections/analytics", key=key_a),
        http("POST", f"{api}/v1/subjects/{SUBJECT}/deactivation", key=key_a),
        http("DELETE", f"{api}/v1/subjects/{SUBJECT}", key=key_a),
    ]
    for r in answers:
        assert r.status == 410 and r.body["request_id"] == request_id, (r.status, r.body)
    # and lookups by its email or phone find nobody
    for identifier in ({"email": PERSON["email"]}, {"phone": PERSON["phone"]}):
        found = http("POST", f"{api}/v1/subject-lookups", key=key_a, json_body=identifier)
        assert found.status == 200 and found.body["subject_ids"] == [], found.body
    # and the neighbours, in its tenant and the other, keep every item
    assert read_back(stack, key_a, NEIGHBOUR) == before_a and before_a[1] == texts_a
    assert read_back(stack, key_b, NEIGHBOUR) == before_b and before_b[1] == texts_b
    # and no table, index, object version or zip member of the stack's moto holds a value of the subject,
    # but the keyed hash its records keep
    subject_hash = record["subject_id"]
    assert subject_hash != SUBJECT and len(subject_hash) == 64
    assert_no_residue(values, allowed={subject_hash}, endpoint_url=moto)
