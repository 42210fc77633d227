"""Writes that race an erasure (issue 14, items 4 and 5): an interaction whose call is still running when the
subject is erased, with the erasure (its job run to completion and its read-back passed) landing at the critical
moment of that call. Handlers run in forked processes, as parallel Lambda instances, against one moto server."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from infra.template import Resolver
from tests.integration.helpers import call, new_tenant
from tests.integration.parallel import event, in_parallel, shared_aws_fixture
from tests.integration.queues import drain

shared_aws = pytest.fixture(shared_aws_fixture, name="shared_aws")

PERSON = {"name": "Esme Racer", "email": "esme.racer@example.org"}
KIB = 1024
LONG = "L" * (40 * KIB)  # over the inline limit: the text goes to S3 before the interaction's transaction


def _erase_when(resolver: Resolver, tenant: str, reached: Any, release: Any) -> str:
    """Wait until the other instance reaches its critical moment, then erase the subject completely (the job run
    through DeletionQueue until its read-back passes) and let the other instance go on."""
    assert reached.wait(timeout=60)
    try:
        r = call("DELETE", "/v1/subjects/u-1", tenant=tenant)
        assert r.status == 202, r.body
        drain(resolver, "DeletionQueue")
        record = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
        assert record["result"]["verified"] is True, record
        return str(record["status"])
    finally:
        release.set()


def _deactivate_when(tenant: str, reached: Any, release: Any) -> int:
    assert reached.wait(timeout=60)
    try:
        return call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant).status
    finally:
        release.set()


def _hold(service: str, operation: str, when: str, matches: Any, reached: Any, release: Any) -> None:
    """Stop this instance's next `operation` whose parameters match, before or after it reaches AWS, until
    `release` is set."""
    from chatsphere.dal.clients import client

    def stop(params: dict[str, Any] | None = None, **_: Any) -> None:
        if params is None or matches(params):
            reached.set()
            assert release.wait(timeout=60)

    events = client(service).meta.events
    if when == "before":
        events.register(f"before-parameter-build.{service}.{operation}", stop)
    else:
        seen: list[bool] = []
        events.register(
            f"before-parameter-build.{service}.{operation}", lambda params, **_: seen.append(matches(params))
        )
        events.register(f"after-call.{service}.{operation}", lambda **_: stop() if seen and seen.pop() else None)


# ------------------------------------------------------------------ item 4: the idempotency record
def _post_once_held_before_completion(idempotency_table: str, tenant: str, reached: Any, release: Any) -> int:
    """POST an interaction with an Idempotency-Key; after the interaction's transaction committed, hold the call
    just before Powertools saves the record COMPLETED."""
    _hold("dynamodb", "UpdateItem", "before", lambda p: p.get("TableName") == idempotency_table, reached, release)
    body = {"conversation_id": "c", "role": "customer", "text": "stored just before the erasure"}
    headers = {"Idempotency-Key": "k-race"}
    return call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body, headers=headers).status


def test_an_erasure_between_an_interaction_and_its_idempotency_completion_leaves_no_record_and_a_replay_is_410(
    shared_aws: Resolver,
) -> None:
    # Given an active subject, and an interaction with an Idempotency-Key whose transaction has committed
    tenant = new_tenant()[0]
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    table = shared_aws.refs["IdempotencyTable"]
    reached, release = event(), event()
    # When the subject is erased (completed and verified) before Powertools saves the record COMPLETED
    posted, erased = in_parallel(
        [
            (_post_once_held_before_completion, (table, tenant, reached, release)),
            (_erase_when, (shared_aws, tenant, reached, release)),
        ]
    )
    # Then the interaction's call still answers what it did (it was stored, then erased with the subject)
    assert erased == "completed"
    assert posted == 201
    # and no idempotency record came back after the erasure's read-back
    assert boto3.client("dynamodb").scan(TableName=table)["Items"] == []
    # and a replay of the same key is a 410 naming the deletion, which writes nothing
    body = {"conversation_id": "c", "role": "customer", "text": "stored just before the erasure"}
    replay = call(
        "POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body, headers={"Idempotency-Key": "k-race"}
    )
    assert replay.status == 410, replay.body
    assert replay.headers["content-type"].startswith("application/problem+json")
    assert boto3.client("dynamodb").scan(TableName=table)["Items"] == []


# ------------------------------------------------------------------ item 5: the long text's object
def _versions(bucket: str, prefix: str) -> list[tuple[str, str]]:
    listed = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=prefix)
    found = [(v["Key"], v["VersionId"]) for v in listed.get("Versions", [])]
    return sorted(found + [(m["Key"], m["VersionId"]) for m in listed.get("DeleteMarkers", [])])


def _is_interaction_text(params: dict[str, Any]) -> bool:
    return "/interactions/" in str(params.get("Key", ""))


def _post_long_held_at_its_object(when: str, tenant: str, reached: Any, release: Any) -> int:
    """POST a long interaction; hold the call just before (or just after) its text is put to S3."""
    _hold("s3", "PutObject", when, _is_interaction_text, reached, release)
    body = {"conversation_id": "c", "role": "customer", "text": LONG}
    return call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body).status


def test_a_long_interaction_refused_by_a_deactivation_after_its_put_removes_exactly_the_version_it_wrote(
    shared_aws: Resolver,
) -> None:
    # Given an active subject with a long interaction stored (its object version must stay)
    tenant = new_tenant()[0]
    bucket, prefix = shared_aws.refs["DataBucket"], f"tenants/{tenant}/subjects/u-1/"
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    body = {"conversation_id": "c", "role": "customer", "text": "K" * (40 * KIB)}
    assert call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body).status == 201
    before = _versions(bucket, prefix)
    assert len(before) == 1
    # When another long interaction's text is in S3 and the subject is deactivated before its transaction
    reached, release = event(), event()
    posted, deactivated = in_parallel(
        [
            (_post_long_held_at_its_object, ("after", tenant, reached, release)),
            (_deactivate_when, (tenant, reached, release)),
        ]
    )
    # Then the interaction is refused, and the version it wrote is gone (no delete marker in its place), while
    # the version of the interaction stored before stays
    assert deactivated == 200
    assert posted == 409
    assert _versions(bucket, prefix) == before
    assert call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).body["items"][0]["text"] == body["text"]


def test_a_long_interaction_whose_object_lands_after_a_completed_erasure_leaves_nothing_under_its_prefix(
    shared_aws: Resolver,
) -> None:
    # Given an active subject, and a long interaction whose call has checked that the subject is active
    tenant = new_tenant()[0]
    bucket, prefix = shared_aws.refs["DataBucket"], f"tenants/{tenant}/subjects/u-1/"
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON).status == 201
    reached, release = event(), event()
    # When the subject is erased (completed, verified) before the text reaches S3, and the call then goes on
    posted, erased = in_parallel(
        [
            (_post_long_held_at_its_object, ("before", tenant, reached, release)),
            (_erase_when, (shared_aws, tenant, reached, release)),
        ]
    )
    # Then the interaction is refused, and no object version or delete marker is left under the erased prefix
    assert erased == "completed"
    assert posted == 409
    assert _versions(bucket, prefix) == []
