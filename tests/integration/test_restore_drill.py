"""The restore drill (issue 16): every table a restore can reach, and the data bucket, written back to a point
before several erasures, then `chatsphere reconcile`. Nothing of an erased subject may survive in any table, index
or object version; what a legal hold keeps and what a new person holds under a reused id stay; the API answers 410
for each erased id. The tombstones come back from the evidence ledger, which no restore of these reaches."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.integration.helpers import call, new_tenant
from tests.integration.queues import drain, sequence
from tests.integration.test_reconcile import run_cli, tenant_report
from tests.residue import SubjectValues, assert_no_residue

# Restored in the drill: every table with point-in-time recovery (SubjectKeysTable has none, by design: a restore
# would revive shredded keys), and the data bucket. The ledger's own tables are not restored: they are the record.
RESTORED_TABLES = ("SubjectsTable", "RequestsTable", "TenantsTable", "IdempotencyTable")
ERASED = "erased-alpha-7731"
SECOND = "erased-echo-5512"
HELD = "held-bravo-2291"
REUSED = "reused-charlie-4410"
KEPT = "kept-delta-9913"


def person(subject: str) -> dict[str, Any]:
    first = subject.split("-")[1].capitalize()
    return {"name": f"{first} Drillperson", "email": f"{first.lower()}.drill@example.org", "phone": "+12015550188"}


def texts(subject: str) -> list[str]:
    return [f"first words of {subject} q7", f"{subject} asks about order 55{len(subject)}" + "x" * (40 * 1024)]


def populate(tenant: str, subject: str, body: dict[str, Any] | None = None, reuse: bool = False) -> None:
    headers = {"Reuse-Erased-Subject-Id": "true"} if reuse else None
    r = call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body=body or person(subject), headers=headers)
    assert r.status == 201, r.body
    for n, text in enumerate(texts(subject) if body is None else [f"new person's words {subject}"]):
        message = {"conversation_id": "c", "role": "customer", "text": text}
        headers = {"Idempotency-Key": f"{subject}-{n}-{reuse}"}
        r = call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body=message, headers=headers)
        assert r.status == 201, r.body


def erase(aws: Any, tenant: str, subject: str) -> dict[str, Any]:
    r = call("DELETE", f"/v1/subjects/{subject}", tenant=tenant)
    assert r.status == 202, r.body
    drain(aws, "DeletionQueue")
    record: dict[str, Any] = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    return record


def snapshot(aws: Any) -> dict[str, Any]:
    """What a backup holds: every item of the restorable tables, every current object of the data bucket."""
    ddb, s3, bucket = boto3.client("dynamodb"), boto3.client("s3"), aws.refs["DataBucket"]
    tables = {
        t: list(ddb.get_paginator("scan").paginate(TableName=aws.refs[t]).search("Items")) for t in RESTORED_TABLES
    }
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket).search("Contents[]")
    objects = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed if o}
    return {"tables": tables, "objects": objects}


def restore(aws: Any, snap: dict[str, Any]) -> None:
    """Each table back to the snapshot (items written since are gone, old ones are back, as a point-in-time
    restore leaves it), and the snapshot's objects written back into the bucket as new versions."""
    ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    for logical, items in snap["tables"].items():
        table = aws.refs[logical]
        names = [k["AttributeName"] for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
        for item in list(ddb.get_paginator("scan").paginate(TableName=table).search("Items")):
            ddb.delete_item(TableName=table, Key={n: item[n] for n in names})
        for item in items:
            ddb.put_item(TableName=table, Item=item)
    for key, body in snap["objects"].items():
        s3.put_object(Bucket=aws.refs["DataBucket"], Key=key, Body=body)


def values(subject: str) -> SubjectValues:
    return SubjectValues.from_profile(subject, person(subject), texts(subject))


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


def test_a_restore_of_every_table_and_the_bucket_brings_back_nothing_of_the_erased(aws: Any, tenant: str) -> None:
    # Given four subjects; one of them erased, and its id then taken by a new person; one under a legal hold
    for subject in (ERASED, SECOND, HELD, REUSED, KEPT):
        populate(tenant, subject)
    hold = {"reason": "Case 17", "categories": ["interactions"]}
    assert call("PUT", f"/v1/subjects/{HELD}/legal-hold", tenant=tenant, body=hold).status in (200, 201)
    assert erase(aws, tenant, REUSED)["status"] == "completed"
    newcomer = {"name": "Newcomer Person", "email": "newcomer.person@example.org"}
    populate(tenant, REUSED, newcomer, reuse=True)
    # and one subject's export made, another's erasure asked but not yet carried out, when a backup is taken
    assert call("POST", f"/v1/subjects/{ERASED}/exports", tenant=tenant, body={}).status == 202
    drain(aws, "ExportQueue")
    asked = call("DELETE", f"/v1/subjects/{SECOND}", tenant=tenant).body["request_id"]
    backup = snapshot(aws)
    # When the erasures are carried out (the held one completes with exceptions)
    drain(aws, "DeletionQueue")
    assert call("GET", f"/v1/requests/{asked}", tenant=tenant).body["status"] == "completed"
    assert erase(aws, tenant, ERASED)["status"] == "completed"
    assert erase(aws, tenant, HELD)["status"] == "completed_with_exceptions"
    sequence(aws)
    # and every table and the bucket are restored from that backup
    restore(aws, backup)
    back = boto3.client("dynamodb").query(
        TableName=aws.refs["SubjectsTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"T#{tenant}#S#{ERASED}"}},
    )["Items"]
    assert back  # the restore brought its items back (unreadable: its data key stays shredded)
    # Then reconcile, with its tombstones from the ledger, removes all of it again
    report = tenant_report(run_cli(), tenant)
    # the export's record and the open erasure's, restored with the ids in clear; the latter closed again
    assert (report["tombstones_restored"], report["records_pseudonymised"], report["records_closed"]) == (2, 2, 1)
    closed = call("GET", f"/v1/requests/{asked}", tenant=tenant).body
    assert closed["status"] == "completed" and closed["subject_id"] != SECOND
    assert sum(report["removed"].values()) > 0
    for subject in (ERASED, SECOND):
        assert_no_residue(values(subject), resolver=aws)
        r = call("GET", f"/v1/subjects/{subject}", tenant=tenant)
        assert r.status == 410, (subject, r.status)
        assert call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body=person(subject)).status == 410
    # the held subject keeps what its hold covers, the newcomer everything of theirs, the neighbour everything
    held = call("GET", f"/v1/subjects/{HELD}/interactions", tenant=tenant)
    assert held.status == 200 and len(held.body["items"]) == 2
    got = call("GET", f"/v1/subjects/{REUSED}", tenant=tenant).body
    assert (got["name"], got["email"]) == (newcomer["name"], newcomer["email"])
    assert len(call("GET", f"/v1/subjects/{REUSED}/interactions", tenant=tenant).body["items"]) == 1
    assert len(call("GET", f"/v1/subjects/{KEPT}/interactions", tenant=tenant).body["items"]) == 2
    # and the ledger tells the restore's part of each erasure's story
    sequence(aws)
    audit = call("GET", "/v1/audit", tenant=tenant, query="type=reconcile.restore_addendum&limit=100").body
    assert len(audit["items"]) >= 2
    runs = call("GET", "/v1/audit", tenant=tenant, query="type=reconcile.run&limit=100").body["items"]
    assert runs and runs[-1]["data"]["tombstones_restored"] == 2
    # A second run finds nothing more
    again = tenant_report(run_cli(), tenant)
    assert not any(again["removed"].values()) and again["tombstones_restored"] == 0
    assert again["records_pseudonymised"] == 0
