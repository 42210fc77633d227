"""Regressions for what the adversarial probe found (issue 7), each at the level where it lived."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import call, new_tenant, snapshot

PERSON = {"name": "Quinn Probe", "email": "quinn.probe@example.org"}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


@pytest.fixture
def subject(tenant: str) -> str:
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    return "u-1"


# ------------------------------------------------------------ 4. extreme dates
@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_policy_dated_outside_utcs_years_is_422_and_writes_nothing(tenant: str, when: str) -> None:
    before = snapshot()
    body = {"version": "v1", "effective_at": when, "url": "https://example.com/p", "sha256": "0" * 64}
    r = call("POST", "/v1/policies", tenant=tenant, body=body)
    assert r.status == 422 and r.body["errors"][0]["loc"] == ["body", "effective_at"], r.body
    assert snapshot() == before


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_interaction_dated_outside_utcs_years_is_422(tenant: str, subject: str, when: str) -> None:
    body = {"conversation_id": "c", "role": "customer", "text": "hi", "occurred_at": when}
    assert call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body=body).status == 422


# ------------------------------------------------------------ 5. ids of dots
@pytest.mark.parametrize("dots", [".", "..", "%2E", "%2E%2E", "..."])
def test_a_subject_id_of_dots_alone_is_refused(tenant: str, dots: str) -> None:
    before = snapshot()
    r = call("PUT", f"/v1/subjects/{dots}", tenant=tenant, body=PERSON)
    assert r.status in (404, 422), r.body  # 422 by validation; a normalised path may find no route at all
    assert snapshot() == before


# ------------------------------------------------------------ 9. media types
@pytest.mark.parametrize("media", ["APPLICATION/JSON", "Application/Json; charset=UTF-8", "application/JSON"])
def test_media_types_are_matched_case_insensitively(tenant: str, media: str) -> None:
    r = call("PUT", "/v1/subjects/u-2", tenant=tenant, body=PERSON, headers={"Content-Type": media})
    assert r.status == 201, r.body


def test_another_media_type_is_still_415(tenant: str) -> None:
    r = call("PUT", "/v1/subjects/u-2", tenant=tenant, body=PERSON, headers={"Content-Type": "text/json"})
    assert r.status == 415


# ------------------------------------------------------------ duplicate keys
@pytest.mark.parametrize(
    "raw",
    ['{"name": "A", "name": "B"}', '{"contact": {"x": "1", "x": "2"}}'],
)
def test_a_body_that_repeats_a_key_is_400_and_writes_nothing(tenant: str, raw: str) -> None:
    before = snapshot()
    r = call("PUT", "/v1/subjects/u-3", tenant=tenant, raw_body=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400 and "repeats a key" in r.body["detail"], r.body
    assert snapshot() == before


# ------------------------------------------------------------ Cache-Control
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/subjects/u-1"),
        ("GET", "/v1/subjects/u-1/interactions"),
        ("GET", "/v1/requests"),
        ("GET", "/v1/subjects/nobody"),
        ("GET", "/v1/settings"),
    ],
)
def test_answers_are_never_cached(tenant: str, subject: str, method: str, path: str) -> None:
    r = call(method, path, tenant=tenant)
    assert r.headers.get("cache-control") == "no-store", (r.status, r.headers)


def test_a_lookup_answer_is_never_cached(tenant: str, subject: str) -> None:
    r = call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": PERSON["email"]})
    assert r.status == 200 and r.body["subject_ids"] == ["u-1"]
    assert r.headers.get("cache-control") == "no-store"


# ------------------------------------------------------------ 7. no unkeyed hash of a body
def _idempotency_items(aws: Any) -> list[dict[str, Any]]:
    import boto3

    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=aws.refs["IdempotencyTable"])["Items"]
    return items


def test_the_idempotency_record_holds_no_unkeyed_hash_of_the_body(aws: Any) -> None:
    # Given two tenants that each post the same short message under an Idempotency-Key
    import hashlib
    import json

    body = {"conversation_id": "c", "role": "customer", "text": "yes"}
    for name in ("Acme", "Globex"):
        tenant = new_tenant(name)[0]
        assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
        r = call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body, headers={"Idempotency-Key": "k"})
        assert r.status == 201
    # Then no stored value is a plain hash a guess of the message could confirm
    full = {**body, "channel": None, "occurred_at": None}
    guesses = {
        hashlib.sha256(json.dumps(candidate, sort_keys=True, separators=separators).encode()).hexdigest()
        for candidate in (body, full)
        for separators in ((", ", ": "), (",", ":"))
    }
    items = _idempotency_items(aws)
    stored = json.dumps(items)
    assert len(items) == 2 and not any(guess in stored for guess in guesses)
    # and the body check is keyed per tenant: the same body gives each tenant a different value
    validations = {i["validation"]["S"] for i in items}
    assert len(validations) == 2


def test_a_retry_with_the_same_body_still_gets_the_first_answer_and_another_body_a_422(
    tenant: str, subject: str
) -> None:
    body = {"conversation_id": "c", "role": "customer", "text": "yes"}
    key = {"Idempotency-Key": "k-1"}
    first = call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body=body, headers=key)
    again = call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body=body, headers=key)
    other = call(
        "POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body={**body, "text": "no"}, headers=key
    )
    assert first.status == again.status == 201 and first.body == again.body
    assert other.status == 422


# ------------------------------------------------------------ 1. deliver_to into the stack's own storage
def _own_destinations(aws: Any, victim: str) -> list[str]:
    data = aws.refs["DataBucket"]
    logs = aws.refs["AccessLogBucket"]
    return [f"s3://{data}/tenants/{victim}/subjects/a-1/exports", f"s3://{data}", f"s3://{logs}/x"]


def test_a_destination_in_the_stacks_own_buckets_is_refused_when_settings_are_written(aws: Any) -> None:
    victim, attacker = new_tenant("A")[0], new_tenant("B")[0]
    for uri in _own_destinations(aws, victim):
        before = snapshot()
        r = call("PUT", "/v1/settings", tenant=attacker, body={"portability_destinations": [uri]})
        assert r.status == 422 and "own buckets" in r.body["detail"], (uri, r.body)
        assert snapshot() == before


def test_a_destination_stored_before_the_check_is_refused_at_request_and_at_delivery(aws: Any) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.requests import new_request
    from chatsphere.models.common import iso, utc_now
    from chatsphere.models.requests import ExportDetails
    from chatsphere.models.settings import TenantSettings
    from tests.integration.queues import drain

    victim, attacker = new_tenant("A")[0], new_tenant("B")[0]
    uri = _own_destinations(aws, victim)[0]
    # Given settings stored by an older version, which did not check destinations
    stale = TenantSettings(portability_destinations=[uri])
    wiring().adapters.settings.put_settings(attacker, stale, iso(utc_now()))
    assert call("PUT", "/v1/subjects/b-1", tenant=attacker, body=PERSON).status == 201
    # When the attacker asks for a delivery there, it is refused at once
    r = call("POST", "/v1/subjects/b-1/exports", tenant=attacker, body={"format": "json", "deliver_to": uri})
    assert r.status == 422
    # and a request recorded before the check is rejected by the job, which writes no package at all
    item = new_request(stale, attacker, "b-1", utc_now(), ExportDetails(deliver_to=uri))
    wiring().adapters.requests.create(item)
    from chatsphere.models.export import ExportJob

    wiring().adapters.export_jobs.send(ExportJob.for_request(item))
    drain(aws, "ExportQueue")
    record = call("GET", f"/v1/requests/{item.request_id}", tenant=attacker).body
    assert record["status"] == "rejected" and "own buckets" in record["result"]["reason"]
    import boto3

    listed = boto3.client("s3").list_object_versions(Bucket=aws.refs["DataBucket"]).get("Versions", [])
    assert [v["Key"] for v in listed if "/exports/" in v["Key"]] == []


def test_deliveries_write_under_the_delivery_role_alone(aws: Any) -> None:
    import boto3

    from chatsphere.dal.clients import client
    from tests.integration.queues import drain

    tenant = new_tenant("Acme")[0]
    boto3.client("s3").create_bucket(Bucket="chatsphere-portability-other")
    destination = "s3://chatsphere-portability-other/in"
    assert call("PUT", "/v1/settings", tenant=tenant, body={"portability_destinations": [destination]}).status == 200
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    assumed: list[str] = []
    client("sts").meta.events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json", "deliver_to": destination})
    drain(aws, "ExportQueue")
    record = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    assert record["status"] == "completed" and record["result"]["delivered_to"].startswith(destination)
    assert assumed == [aws.attrs[("ExportDeliveryRole", "Arn")]]


# ------------------------------------------------------------ a failed export leaves no package behind
def test_a_failed_export_leaves_no_plaintext_package_version(aws: Any) -> None:
    import boto3

    from tests.integration.queues import drain

    tenant = new_tenant("Acme")[0]
    destination = "s3://chatsphere-portability-missing/in"  # allowed, but the bucket does not exist
    assert call("PUT", "/v1/settings", tenant=tenant, body={"portability_destinations": [destination]}).status == 200
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json", "deliver_to": destination})
    drain(aws, "ExportQueue")  # every attempt the queue allows
    record = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    assert record["status"] == "failed", record
    listed = boto3.client("s3").list_object_versions(Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant}/")
    assert [v["Key"] for v in listed.get("Versions", []) if "/exports/" in v["Key"]] == []
