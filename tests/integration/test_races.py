"""Races between parallel writers (issue 7, items 2 and 3): handlers in separate processes, as parallel
Lambda instances, against one moto server. Each test fails if the status that guards a write is not
part of that write's own condition."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.template import Resolver
from tests.integration.helpers import call, new_tenant
from tests.integration.parallel import barrier, event, in_parallel, shared_aws_fixture

shared_aws = pytest.fixture(shared_aws_fixture, name="shared_aws")

PERSON = {"name": "Rae Race", "email": "rae.race@example.org"}


def _open_export(tenant: str) -> str:
    """An export request that stays open (no job is queued for it)."""
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.requests import new_request
    from chatsphere.models.requests import ExportDetails

    item = new_request(
        wiring().adapters.settings.get_settings(tenant), tenant, "u-1", datetime.now(UTC), ExportDetails()
    )
    wiring().adapters.requests.create(item)
    return item.request_id


def _extend(tenant: str, request_id: str, days: int, start: Any) -> tuple[int, Any]:
    start.wait(timeout=60)
    r = call("POST", f"/v1/requests/{request_id}/extension", tenant=tenant, body={"days": days, "reason": "r"})
    return r.status, r.body.get("extension")


def test_of_ten_parallel_extensions_exactly_one_succeeds(shared_aws: Resolver) -> None:
    # Given an open request
    tenant = new_tenant()[0]
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    request_id = _open_export(tenant)
    # When ten instances extend it at once, each by a different number of days
    go = barrier(10)
    answers = in_parallel([(_extend, (tenant, request_id, days, go)) for days in range(1, 11)])
    # Then exactly one succeeds and the other nine get 409, and the stored extension is the winner's
    assert Counter(status for status, _ in answers) == {200: 1, 409: 9}, answers
    (winner,) = [extension for status, extension in answers if status == 200]
    stored = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body
    assert stored["extension"]["days"] == winner["days"]


def _interaction_held_at_its_write(tenant: str, read_done: Any, release: Any) -> int:
    """POST an interaction, but stop just before its write reaches DynamoDB until `release` is set."""
    from chatsphere.dal.clients import client

    def hold(params: dict[str, Any], **_: Any) -> None:
        writes = [params] + [op.get("Put", {}) for op in params.get("TransactItems", [])]
        if any(w.get("Item", {}).get("sk", {}).get("S", "").startswith("I#") for w in writes):
            read_done.set()
            assert release.wait(timeout=60)

    events = client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.PutItem", hold)
    events.register("before-parameter-build.dynamodb.TransactWriteItems", hold)
    body = {"conversation_id": "c", "role": "customer", "text": "written after the deactivation"}
    return call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body).status


def _deactivate_when_read(tenant: str, read_done: Any, release: Any) -> int:
    assert read_done.wait(timeout=60)
    status = call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant).status
    release.set()
    return status


def test_an_interaction_that_passed_its_check_before_a_deactivation_is_not_stored_after_it(
    shared_aws: Resolver,
) -> None:
    # Given an active subject, and an interaction whose instance has checked that the subject is
    # active and is about to write
    tenant = new_tenant()[0]
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    read_done, release = event(), event()
    # When another instance deactivates the subject in that moment, and the write then goes ahead
    posted, deactivated = in_parallel(
        [
            (_interaction_held_at_its_write, (tenant, read_done, release)),
            (_deactivate_when_read, (tenant, read_done, release)),
        ]
    )
    # Then the deactivation stands, the interaction is refused, and nothing of it is stored
    assert deactivated == 200
    assert posted == 409
    table = shared_aws.refs["SubjectsTable"]
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    assert [i for i in items if i["sk"]["S"].startswith("I#")] == []


def _export_job_extended_midway(tenant: str, request_id: str) -> tuple[str, Any]:
    """Run the export job; while it builds the package, the request is extended (as by another instance)."""
    from chatsphere.bootstrap import wiring
    from chatsphere.dal.clients import client
    from chatsphere.logic import requests
    from chatsphere.logic.export import run_export
    from chatsphere.models.export import ExportJob
    from chatsphere.models.requests import ExtensionIn

    a = wiring().adapters

    def extend_now(**_: Any) -> None:
        body = ExtensionIn(days=7, reason="complex")
        requests.extend_request(wiring().requests, tenant, request_id, body, datetime.now(UTC))

    client("s3").meta.events.register_first("before-call.s3.PutObject", extend_now)  # the package, one part
    job = ExportJob(tenant_id=tenant, request_id=request_id)
    done = run_export(wiring().export, job, datetime.now(UTC))
    assert done is not None
    return done.status, a.requests.get(tenant, request_id)


def test_the_export_worker_never_undoes_an_extension_made_while_it_ran(shared_aws: Resolver) -> None:
    tenant = new_tenant()[0]
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    request_id = _open_export(tenant)
    before = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body
    ((status, _),) = in_parallel([(_export_job_extended_midway, (tenant, request_id))])
    after = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body
    assert status == "completed" and after["status"] == "completed"
    assert after["extension"] is not None and after["extension"]["days"] == 7
    due_before = datetime.fromisoformat(before["due_at"])
    assert datetime.fromisoformat(after["due_at"]) == due_before + timedelta(days=7)


def _export(tenant: str, start: Any) -> tuple[int, str]:
    start.wait(timeout=60)
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    return r.status, r.body["request_id"]


def test_of_eight_identical_parallel_exports_one_makes_a_record_and_a_job(shared_aws: Resolver) -> None:
    # Given a subject
    tenant = new_tenant()[0]
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    # When eight instances ask for the same export at once (a double click, retries)
    go = barrier(8)
    answers = in_parallel([(_export, (tenant, go)) for _ in range(8)])
    # Then one made the request (202) and the other seven answered that same open request (200)
    assert Counter(status for status, _ in answers) == {202: 1, 200: 7}, answers
    assert len({request_id for _, request_id in answers}) == 1
    # and there is one record and one job
    listed = call("GET", "/v1/requests", tenant=tenant, query="type=export").body["items"]
    assert [x["request_id"] for x in listed] == [answers[0][1]]
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=shared_aws.ref("ExportQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"
