"""`chatsphere reconcile` against moto: after a restore writes back old copies of an erased subject's items and
objects, the API refuses the subject until reconcile runs, and reconcile removes every copy, and nothing else."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import pytest

from chatsphere import cli
from tests.integration.helpers import call, new_tenant
from tests.integration.queues import drain
from tests.integration.test_deletion_api import PERSON, TEXTS, erase, erased_hash, partition, populate, values
from tests.residue import assert_no_residue

ZERO = {
    "profiles": 0,
    "interactions": 0,
    "lookup_items": 0,
    "other_items": 0,
    "data_keys": 0,
    "idempotency_records": 0,
    "object_versions": 0,
    "delete_markers": 0,
}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


def objects(aws: Any, tenant: str, subject: str) -> dict[str, bytes]:
    """The current body of every object under the subject's prefix."""
    s3, bucket = boto3.client("s3"), aws.refs["DataBucket"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"tenants/{tenant}/subjects/{subject}/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def versions(aws: Any, tenant: str, subject: str) -> list[tuple[str, str]]:
    listed = boto3.client("s3").list_object_versions(
        Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant}/subjects/{subject}/"
    )
    return sorted((v["Key"], v["VersionId"]) for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []))


def restore(aws: Any, items: list[dict[str, Any]], bodies: dict[str, bytes]) -> None:
    """What a point-in-time restore of SubjectsTable and a restore of the bucket write back: the old copies."""
    ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    for item in items:
        ddb.put_item(TableName=aws.refs["SubjectsTable"], Item=item)
    for key, body in bodies.items():
        s3.put_object(Bucket=aws.refs["DataBucket"], Key=key, Body=body)


def main(*argv: str) -> tuple[int, str, str]:
    """The console command's exit status, stdout and stderr. Not capsys: the handlers' logger, built when a
    test first calls them, would keep writing to a capture that closes with the test."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli.main(list(argv))
    return status, out.getvalue(), err.getvalue()


def run_cli(*args: str) -> dict[str, Any]:
    status, out, err = main("reconcile", *args)
    assert status == 0 and err == "", err
    report: dict[str, Any] = json.loads(out)
    return report


def tenant_report(report: dict[str, Any], tenant: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in report["tenants"] if t["tenant_id"] == tenant)
    return found


def test_reconcile_removes_what_a_restore_brought_back_of_an_erased_subject_and_nothing_else(
    aws: Any, tenant: str
) -> None:
    # Given an erased subject with interactions (one in S3) and an export package, a neighbour and another tenant
    other_tenant = new_tenant("Globex")[0]
    populate(tenant, "u-1", TEXTS)
    call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    drain(aws, "ExportQueue")
    populate(tenant, "u-2", ("the neighbour stays",))
    populate(other_tenant, "u-3", ("another tenant's subject stays",))
    old_items, old_objects = partition(aws, tenant, "u-1"), objects(aws, tenant, "u-1")
    assert len(old_items) == 5 and len(old_objects) == 2  # profile, 2 lookups, 2 interactions; long text, package
    record = erase(aws, tenant, "u-1")
    assert record["status"] == "completed"
    # When a restore writes back the old copies of its items and objects
    restore(aws, old_items, old_objects)
    kept = {
        "neighbour": (partition(aws, tenant, "u-2"), versions(aws, tenant, "u-2")),
        "other tenant": (partition(aws, other_tenant, "u-3"), versions(aws, other_tenant, "u-3")),
    }
    # Then until reconcile runs, every route of the subject answers 410 (never data, never a 5xx)
    body = {"conversation_id": "c", "role": "customer", "text": "a replay"}
    for r in (
        call("GET", "/v1/subjects/u-1", tenant=tenant),
        call("GET", "/v1/subjects/u-1/interactions", tenant=tenant),
        call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON),
        call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON, headers={"Reuse-Erased-Subject-Id": "true"}),
        call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "X"}),
        call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body),
        call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body, headers={"Idempotency-Key": "k-9"}),
        call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}),
        call("PUT", "/v1/subjects/u-1/objections/analytics", tenant=tenant),
        call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant),
        call("DELETE", "/v1/subjects/u-1", tenant=tenant),
    ):
        assert r.status == 410 and r.body["request_id"] == record["request_id"], r.body
    # and a lookup skips it: its lookup items are back, but its data key is not
    for identifier in ({"email": PERSON["email"]}, {"phone": PERSON["phone"]}):
        assert call("POST", "/v1/subject-lookups", tenant=tenant, body=identifier).body["subject_ids"] == ["u-2"]
    assert len(partition(aws, tenant, "u-1")) == 5  # none of those calls wrote anything
    # When the operator runs reconcile
    report = run_cli()
    # Then it counts each store's copies, names the deletion and not the subject
    assert report["removed"] == {
        **ZERO,
        "profiles": 1,
        "interactions": 2,
        "lookup_items": 2,
        "object_versions": 2,
    }
    acme = tenant_report(report, tenant)
    assert acme["reapplied"] == [record["request_id"]] and acme["tombstones"] == 1
    assert tenant_report(report, other_tenant)["removed"] == ZERO
    assert "u-1" not in json.dumps(report) and erased_hash(tenant, "u-1") not in json.dumps(report)
    # and nothing of the subject is anywhere, but its keyed hash
    assert partition(aws, tenant, "u-1") == [] and versions(aws, tenant, "u-1") == []
    assert_no_residue(values(), allowed={erased_hash(tenant, "u-1")}, resolver=aws)
    # and the neighbour and the other tenant's subject keep every item and object
    assert kept == {
        "neighbour": (partition(aws, tenant, "u-2"), versions(aws, tenant, "u-2")),
        "other tenant": (partition(aws, other_tenant, "u-3"), versions(aws, other_tenant, "u-3")),
    }
    assert call("GET", "/v1/subjects/u-3", tenant=other_tenant).status == 200
    # and a second run removes nothing
    assert run_cli()["removed"] == ZERO


def test_a_new_person_who_reused_the_erased_id_keeps_their_data(aws: Any, tenant: str) -> None:
    populate(tenant, "u-1", TEXTS)
    old_items, old_objects = partition(aws, tenant, "u-1"), objects(aws, tenant, "u-1")
    erase(aws, tenant, "u-1")
    reuse = {"Reuse-Erased-Subject-Id": "true"}
    new_person = {"name": "Someone Else", "email": "else@example.org"}
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=new_person, headers=reuse).status == 201
    for text in ("a new person's hello", "N" * (40 * 1024)):
        body = {"conversation_id": "c", "role": "customer", "text": text}
        assert call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body).status == 201
    mine = sorted(partition(aws, tenant, "u-1"), key=repr), objects(aws, tenant, "u-1")
    # The restore brings back the old interactions and objects (the profile and lookup keys are the new ones')
    restore(aws, [i for i in old_items if i["sk"]["S"].startswith("I#")], old_objects)
    report = run_cli()
    assert report["removed"] == {**ZERO, "interactions": 2, "object_versions": 1}
    assert tenant_report(report, tenant)["reused_ids"] == 1
    assert (sorted(partition(aws, tenant, "u-1"), key=repr), objects(aws, tenant, "u-1")) == mine
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).body["name"] == "Someone Else"
    texts = [i["text"][:6] for i in call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).body["items"]]
    assert sorted(texts) == ["NNNNNN", "a new "]
    assert call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": PERSON["email"]}).body == {
        "subject_ids": []
    }


# ------------------------------------------------------------------ errors of use: one line, no traceback
def test_a_missing_setting_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("TENANTS_TABLE", "REQUESTS_TABLE", "SUBJECTS_TABLE", "DATA_BUCKET"):
        monkeypatch.delenv(env, raising=False)
    status, _, err = main("reconcile")
    assert status == 2 and err.count("\n") == 1 and "TENANTS_TABLE" in err and "Traceback" not in err


def test_no_local_stack_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for argv in (["reconcile", "--local"], ["tenants", "create", "--name", "Acme", "--local"]):
        status, _, err = main(*argv, "--stack-file", str(tmp_path / "stack.json"))
        assert status == 2 and err.count("\n") == 1 and "make run" in err and "Traceback" not in err


def test_a_local_stack_that_is_not_running_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatsphere.dal import clients

    stack = tmp_path / "stack.json"
    names = ("TenantsTable", "RequestsTable", "SubjectsTable", "SubjectKeysTable", "IdempotencyTable", "DataBucket")
    resources = {name: name.lower() for name in (*names, "DataKey")}
    stack.write_text(json.dumps({"aws_endpoint_url": "http://127.0.0.1:9", "resources": resources}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "restored-by-monkeypatch")  # the command sets it for the local stack
    clients.reset()
    try:
        status, _, err = main("reconcile", "--local", "--stack-file", str(stack))
    finally:
        clients.reset()
    assert status == 2 and err.count("\n") == 1 and "not running" in err and "make run" in err
    assert "Traceback" not in err


def test_a_request_record_keeps_the_stored_name_of_its_pseudonymised_flag(aws: Any) -> None:
    """Records written before the code said "deletion" carry `subject_erased`: such a record still reads as
    pseudonymised (else the deletion job and reconcile would take its keyed hash for a subject id), and a record
    written now stores the same name."""
    from datetime import UTC, datetime

    from chatsphere.bootstrap import wiring
    from chatsphere.logic.requests import new_request
    from chatsphere.models.requests import DeletionDetails
    from chatsphere.models.settings import TenantSettings

    store = wiring().adapters.requests
    table = aws.refs["RequestsTable"]
    item = new_request(TenantSettings(), "t" + "0" * 16, "u-1", datetime.now(UTC), DeletionDetails())
    store.create(item)
    raw = [r for r in boto3.client("dynamodb").scan(TableName=table)["Items"] if r["sk"]["S"].startswith("R#")]
    assert [r["subject_erased"] for r in raw] == [{"BOOL": False}] and all("subject_deleted" not in r for r in raw)
    old = {**raw[0], "subject_id": {"S": "h" * 64}, "subject_erased": {"BOOL": True}}
    old.pop("subject_ref", None)
    boto3.client("dynamodb").put_item(TableName=table, Item=old)
    read = store.get(item.tenant_id, item.request_id)
    assert read is not None and read.subject_deleted and read.subject_id == "h" * 64
