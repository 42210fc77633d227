"""Deletion (the right to erasure) through the API and the Deletion function's queue, against moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.integration.helpers import call, new_tenant
from tests.integration.queues import drain
from tests.residue import SubjectValues, assert_no_residue, kinds, residue

KIB = 1024
PERSON = {
    "name": "Orla Erasmus",
    "email": "orla.erasmus@example.org",
    "phone": "+12015550177",
    "contact": {"telegram": "@orla_erasmus_5521"},
}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


def populate(tenant: str, subject: str = "u-1", texts: tuple[str, ...] = ("hello", "x" * (40 * KIB))) -> None:
    assert call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body=PERSON).status == 201
    for n, text in enumerate(texts):
        body = {"conversation_id": "c", "role": "customer", "text": text}
        headers = {"Idempotency-Key": f"k-{n}"}
        r = call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body=body, headers=headers)
        assert r.status == 201, r.body


def erase(aws: Any, tenant: str, subject: str = "u-1") -> dict[str, Any]:
    r = call("DELETE", f"/v1/subjects/{subject}", tenant=tenant)
    assert r.status == 202, r.body
    drain(aws, "DeletionQueue")
    record = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    assert isinstance(record, dict)
    return record


def partition(aws: Any, tenant: str, subject: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").query(
        TableName=aws.refs["SubjectsTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"T#{tenant}#S#{subject}"}},
    )["Items"]
    return list(items)


def test_an_erasure_removes_every_copy_and_signs_a_receipt(aws: Any, tenant: str) -> None:
    # Given a subject with a profile, interactions (one in S3), idempotency records and an export package
    populate(tenant)
    export = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    drain(aws, "ExportQueue")
    # When the tenant erases the subject
    record = erase(aws, tenant)
    # Then the request completes with a receipt that counts what each store held
    assert record["status"] == "completed", record
    receipt = record["result"]
    assert receipt["verified"] is True and not any(receipt["remaining"].values())
    removed = receipt["removed"]
    assert removed["profile"] == 1 and removed["interactions"] == 2 and removed["lookup_items"] == 2
    assert removed["idempotency_records"] == 2 and removed["data_key"] == 1
    assert removed["object_versions"] == 2  # the long text and the package
    assert set(receipt["steps"]) >= {"inventory", "key_destroyed", "items", "objects", "verified"}
    assert "lookup_digests" not in json.dumps(receipt) or receipt.get("lookup_digests") == []
    # and nothing of the subject is left in the partition, the key table, the idempotency table or the bucket
    assert partition(aws, tenant, "u-1") == []
    keys = boto3.client("dynamodb").scan(TableName=aws.refs["SubjectKeysTable"])["Items"]
    assert keys == []
    idempotency = boto3.client("dynamodb").scan(TableName=aws.refs["IdempotencyTable"])["Items"]
    assert idempotency == []
    listed = boto3.client("s3").list_object_versions(Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant}/")
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []
    # and the records keep their proof, with a keyed hash where the subject id was
    for request_id in (record["request_id"], export.body["request_id"]):
        kept = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body
        assert kept["subject_id"] != "u-1" and len(kept["subject_id"]) == 64
    assert (
        call("GET", "/v1/requests", tenant=tenant, query="type=deletion").body["items"][0]["subject_id"]
        == (record["subject_id"])
    )


def test_every_route_of_an_erased_subject_answers_410_naming_the_deletion(aws: Any, tenant: str) -> None:
    populate(tenant)
    record = erase(aws, tenant)
    body = {"conversation_id": "c", "role": "customer", "text": "a replay of yesterday"}
    answers = [
        call("GET", "/v1/subjects/u-1", tenant=tenant),
        call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON),
        call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "X"}),
        call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body),
        call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body, headers={"Idempotency-Key": "k-0"}),
        call("GET", "/v1/subjects/u-1/interactions", tenant=tenant),
        call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}),
        call("PUT", "/v1/subjects/u-1/objections/analytics", tenant=tenant),
        call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant),
        call("DELETE", "/v1/subjects/u-1", tenant=tenant),
    ]
    for r in answers:
        assert r.status == 410, r.body
        assert r.body["request_id"] == record["request_id"]
        assert r.headers["content-type"].startswith("application/problem+json")
    # and lookups by the old email or phone find nobody
    for identifier in ({"email": PERSON["email"]}, {"phone": PERSON["phone"]}):
        assert call("POST", "/v1/subject-lookups", tenant=tenant, body=identifier).body["subject_ids"] == []
    # and nothing was written by any of those calls
    assert partition(aws, tenant, "u-1") == []


def test_an_erased_id_may_be_reused_only_explicitly_and_shares_nothing(aws: Any, tenant: str) -> None:
    populate(tenant)
    erase(aws, tenant)
    again = call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Someone Else"})
    assert again.status == 410
    reused = call(
        "PUT",
        "/v1/subjects/u-1",
        tenant=tenant,
        body={"name": "Someone Else"},
        headers={"Reuse-Erased-Subject-Id": "true"},
    )
    assert reused.status == 201 and reused.body["name"] == "Someone Else" and reused.body.get("email") is None
    assert call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).body["items"] == []


def test_from_acceptance_the_subject_is_closed_and_a_second_delete_returns_the_open_record(
    aws: Any, tenant: str
) -> None:
    populate(tenant)
    first = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    assert first.status == 202 and first.body["type"] == "deletion" and first.body["status"] == "received"
    assert first.headers.get("cache-control") == "no-store"
    second = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    assert second.status == 200 and second.body["request_id"] == first.body["request_id"]
    body = {"conversation_id": "c", "role": "customer", "text": "too late"}
    for r in (
        call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body),
        call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "X"}),
        call("PUT", "/v1/subjects/u-1/objections/analytics", tenant=tenant),
        call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}),
        call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON),
    ):
        assert r.status == 409 and r.body["request_id"] == first.body["request_id"], r.body
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=aws.refs["DeletionQueue"], AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"  # one job, not two


def test_unknown_or_another_tenants_subject_is_404_and_leaves_no_record(aws: Any, tenant: str) -> None:
    other = new_tenant("Globex")[0]
    populate(other)
    for subject in ("u-1", "nobody"):
        assert call("DELETE", f"/v1/subjects/{subject}", tenant=tenant).status == 404
    assert call("GET", "/v1/requests", tenant=tenant).body["items"] == []
    assert call("GET", "/v1/subjects/u-1", tenant=other).status == 200


def test_an_erasure_leaves_other_subjects_and_tenants_untouched(aws: Any, tenant: str) -> None:
    other_tenant = new_tenant("Globex")[0]
    populate(tenant, "u-1")
    populate(tenant, "u-10")
    populate(other_tenant, "u-1")
    before_neighbour = len(partition(aws, tenant, "u-10"))
    erase(aws, tenant, "u-1")
    assert len(partition(aws, tenant, "u-10")) == before_neighbour
    assert len(partition(aws, other_tenant, "u-1")) == before_neighbour
    assert call("GET", "/v1/subjects/u-10/interactions", tenant=tenant).body["items"][0]["text"] == "hello"
    assert call("GET", "/v1/subjects/u-1", tenant=other_tenant).status == 200


def test_open_exports_of_the_subject_are_cancelled(aws: Any, tenant: str) -> None:
    populate(tenant)
    export = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    record = erase(aws, tenant)  # the export's message is still queued
    assert record["result"]["removed"]["exports_cancelled"] == 1
    cancelled = call("GET", f"/v1/requests/{export.body['request_id']}", tenant=tenant).body
    assert cancelled["status"] == "rejected" and "erased" in cancelled["result"]["reason"]
    drain(aws, "ExportQueue")  # the job finds it closed and writes nothing
    listed = boto3.client("s3").list_object_versions(Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant}/")
    assert listed.get("Versions", []) == []


def test_subject_deleted_is_published_for_the_tenants_processors(aws: Any, tenant: str) -> None:
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    watcher = sqs.create_queue(QueueName="deleted-watcher")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=watcher, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = aws.refs["EventBus"]
    events.put_rule(Name="deleted", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["SubjectDeleted"]}))
    events.put_targets(Rule="deleted", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    populate(tenant)
    record = erase(aws, tenant)
    (message,) = sqs.receive_message(QueueUrl=watcher, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert detail["tenant_id"] == tenant and detail["subject_id"] == "u-1"
    assert detail["request_id"] == record["request_id"] and detail["deleted_at"]
    assert set(detail) == {"tenant_id", "subject_id", "request_id", "deleted_at"}


# ------------------------------------------------------------ residue, continuations, faults
TEXTS = ('Orla\'s first message: quelle idée, "quoted"', "O" * 20 + " long text in S3 " + "r" * (40 * KIB))


def values(subject: str = "u-1") -> SubjectValues:
    return SubjectValues.from_profile(subject, PERSON, list(TEXTS))


def erased_hash(tenant: str, subject: str) -> str:
    from chatsphere.bootstrap import wiring

    return wiring().adapters.tombstones.hash(tenant, subject)


def test_after_an_erasure_no_value_of_the_subject_is_anywhere(aws: Any, tenant: str) -> None:
    # Given a subject with text in S3, an export package (JSON and CSV) and a neighbour who stays
    populate(tenant, "u-1", TEXTS)
    populate(tenant, "u-2", ("the neighbour stays",))
    for fmt in ("json", "csv"):
        call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": fmt})
    drain(aws, "ExportQueue")
    assert kinds(residue(values(), resolver=aws)) >= {"name", "email", "subject_id"}  # the packages hold them
    # When the subject is erased
    assert erase(aws, tenant)["status"] == "completed"
    # Then no table, index, object version or zip member holds any of its values, but its keyed hash
    assert_no_residue(values(), allowed={erased_hash(tenant, "u-1")}, resolver=aws)
    assert call("GET", "/v1/subjects/u-2/interactions", tenant=tenant).body["items"][0]["text"] == "the neighbour stays"


def test_a_long_erasure_continues_through_its_queue_and_counts_each_item_once(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatsphere.config import get_config

    # Many continuations without posting thousands of interactions: the handler reads its chunk from the
    # environment, as the local stack's tests set it (the aws fixture clears the cached config afterwards).
    monkeypatch.setenv("DELETION_CHUNK", "3")
    get_config.cache_clear()
    assert get_config().deletion_chunk == 3
    texts = (*(f"message {n}" for n in range(11)), "L" * (40 * KIB))
    populate(tenant, "u-1", texts)
    sent: list[str] = []
    from chatsphere.dal.clients import client

    client("sqs").meta.events.register(
        "before-parameter-build.sqs.SendMessage", lambda params, **_: sent.append(params["QueueUrl"])
    )
    record = erase(aws, tenant)
    assert record["status"] == "completed"
    assert sent.count(aws.refs["DeletionQueue"]) >= 5  # the request, then continuations
    removed = record["result"]["removed"]
    assert removed["interactions"] == 12 and removed["idempotency_records"] == 12 and removed["object_versions"] == 1
    assert partition(aws, tenant, "u-1") == []


def _populated_for_faults(aws: Any, tenant: str) -> str:
    populate(tenant, "u-1", ("short", "S" * (40 * KIB)))
    call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    drain(aws, "ExportQueue")
    r = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    assert r.status == 202
    return str(r.body["request_id"])


class _FailAt:
    """Fails the k-th AWS call any client makes (after arming), as a crash or a throttle would."""

    def __init__(self, k: int) -> None:
        self.k, self.calls = k, 0

    def __call__(self, **_: Any) -> None:
        self.calls += 1
        if self.calls == self.k:
            raise ConnectionError(f"injected failure at call {self.k}")


def _run_job(aws: Any, tenant: str, request_id: str) -> str:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import deletion
    from chatsphere.models.common import utc_now
    from chatsphere.models.deletion import DeletionJob

    ports = wiring().deletion
    return deletion.run_deletion(ports, DeletionJob(tenant_id=tenant, request_id=request_id), utc_now(), chunk=2)


def test_an_erasure_failed_at_any_aws_call_and_rerun_removes_everything_and_counts_each_item_once(
    aws: Any,
) -> None:
    from chatsphere.dal.clients import client

    # The number of calls of one uninterrupted job, from a subject like the ones below
    tenant = new_tenant("Probe")[0]
    request_id = _populated_for_faults(aws, tenant)
    counter = _FailAt(k=0)
    for service in ("dynamodb", "s3", "sqs", "events", "kms"):
        client(service).meta.events.register("before-call", counter)
    while _run_job(aws, tenant, request_id) == "continue":
        pass
    total = counter.calls
    expected = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body["result"]["removed"]
    assert total > 20
    for k in range(1, total + 1):
        tenant = new_tenant(f"Fault {k}")[0]
        request_id = _populated_for_faults(aws, tenant)
        counter.k, counter.calls = k, 0
        outcome = None
        for _ in range(total + 5):  # rerun (as SQS redelivers) until the job is done
            try:
                outcome = _run_job(aws, tenant, request_id)
            except ConnectionError:
                continue
            if outcome in ("done", "skipped"):
                break
        record = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body
        assert record["status"] == "completed", (k, record)
        assert record["result"]["removed"] == expected, k
        assert partition(aws, tenant, "u-1") == [], k
        listed = boto3.client("s3").list_object_versions(Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant}/")
        assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == [], k
    counter.k = 0


# ------------------------------------------------------------ legal holds
def test_a_hold_on_interactions_keeps_them_and_their_key_and_completes_with_exceptions(aws: Any, tenant: str) -> None:
    populate(tenant, "u-1", TEXTS)
    hold = call(
        "PUT", "/v1/subjects/u-1/legal-hold", tenant=tenant, body={"reason": "Case 117", "categories": ["interactions"]}
    )
    assert hold.status == 200 and hold.body["legal_hold"]["categories"] == ["interactions"]
    record = erase(aws, tenant)
    assert record["status"] == "completed_with_exceptions", record
    receipt = record["result"]
    assert receipt["held"] == ["interactions"]
    assert receipt["kept"] == {"interactions": 2, "profile": 1, "object_versions": 1, "data_key": 1}
    assert hold.body["legal_hold"]["request_id"] in receipt["kept_because"]
    assert receipt["removed"]["lookup_items"] == 2 and receipt["removed"]["data_key"] == 0
    # what the hold does not cover is gone: the profile's values, the lookups
    assert call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": PERSON["email"]}).body["subject_ids"] == []
    scan = residue(SubjectValues.from_profile("u-1", PERSON, []), resolver=aws)
    assert kinds(scan) <= {"subject_id"}, [str(f) for f in scan]
    # the subject is restricted while the hold stands: what it kept is read, a new deletion is refused
    restricted = call("GET", "/v1/subjects/u-1", tenant=tenant)
    assert restricted.status == 200 and restricted.body["status"] == "restricted" and restricted.body["name"] is None
    again = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    assert again.status == 409 and again.body["type"].endswith("/subject-restricted")
    assert again.body["request_id"] == record["request_id"]


def test_lifting_the_hold_completes_the_erasure_by_itself_with_a_linked_record(aws: Any, tenant: str) -> None:
    populate(tenant, "u-1", TEXTS)
    call("PUT", "/v1/subjects/u-1/legal-hold", tenant=tenant, body={"reason": "Case 117"})
    first = erase(aws, tenant)
    assert first["status"] == "completed_with_exceptions"
    assert first["result"]["kept"]["profile"] == 1 and first["result"]["kept"]["lookup_items"] == 2
    lifted = call("DELETE", "/v1/subjects/u-1/legal-hold", tenant=tenant)
    assert lifted.status == 202 and lifted.body["type"] == "deletion", lifted.body
    assert lifted.body["details"] == {"initiated_by": "hold_lifted", "follows": first["request_id"]}
    drain(aws, "DeletionQueue")
    second = call("GET", f"/v1/requests/{lifted.body['request_id']}", tenant=tenant).body
    assert second["status"] == "completed" and second["result"]["removed"]["interactions"] == 2
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).status == 410
    assert_no_residue(values(), allowed={erased_hash(tenant, "u-1")}, resolver=aws)
    holds = call("GET", "/v1/requests", tenant=tenant, query="type=legal_hold").body["items"]
    assert sorted(h["details"]["action"] for h in holds) == ["lift", "place"]


def test_a_hold_is_shown_recorded_and_validated(aws: Any, tenant: str) -> None:
    populate(tenant, "u-1", ("hi there",))
    for bad in (
        {},
        {"reason": ""},
        {"reason": "x", "categories": []},
        {"reason": "x", "categories": ["all"]},
        {"reason": "x", "categories": ["profile", "profile"]},
    ):
        assert call("PUT", "/v1/subjects/u-1/legal-hold", tenant=tenant, body=bad).status == 422, bad
    assert call("DELETE", "/v1/subjects/u-1/legal-hold", tenant=tenant).status == 404  # none to lift
    call("PUT", "/v1/subjects/u-1/legal-hold", tenant=tenant, body={"reason": "Audit 9"})
    shown = call("GET", "/v1/subjects/u-1", tenant=tenant).body["legal_hold"]
    assert shown["reason"] == "Audit 9" and shown["categories"] == ["interactions", "profile"]
    lifted = call("DELETE", "/v1/subjects/u-1/legal-hold", tenant=tenant)
    assert lifted.status == 200 and lifted.body["legal_hold"] is None


def test_an_erasure_that_keeps_failing_lands_in_the_dlq_and_its_record_says_failed(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatsphere.logic import deletion

    def broken(self: Any) -> bool:
        raise ConnectionError("the key table is unreachable")

    monkeypatch.setattr(deletion._Run, "_key_destroyed", broken)
    populate(tenant, "u-1", ("hello",))
    record = erase(aws, tenant)
    assert record["status"] == "failed" and "failed repeatedly" in record["result"]["reason"]
    sqs = boto3.client("sqs")
    dead = sqs.receive_message(QueueUrl=aws.refs["DeletionDeadLetterQueue"], MaxNumberOfMessages=10).get("Messages", [])
    expected = {"tenant_id": tenant, "request_id": record["request_id"], "scope": "subject"}
    assert [json.loads(m["Body"]) for m in dead] == [expected]
    # the subject stays closed, and asking again starts a new deletion
    monkeypatch.undo()
    again = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    assert again.status == 202 and again.body["details"]["follows"] == record["request_id"]
    drain(aws, "DeletionQueue")
    assert call("GET", f"/v1/requests/{again.body['request_id']}", tenant=tenant).body["status"] == "completed"


def key_row(aws: Any, tenant: str, subject: str) -> dict[str, Any] | None:
    found = boto3.client("dynamodb").get_item(
        TableName=aws.refs["SubjectKeysTable"], Key={"pk": {"S": f"T#{tenant}#S#{subject}"}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = found.get("Item")
    return item


def test_a_create_refused_by_the_ids_tombstone_stores_neither_profile_nor_key(aws: Any, tenant: str) -> None:
    # Given an id that never had a profile here, whose tombstone says an erasure runs (the create transaction's
    # ConditionCheck, not a read before it, is what refuses it)
    from chatsphere.bootstrap import wiring
    from chatsphere.models.items import TombstoneItem

    running = TombstoneItem(
        tenant_id=tenant, subject_hash=erased_hash(tenant, "u-9"), request_id="r-9", started_at="2026-01-01T00:00:00Z"
    )
    wiring().adapters.tombstone_store.put_tombstone(running)
    reuse = {"Reuse-Erased-Subject-Id": "true"}
    # When the tenant puts a subject under it, reusing the id or not
    # Then it is 409 erasure-in-progress either way, naming the deletion, and nothing is stored
    for headers in ({}, reuse):
        r = call("PUT", "/v1/subjects/u-9", tenant=tenant, body={"name": "Someone"}, headers=headers)
        assert r.status == 409 and r.body["type"].endswith("/erasure-in-progress"), r.body
        assert r.body["request_id"] == "r-9"
    assert partition(aws, tenant, "u-9") == [] and key_row(aws, tenant, "u-9") is None
    # And once the erasure completed: 410 without the header, still nothing stored; 201 with it, and its own key
    wiring().adapters.tombstone_store.put_tombstone(running.model_copy(update={"deleted_at": "2026-01-02T00:00:00Z"}))
    r = call("PUT", "/v1/subjects/u-9", tenant=tenant, body={"name": "Someone"})
    assert r.status == 410 and r.body["request_id"] == "r-9", r.body
    assert partition(aws, tenant, "u-9") == [] and key_row(aws, tenant, "u-9") is None
    r = call("PUT", "/v1/subjects/u-9", tenant=tenant, body={"name": "Someone"}, headers=reuse)
    assert r.status == 201 and r.body["name"] == "Someone", r.body
    assert key_row(aws, tenant, "u-9") is not None


def test_a_put_refused_for_an_erased_id_leaves_no_key_behind(aws: Any, tenant: str) -> None:
    populate(tenant)
    erase(aws, tenant)
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Someone Else"}).status == 410
    assert key_row(aws, tenant, "u-1") is None and partition(aws, tenant, "u-1") == []
