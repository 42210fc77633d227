"""The orphan sweep (issue 14, item 5): object versions that land under an erased subject's prefix after its
erasure's read-back are found and removed by the tenant's next retention run once the erasure has settled, and
counted in the run's record; then the tombstone keeps nothing but the keyed hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.integration.helpers import call, functions, new_tenant
from tests.integration.queues import drain
from tests.residue import SubjectValues, assert_no_residue

KIB = 1024
PERSON = {"name": "Oona Orphan", "email": "oona.orphan@example.org", "phone": "+12015550166"}
LONG = "T" * (40 * KIB)


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


def _subject(tenant: str, subject_id: str, text: str) -> None:
    assert call("PUT", f"/v1/subjects/{subject_id}", tenant=tenant, body=PERSON).status == 201
    body = {"conversation_id": "c", "role": "customer", "text": text}
    assert call("POST", f"/v1/subjects/{subject_id}/interactions", tenant=tenant, body=body).status == 201


def _erase(aws: Any, tenant: str, subject_id: str) -> dict[str, Any]:
    r = call("DELETE", f"/v1/subjects/{subject_id}", tenant=tenant)
    assert r.status == 202, r.body
    drain(aws, "DeletionQueue")
    record = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    assert record["status"] == "completed" and record["result"]["verified"] is True, record
    return dict(record)


def _versions(aws: Any, prefix: str) -> list[tuple[str, str]]:
    listed = boto3.client("s3").list_object_versions(Bucket=aws.refs["DataBucket"], Prefix=prefix)
    found = [(v["Key"], v["VersionId"]) for v in listed.get("Versions", [])]
    return sorted(found + [(m["Key"], m["VersionId"]) for m in listed.get("DeleteMarkers", [])])


def _run(aws: Any, tenant: str, as_of: datetime) -> dict[str, Any]:
    """One scheduled run at `as_of`, every chunk through RetentionQueue; the tenant's newest run record."""
    functions().invoke("RetentionFunction", {"as_of": as_of.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    drain(aws, "RetentionQueue", max_batches=100)
    latest = call("GET", "/v1/retention/runs", tenant=tenant).body["items"][0]
    assert latest["status"] == "completed", latest
    return dict(latest)


def _tombstones(aws: Any, tenant: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=aws.refs["RequestsTable"])["Items"]
    return [i for i in items if i["pk"]["S"] == f"T#{tenant}" and i["sk"]["S"].startswith("TOMB#")]


def test_an_orphan_written_after_a_verified_erasure_is_removed_by_the_next_settled_run_and_counted(
    aws: Any, tenant: str
) -> None:
    from chatsphere.logic.sweep import SETTLE

    # Given a subject erased (completed, verified) and a live neighbour with a long text
    _subject(tenant, "u-1", LONG)
    _subject(tenant, "u-2", LONG)
    _erase(aws, tenant, "u-1")
    neighbour = _versions(aws, f"tenants/{tenant}/subjects/u-2/")
    assert len(neighbour) == 1
    # the tombstone is filed for the sweep with the subject id sealed, never in clear
    (tombstone,) = _tombstones(aws, tenant)
    assert tombstone["day_pk"]["S"].startswith(f"T#{tenant}#D#E#late#")
    assert b"u-1" not in tombstone["sealed_subject_id"]["B"]
    # and an object version lands under its prefix afterwards, as a call still running at the erasure writes it
    orphan_key = f"tenants/{tenant}/subjects/u-1/interactions/late-writer"
    boto3.client("s3").put_object(
        Bucket=aws.refs["DataBucket"], Key=orphan_key, Body=b"ciphertext under a shredded key"
    )
    now = datetime.now(UTC)

    # When a run comes before the erasure has settled, it leaves the prefix to a later run and counts nothing
    early = _run(aws, tenant, now)
    assert early["orphans_removed"] == 0
    assert len(_versions(aws, f"tenants/{tenant}/subjects/u-1/")) == 1
    assert "sealed_subject_id" in _tombstones(aws, tenant)[0]

    # When the next run comes once it has settled
    settled = _run(aws, tenant, now + SETTLE + timedelta(minutes=1))
    # Then the orphan is gone, and counted in the run's record
    assert settled["orphans_removed"] == 1
    assert _versions(aws, f"tenants/{tenant}/subjects/u-1/") == []
    # and nothing of the live neighbour is touched
    assert _versions(aws, f"tenants/{tenant}/subjects/u-2/") == neighbour
    assert call("GET", "/v1/subjects/u-2/interactions", tenant=tenant).body["items"][0]["text"] == LONG
    # and the tombstone keeps its keyed hash and its 410, but no sealed id and no index entry
    (tombstone,) = _tombstones(aws, tenant)
    assert not {"sealed_subject_id", "day_pk", "day_sk"} & set(tombstone)
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).status == 410
    from chatsphere.bootstrap import wiring

    erased_hash = wiring().adapters.tombstones.hash(tenant, "u-1")
    assert_no_residue(SubjectValues.from_profile("u-1", PERSON, [LONG]), allowed={erased_hash}, resolver=aws)

    # and a later run finds nothing more to sweep
    assert _run(aws, tenant, now + 2 * SETTLE + timedelta(minutes=1))["orphans_removed"] == 0
