"""A legal hold against the erasure it constrains (issue 14, items 2 and 3), through the API and the real
Deletion logic against moto.

Item 3: a subject whose erasure completed with exceptions is `restricted` (GDPR art. 18): what the hold kept is
read and exported, every write is a 409 that names the deletion, and lifting the hold completes the erasure.
Item 2: however a lift interleaves with the job (before its inventory, between inventory and completion, or
racing the completing write either way), everything ends erased, every receipt is true and the records link."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.integration.helpers import call, new_tenant, snapshot
from tests.integration.queues import drain
from tests.residue import SubjectValues, assert_no_residue

KIB = 1024
PERSON = {"name": "Hilde Holdfast", "email": "hilde.holdfast@example.org", "phone": "+12015550188"}
TEXTS = ("Hilde's first message, kept for case 117", "H" * 20 + " long text kept in S3 " + "h" * (40 * KIB))
RESTRICTED = "https://chatsphere.dev/problems/subject-restricted"
# What a subject with its profile, two lookups, two interactions (one in S3) and two idempotency records holds.
EVERYTHING = {"profile": 1, "interactions": 2, "lookup_items": 2, "object_versions": 1, "idempotency_records": 2}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Holdings")[0]


def populate(tenant: str, subject: str = "u-1") -> None:
    assert call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body=PERSON).status == 201
    for n, text in enumerate(TEXTS):
        body = {"conversation_id": "c", "role": "customer", "text": text}
        r = call(
            "POST",
            f"/v1/subjects/{subject}/interactions",
            tenant=tenant,
            body=body,
            headers={"Idempotency-Key": f"k{n}"},
        )
        assert r.status == 201, r.body


def hold(tenant: str, categories: list[str] | None = None) -> str:
    body: dict[str, Any] = {"reason": "Case 117"} | ({"categories": categories} if categories else {})
    r = call("PUT", "/v1/subjects/u-1/legal-hold", tenant=tenant, body=body)
    assert r.status == 200, r.body
    return str(r.body["legal_hold"]["request_id"])


def record(tenant: str, request_id: str) -> dict[str, Any]:
    body = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body
    assert isinstance(body, dict)
    return body


def deletions(tenant: str) -> list[dict[str, Any]]:
    items = call("GET", "/v1/requests", tenant=tenant, query="type=deletion").body["items"]
    return sorted(items, key=lambda r: r["received_at"])


def run_job(tenant: str, request_id: str) -> None:
    """The Deletion function's logic, invocation after invocation (as its continuations are), to the end."""
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import deletion
    from chatsphere.models.common import utc_now
    from chatsphere.models.deletion import DeletionJob

    ports = wiring().deletion
    job = DeletionJob(tenant_id=tenant, request_id=request_id)
    for _ in range(50):
        if deletion.run_deletion(ports, job, utc_now(), chunk=2) != "continue":
            return
    raise AssertionError("the erasure did not end")


def assert_erased(aws: Any, tenant: str) -> None:
    """Every route answers 410 and no store holds any value of the subject (but its keyed hash)."""
    from chatsphere.bootstrap import wiring

    drain(aws, "DeletionQueue")  # whatever is queued still: a follow-up, or a message of a record now closed
    assert all(r["status"] in ("completed", "completed_with_exceptions") for r in deletions(tenant))
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).status == 410
    assert call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).status == 410
    values = SubjectValues.from_profile("u-1", PERSON, list(TEXTS))
    assert_no_residue(values, allowed={wiring().adapters.tombstones.hash(tenant, "u-1")}, resolver=aws)


def completed_receipt(tenant: str, request_id: str) -> dict[str, Any]:
    """A deletion that erased everything in one record, hold lifted midway: its receipt counts each item once."""
    done = record(tenant, request_id)
    assert done["status"] == "completed", done
    receipt = done["result"]
    assert receipt["kept"] == {} and receipt.get("kept_because") is None and receipt["verified"] is True
    assert {k: receipt["removed"].get(k) for k in EVERYTHING} == EVERYTHING
    assert receipt["removed"]["data_key"] == 1
    return dict(receipt)


# ------------------------------------------------------------------ item 3: restricted
def test_a_restricted_subject_is_read_and_exported_refuses_every_write_and_a_lift_erases_it(
    aws: Any, tenant: str
) -> None:
    # Given a subject under a hold on everything, whose erasure completed with exceptions
    populate(tenant)
    hold(tenant)
    deleting = call("DELETE", "/v1/subjects/u-1", tenant=tenant).body["request_id"]
    drain(aws, "DeletionQueue")
    assert record(tenant, deleting)["status"] == "completed_with_exceptions"
    # Then the subject shows as restricted, with its hold, and what the hold kept can be read
    subject = call("GET", "/v1/subjects/u-1", tenant=tenant)
    assert subject.status == 200, subject.body
    assert subject.body["status"] == "restricted" and subject.body["legal_hold"]["reason"] == "Case 117"
    assert subject.body["name"] == PERSON["name"] and subject.body["email"] == PERSON["email"]
    page = call("GET", "/v1/subjects/u-1/interactions", tenant=tenant)
    assert page.status == 200 and [i["text"] for i in page.body["items"]] == list(TEXTS)
    # and exported
    export = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    assert export.status == 202, export.body
    drain(aws, "ExportQueue")
    exported = record(tenant, export.body["request_id"])
    assert exported["status"] == "completed" and exported["result"]["interaction_count"] == 2
    package = boto3.client("s3").get_object(
        Bucket=aws.refs["DataBucket"], Key=f"tenants/{tenant}/subjects/u-1/exports/{export.body['request_id']}.zip"
    )
    with zipfile.ZipFile(io.BytesIO(package["Body"].read())) as zf:
        assert json.loads(zf.read("subject.json"))["status"] == "restricted"
    # and every write is refused with the restricted problem naming the deletion, and writes nothing
    before = snapshot()
    interaction = {"conversation_id": "c", "role": "customer", "text": "not while restricted"}
    refused = [
        call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON),
        call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "X"}),
        call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=interaction),
        call(
            "POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=interaction, headers={"Idempotency-Key": "n"}
        ),
        call("PUT", "/v1/subjects/u-1/objections/analytics", tenant=tenant),
        call("DELETE", "/v1/subjects/u-1/objections/analytics", tenant=tenant),
        call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant),
        call("DELETE", "/v1/subjects/u-1/deactivation", tenant=tenant),
        call("PUT", "/v1/subjects/u-1/legal-hold", tenant=tenant, body={"reason": "another"}),
        call("DELETE", "/v1/subjects/u-1", tenant=tenant),
    ]
    for r in refused:
        assert r.status == 409, r.body
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.body["type"] == RESTRICTED and r.body["request_id"] == deleting, r.body
        assert "legal hold" in r.body["detail"]
    assert snapshot() == before
    # When the hold is lifted
    lifted = call("DELETE", "/v1/subjects/u-1/legal-hold", tenant=tenant)
    # Then a deletion that follows the first erases the rest, and every route answers 410
    assert lifted.status == 202 and lifted.body["details"] == {"initiated_by": "hold_lifted", "follows": deleting}
    assert_erased(aws, tenant)
    second = record(tenant, lifted.body["request_id"])
    assert second["status"] == "completed" and second["result"]["removed"]["interactions"] == 2
    assert [d["request_id"] for d in deletions(tenant)] == [deleting, lifted.body["request_id"]]
    for r in (
        call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}),
        call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "X"}),
        call("DELETE", "/v1/subjects/u-1/legal-hold", tenant=tenant),
    ):
        assert r.status == 410 and r.body["request_id"] == lifted.body["request_id"], r.body


def test_a_subject_restricted_for_its_interactions_shows_no_profile_value_and_lists_what_was_kept(
    aws: Any, tenant: str
) -> None:
    populate(tenant)
    hold(tenant, ["interactions"])
    call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    drain(aws, "DeletionQueue")
    subject = call("GET", "/v1/subjects/u-1", tenant=tenant).body
    assert subject["status"] == "restricted" and subject["legal_hold"]["categories"] == ["interactions"]
    assert all(subject.get(field) is None for field in ("name", "email", "phone", "contact"))
    page = call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).body
    assert [i["text"] for i in page["items"]] == list(TEXTS)
    assert call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": PERSON["email"]}).body["subject_ids"] == []


# ------------------------------------------------------------------ item 2: a lift against the running erasure
def _start_erasure(tenant: str) -> tuple[str, str]:
    """A held subject whose deletion is accepted (its message queued, no job run yet): (hold, deletion) ids."""
    populate(tenant)
    placed = hold(tenant)
    r = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    assert r.status == 202
    return placed, str(r.body["request_id"])


def _lift(tenant: str, running: str) -> None:
    """Lift the hold while the deletion runs: 202 with that deletion, which completes the erasure by itself."""
    lifted = call("DELETE", "/v1/subjects/u-1/legal-hold", tenant=tenant)
    assert lifted.status == 202 and lifted.body["request_id"] == running, lifted.body


def test_a_hold_lifted_before_the_inventory_leaves_nothing_to_keep(aws: Any, tenant: str) -> None:
    _, deleting = _start_erasure(tenant)
    _lift(tenant, deleting)
    run_job(tenant, deleting)
    receipt = completed_receipt(tenant, deleting)
    assert "hold_lifted" not in receipt["steps"]  # it never held anything
    assert_erased(aws, tenant)
    assert len(deletions(tenant)) == 1


def test_a_hold_lifted_between_the_inventory_and_the_completion_is_seen_and_everything_goes(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatsphere.logic import deletion

    # Given an erasure that took its inventory under the hold (it keeps everything) and goes on with its steps
    _, deleting = _start_erasure(tenant)
    original = deletion._Run._key_destroyed
    lifted: list[bool] = []

    def lift_after_inventory(self: Any) -> bool:
        if not lifted:  # the competing write, at the step after the inventory
            assert self.receipt.held == ["interactions", "profile"]
            lifted.append(True)
            _lift(tenant, deleting)
        return original(self)

    monkeypatch.setattr(deletion._Run, "_key_destroyed", lift_after_inventory)
    # When the hold is lifted then, and the job runs to its end
    run_job(tenant, deleting)
    assert lifted
    # Then the same deletion erased everything, its receipt counting each item once and saying the hold went
    receipt = completed_receipt(tenant, deleting)
    assert "hold_lifted" in receipt["steps"] and "held_inventory" in receipt["steps"]
    assert_erased(aws, tenant)
    assert len(deletions(tenant)) == 1


def _hook_before_completing_write(hook: Callable[[], None]) -> list[bool]:
    """Run `hook` once, just before the DynamoDB write that completes a deletion with exceptions reaches moto."""
    from chatsphere.dal.clients import client

    fired: list[bool] = []

    def completing(params: dict[str, Any]) -> bool:
        updates = [params] + [op.get("Update", {}) for op in params.get("TransactItems", [])]
        return any(
            u.get("ExpressionAttributeValues", {}).get(":status") in ({"S": "completed_with_exceptions"},)
            for u in updates
        )

    def before(params: dict[str, Any], **_: Any) -> None:
        if not fired and completing(params):
            fired.append(True)
            hook()

    events = client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.UpdateItem", before)
    events.register("before-parameter-build.dynamodb.TransactWriteItems", before)
    return fired


def test_a_lift_that_lands_just_before_the_completing_write_makes_the_erasure_go_on(aws: Any, tenant: str) -> None:
    # Given an erasure about to complete with exceptions for the hold it inventoried
    _, deleting = _start_erasure(tenant)
    # When the hold is lifted in that very moment (the job has read everything it decides on)
    fired = _hook_before_completing_write(lambda: _lift(tenant, deleting))
    run_job(tenant, deleting)
    assert fired
    # Then the completing write does not keep data for a hold that is gone: the erasure goes on, in the same record
    completed_receipt(tenant, deleting)
    assert_erased(aws, tenant)
    assert len(deletions(tenant)) == 1


def test_a_completion_that_lands_just_before_the_lifts_write_makes_the_lift_open_the_follow_up(
    aws: Any, tenant: str
) -> None:
    from chatsphere.dal.clients import client

    # Given a held subject whose erasure has done every step but the completion
    placed, deleting = _start_erasure(tenant)
    fired: list[bool] = []

    def complete_first(params: dict[str, Any], **_: Any) -> None:
        writes = [op.get("Put", {}).get("Item", {}) for op in params.get("TransactItems", [])]
        lifting = any(w.get("type") == {"S": "legal_hold"} for w in writes)
        if lifting and not fired:  # the lift has read the profile (erasing, held) and is about to write
            fired.append(True)
            run_job(tenant, deleting)  # the erasure completes with exceptions in between

    client("dynamodb").meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", complete_first)
    # When the hold is lifted, racing that completion
    lifted = call("DELETE", "/v1/subjects/u-1/legal-hold", tenant=tenant)
    assert fired
    # Then the first deletion's receipt is true (it kept everything, for the hold that stood when it finished)
    first = record(tenant, deleting)
    assert first["status"] == "completed_with_exceptions" and placed in first["result"]["kept_because"]
    assert first["result"]["held_by"] == placed and "hold_lifted" not in first["result"]["steps"]
    assert first["result"]["kept"] == {
        "profile": 1,
        "interactions": 2,
        "lookup_items": 2,
        "object_versions": 1,
        "data_key": 1,
    }
    # and the lift, which lost the race for the profile, read it again and opened the deletion that follows
    assert lifted.status == 202 and lifted.body["details"] == {"initiated_by": "hold_lifted", "follows": deleting}
    assert_erased(aws, tenant)
    second = record(tenant, lifted.body["request_id"])
    removed = second["result"]["removed"]
    assert {k: removed[k] for k in ("profile", "interactions", "lookup_items", "object_versions", "data_key")} == (
        first["result"]["kept"]
    )
    assert [d["request_id"] for d in deletions(tenant)] == [deleting, lifted.body["request_id"]]
