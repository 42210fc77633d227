"""Knowing when a request is done, and why it failed, on moto through the local gateway and workers:
RightsRequestStatusChanged events on the stack's bus (delivered by an EventBridge rule, as a tenant's would be),
the 202's Location and Retry-After, and a failed delivery's `result.error`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local.workers import EventLog, subscribe_status_events
from tests.integration.helpers import call
from tests.integration.queues import drain

KEYS = {"tenant_id", "request_id", "type", "status", "time"}
DESTINATION = "s3://chatsphere-portability-absent/in"


@pytest.fixture
def tenant(aws: Any) -> str:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant

    created, _ = create_tenant(wiring().tenants, "Acme")
    return created.tenant_id


@pytest.fixture
def event_log(aws: Any, tmp_path: Path) -> EventLog:
    """The local stack's event log: the rule, its queue and the worker that writes events.log."""
    return EventLog(subscribe_status_events(aws), tmp_path / "events.log")


def logged(log: EventLog) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    while log.poll_once(sqs):
        pass
    if not log.path.exists():
        return []
    return [json.loads(line) for line in log.path.read_text().splitlines()]


def subject(tenant: str, sid: str = "u-1") -> None:
    body = {"name": "Ada Lovelace", "email": "ada@example.com"}
    assert call("PUT", f"/v1/subjects/{sid}", tenant=tenant, body=body).status == 201
    said = {"conversation_id": "c", "role": "customer", "text": "hi"}
    assert call("POST", f"/v1/subjects/{sid}/interactions", tenant=tenant, body=said).status == 201


def test_a_full_export_emits_received_in_progress_completed_in_order_with_ids_only(
    tenant: str, aws: Any, event_log: EventLog
) -> None:
    subject(tenant)
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    assert r.status == 202
    drain(aws, "ExportQueue")
    events = [e for e in logged(event_log) if e["detail"]["request_id"] == r.body["request_id"]]
    assert [e["detail"]["status"] for e in events] == ["received", "in_progress", "completed"]
    for event in events:
        assert event["detail-type"] == "RightsRequestStatusChanged" and event["source"] == "chatsphere.privacy"
        assert set(event["detail"]) == KEYS
        assert (event["detail"]["tenant_id"], event["detail"]["type"]) == (tenant, "export")
        text = json.dumps(event)
        assert "u-1" not in text and "ada@example.com" not in text and "Ada" not in text


def test_an_erasure_logs_its_status_events_and_its_subject_deleted_event(
    tenant: str, aws: Any, event_log: EventLog
) -> None:
    subject(tenant)
    r = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
    assert r.status == 202
    drain(aws, "DeletionQueue")
    events = logged(event_log)
    statuses = [e["detail"]["status"] for e in events if e["detail-type"] == "RightsRequestStatusChanged"]
    deleted = [e for e in events if e["detail-type"] == "SubjectDeleted"]
    assert statuses[0] == "received" and statuses[-1] == "completed"
    assert len(deleted) == 1, events
    assert deleted[0]["detail"]["request_id"] == r.body["request_id"]
    assert deleted[0]["detail"]["tenant_id"] == tenant


def test_a_rule_on_the_tenant_id_sees_that_tenant_alone(tenant: str, aws: Any) -> None:
    """The subscription the README gives a tenant: detail-type and its own tenant_id."""
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant

    other = create_tenant(wiring().tenants, "Globex")[0].tenant_id
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="tenant-webhook-stand-in")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"detail-type": ["RightsRequestStatusChanged"], "detail": {"tenant_id": [tenant]}}
    bus = aws.ref("EventBus")
    events.put_rule(Name="tenant-rule", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="tenant-rule", EventBusName=bus, Targets=[{"Id": "webhook", "Arn": arn}])
    subject(tenant)
    subject(other)
    call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant)
    call("POST", "/v1/subjects/u-1/deactivation", tenant=other)
    got = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert [(e["detail"]["tenant_id"], e["detail"]["type"], e["detail"]["status"]) for e in got] == [
        (tenant, "deactivation", "completed")
    ]


def test_the_local_stack_waits_one_second_for_every_job(aws: Any) -> None:
    import os

    # its jobs finish in under a second (infra/provision.LOCAL_PARAMETERS)
    assert [os.environ[f"RETRY_AFTER_{job}"] for job in ("EXPORT", "DELETION", "OFFBOARDING")] == ["1", "1", "1"]


@pytest.mark.parametrize(
    ("method", "path", "body", "variable"),
    [
        ("POST", "/v1/subjects/u-1/exports", {"format": "json"}, "RETRY_AFTER_EXPORT"),
        ("DELETE", "/v1/subjects/u-1", None, "RETRY_AFTER_DELETION"),
    ],
)
def test_a_202_says_where_and_when_to_poll(
    tenant: str, aws: Any, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: Any, variable: str
) -> None:
    from chatsphere.config import get_config

    # Given a deployment whose jobs of this type take about 17 s (the template's parameter for the job type)
    subject(tenant)
    monkeypatch.setenv(variable, "17")
    get_config.cache_clear()
    try:
        r = call(method, path, tenant=tenant, body=body)
    finally:
        monkeypatch.undo()
        get_config.cache_clear()
    assert r.status == 202
    headers = {k.lower(): v for k, v in r.headers.items()}
    assert headers["location"] == f"/v1/requests/{r.body['request_id']}"  # the local gateway serves at the root
    assert headers["retry-after"] == "17"
    polled = call("GET", headers["location"], tenant=tenant)
    assert polled.status == 200 and polled.body["request_id"] == r.body["request_id"]


def test_behind_a_stage_the_location_keeps_the_stage(tenant: str, aws: Any) -> None:
    """On an execute-api URL the request's path starts with /<stage>: so does the Location."""
    subject(tenant)

    def staged(event: dict[str, Any]) -> None:
        event["requestContext"]["path"] = f"/dev{event['path']}"

    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}, mutate=staged)
    assert r.status == 202
    assert {k.lower(): v for k, v in r.headers.items()}["location"] == f"/dev/v1/requests/{r.body['request_id']}"


def export_to_destination(tenant: str, aws: Any) -> dict[str, Any]:
    subject(tenant)
    settings = call("GET", "/v1/settings", tenant=tenant).body
    settings["portability_destinations"] = [DESTINATION]
    assert call("PUT", "/v1/settings", tenant=tenant, body=settings).status == 200
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"deliver_to": DESTINATION})
    assert r.status == 202
    consumed = drain(aws, "ExportQueue")
    assert consumed == 1  # failed at once, on the first attempt: no retry can mend it, so none is made
    record: dict[str, Any] = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    assert record["status"] == "failed", record
    return record


def test_a_delivery_to_a_missing_bucket_fails_with_destination_not_found(
    tenant: str, aws: Any, event_log: EventLog
) -> None:
    record = export_to_destination(tenant, aws)  # moto answers NoSuchBucket
    error = record["result"]["error"]
    assert error["code"] == "destination_not_found"
    assert record["result"]["reason"] == error["message"]
    assert "absent" not in error["message"]  # the destination is tenant text: not repeated
    statuses = [e["detail"]["status"] for e in logged(event_log) if e["detail"]["request_id"] == record["request_id"]]
    assert statuses == ["received", "in_progress", "failed"]
    from chatsphere.logic.object_keys import export_package_key

    versions = boto3.client("s3").list_object_versions(
        Bucket=aws.refs["DataBucket"], Prefix=export_package_key(tenant, "u-1", record["request_id"])
    )
    assert not versions.get("Versions")  # the package the attempt wrote is gone


def test_a_delivery_the_role_may_not_make_fails_with_access_denied(
    tenant: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moto enforces no IAM, so STS's refusal is injected where the DAL assumes the delivery role."""
    from chatsphere.dal import blobs

    def refuse(service: str, role_arn: str, session_name: str) -> Any:
        error = {"Error": {"Code": "AccessDenied", "Message": f"not authorized to assume {role_arn}"}}
        raise ClientError(error, "AssumeRole")

    monkeypatch.setattr(blobs, "client_as", refuse)
    record = export_to_destination(tenant, aws)
    assert record["result"]["error"]["code"] == "access_denied"
    assert "arn:" not in record["result"]["error"]["message"]
