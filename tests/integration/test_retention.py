"""Retention on a schedule (the Retention function) and its run records, against moto: every category and action,
legal holds, the watermark, continuation, and a run interrupted at every k-th AWS call."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.integration.helpers import call, functions, new_tenant
from tests.integration.queues import drain
from tests.residue import SubjectValues, residue

NOW = datetime.now(UTC)
KIB = 1024


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def settings(tenant: str, **retention: Any) -> None:
    current = call("GET", "/v1/settings", tenant=tenant).body
    current["retention"] = {**current["retention"], **retention}
    assert call("PUT", "/v1/settings", tenant=tenant, body=current).status == 200


def subject(tenant: str, subject_id: str, **body: Any) -> None:
    r = call("PUT", f"/v1/subjects/{subject_id}", tenant=tenant, body={"name": "Pat Example", **body})
    assert r.status == 201, r.body


def interaction(tenant: str, subject_id: str, text: str, days_ago: float, **extra: Any) -> str:
    body = {"conversation_id": "c-1", "role": "customer", "text": text, "occurred_at": at(days_ago), **extra}
    r = call("POST", f"/v1/subjects/{subject_id}/interactions", tenant=tenant, body=body)
    assert r.status == 201, r.body
    return str(r.body["interaction_id"])


def texts(tenant: str, subject_id: str) -> list[str]:
    r = call("GET", f"/v1/subjects/{subject_id}/interactions", tenant=tenant, query="limit=100")
    assert r.status == 200, r.body
    return [i["text"] for i in r.body["items"]]


def run(aws: Any, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """One scheduled run (the schedule's Input), every chunk through RetentionQueue; the tenant's run records."""
    event = {"as_of": as_of.strftime("%Y-%m-%dT%H:%M:%S.%fZ")} if as_of else {}
    functions().invoke("RetentionFunction", event)
    drain(aws, "RetentionQueue", max_batches=500)
    return []


def runs(tenant: str) -> list[dict[str, Any]]:
    r = call("GET", "/v1/retention/runs", tenant=tenant)
    assert r.status == 200, r.body
    return list(r.body["items"])


def items(aws: Any, table: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb")
    return [i for p in ddb.get_paginator("scan").paginate(TableName=aws.refs[table]) for i in p["Items"]]


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from chatsphere.config import get_config

    monkeypatch.setenv("RETENTION_CHUNK", "3")
    get_config.cache_clear()
    yield
    get_config.cache_clear()


def test_expired_interactions_go_and_the_rest_stay_with_exact_counts(aws: Any, tenant: str, small_chunks: None) -> None:
    settings(tenant, interactions={"days": 30, "action": "delete"})
    subject(tenant, "u-1")
    subject(tenant, "u-2")
    old = ["old one", "old two", "x" * (40 * KIB)]  # the long one lives in S3
    for n, text in enumerate(old):
        interaction(tenant, "u-1", text, 400 + n)
    interaction(tenant, "u-2", "old three", 31)
    interaction(tenant, "u-1", "recent", 29)
    interaction(tenant, "u-2", "today", 0)
    run(aws)
    assert texts(tenant, "u-1") == ["recent"] and texts(tenant, "u-2") == ["today"]
    (record,) = runs(tenant)
    assert record["status"] == "completed" and record["removed"] == {"interactions": 4}
    assert record["kept_by_hold"] == {} and record["finished_at"] >= record["started_at"]
    # the long text's every object version went with it
    listed = boto3.client("s3").list_object_versions(Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant}/")
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []
    # and no plaintext of an expired text is anywhere
    assert residue(SubjectValues(subject_id="none-such", texts=old)) == []
    # every interaction left carries the TTL backstop, past the longest period a tenant may set
    kept = [i for i in items(aws, "SubjectsTable") if i["sk"]["S"].startswith("I#")]
    assert len(kept) == 2
    assert all(int(i["expires_at"]["N"]) > (NOW + timedelta(days=3650)).timestamp() for i in kept)
    # a second run finds nothing more and removes nothing twice
    run(aws)
    assert runs(tenant)[0]["removed"] == {} and texts(tenant, "u-1") == ["recent"]


def test_anonymize_keeps_the_days_counts_before_the_interactions_go(aws: Any, tenant: str) -> None:
    settings(tenant, interactions={"days": 30, "action": "anonymize"})
    settings_body = call("GET", "/v1/settings", tenant=tenant).body
    settings_body["analytics_min_count"] = 2
    assert call("PUT", "/v1/settings", tenant=tenant, body=settings_body).status == 200
    for n in range(3):
        subject(tenant, f"u-{n}")
        interaction(tenant, f"u-{n}", f"hello {n}", 100, channel="web")
    run(aws)
    assert all(texts(tenant, f"u-{n}") == [] for n in range(3))
    day = at(100)[:10]
    days = call("GET", "/v1/analytics/daily", tenant=tenant, query=f"from={day}&to={day}").body["items"]
    assert len(days) == 1 and days[0]["interactions"] == 3 and days[0]["subjects"] == 3
    assert days[0]["by_channel"] == {"web": 3} and days[0]["by_role"] == {"customer": 3}


def test_a_legal_hold_keeps_its_data_is_reported_and_loses_its_ttl_until_lifted(aws: Any, tenant: str) -> None:
    settings(tenant, interactions={"days": 30, "action": "delete"})
    subject(tenant, "held")
    subject(tenant, "free")
    interaction(tenant, "held", "kept for the claim", 100)
    interaction(tenant, "free", "goes", 100)
    hold = call(
        "PUT",
        "/v1/subjects/held/legal-hold",
        tenant=tenant,
        body={"reason": "claim 7", "categories": ["interactions"]},
    )
    assert hold.status in (200, 201), hold.body
    run(aws)
    assert texts(tenant, "held") == ["kept for the claim"] and texts(tenant, "free") == []
    first = runs(tenant)[0]
    assert first["removed"] == {"interactions": 1} and first["kept_by_hold"] == {"interactions": 1}
    held = [i for i in items(aws, "SubjectsTable") if i["sk"]["S"].startswith("I#")]
    assert len(held) == 1 and "expires_at" not in held[0] and "#late#" in held[0]["day_pk"]["S"]
    # kept on every run while the hold stands, reported each time
    run(aws)
    assert runs(tenant)[0]["kept_by_hold"] == {"interactions": 1} and texts(tenant, "held") == ["kept for the claim"]
    # and gone on the first run after it is lifted
    assert call("DELETE", "/v1/subjects/held/legal-hold", tenant=tenant).status in (200, 204)
    run(aws)
    assert texts(tenant, "held") == [] and runs(tenant)[0]["removed"] == {"interactions": 1}


def age_profile(aws: Any, tenant: str, subject_id: str, days: int) -> None:
    """Seed a profile created `days` ago (the API only creates profiles now): its created_at and day index entry."""
    from chatsphere.dal import keyspace
    from chatsphere.dal.dynamo import serialise

    entry = keyspace.day_entry(tenant, "inactive_profiles", at(days), subject_id)
    boto3.client("dynamodb").update_item(
        TableName=aws.refs["SubjectsTable"],
        Key=serialise({"pk": keyspace.subject_pk(tenant, subject_id), "sk": keyspace.PROFILE_SK}),
        UpdateExpression="SET created_at = :c, day_pk = :p, day_sk = :s",
        ExpressionAttributeValues=serialise({":c": at(days), ":p": entry["day_pk"], ":s": entry["day_sk"]}),
    )


def age_tenant(aws: Any, tenant: str, days: int) -> None:
    from chatsphere.dal import keyspace
    from chatsphere.dal.dynamo import serialise

    boto3.client("dynamodb").update_item(
        TableName=aws.refs["TenantsTable"],
        Key=serialise({"pk": keyspace.tenant_pk(tenant), "sk": keyspace.TENANT_SK}),
        UpdateExpression="SET created_at = :c",
        ExpressionAttributeValues=serialise({":c": at(days)}),
    )


def test_an_inactive_profile_is_erased_through_the_deletion_path(aws: Any, tenant: str) -> None:
    age_tenant(aws, tenant, 200)
    settings(tenant, interactions={"days": 20, "action": "delete"}, inactive_profiles={"days": 60, "action": "delete"})
    for name in ("idle", "busy", "quiet"):
        subject(tenant, name)
        age_profile(aws, tenant, name, 100)
    interaction(tenant, "busy", "still here", 5)
    interaction(tenant, "quiet", "a month ago", 30)  # removed by this very run: its time stays as a marker
    run(aws)
    drain(aws, "DeletionQueue")
    record = runs(tenant)[0]
    assert record["removed"] == {"interactions": 1, "inactive_profiles": 1}, record
    assert record["still_active_profiles"] == 2
    (deletion,) = call("GET", "/v1/requests", tenant=tenant, query="type=deletion").body["items"]
    assert deletion["details"]["initiated_by"] == "retention" and deletion["status"] == "completed"
    assert call("GET", "/v1/subjects/idle", tenant=tenant).status == 410
    assert call("GET", "/v1/subjects/busy", tenant=tenant).status == 200
    assert call("GET", "/v1/subjects/quiet", tenant=tenant).status == 200 and texts(tenant, "quiet") == []
    # refiled under their last activity: 35 more days make quiet due (30 + 35 > 60), not busy (5 + 35 < 60)
    run(aws, NOW + timedelta(days=35))
    drain(aws, "DeletionQueue")
    assert call("GET", "/v1/subjects/quiet", tenant=tenant).status == 410
    assert call("GET", "/v1/subjects/busy", tenant=tenant).status == 200
    assert runs(tenant)[0]["removed"] == {"interactions": 1, "inactive_profiles": 1}  # busy's, 40 days old now


def test_a_held_profile_does_not_expire_and_is_reported_kept(aws: Any, tenant: str) -> None:
    settings(tenant, inactive_profiles={"days": 10, "action": "delete"})
    subject(tenant, "held")
    call("PUT", "/v1/subjects/held/legal-hold", tenant=tenant, body={"reason": "audit", "categories": ["profile"]})
    run(aws, NOW + timedelta(days=11))
    assert call("GET", "/v1/subjects/held", tenant=tenant).status == 200
    assert runs(tenant)[0]["kept_by_hold"] == {"inactive_profiles": 1}


def test_export_packages_then_closed_requests_go_and_the_tombstone_stays(aws: Any, tenant: str) -> None:
    settings(tenant, export_packages={"days": 2}, closed_requests={"days": 30})
    subject(tenant, "u-1")
    export = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}).body
    drain(aws, "ExportQueue")
    s3 = boto3.client("s3")

    def packages() -> list[Any]:
        listed = s3.list_object_versions(Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant}/")
        return [v for v in listed.get("Versions", []) if "/exports/" in v["Key"]]

    assert len(packages()) == 1
    run(aws, NOW + timedelta(days=1))
    assert len(packages()) == 1  # not due yet
    run(aws, NOW + timedelta(days=3))
    assert packages() == [] and runs(tenant)[0]["removed"] == {"export_packages": 1}
    record = call("GET", f"/v1/requests/{export['request_id']}", tenant=tenant).body
    assert record["status"] == "completed" and record["result"]["package_removed_at"]
    # a deleted subject's records go after closed_requests.days; its tombstone stays
    subject(tenant, "u-2")
    call("DELETE", "/v1/subjects/u-2", tenant=tenant)
    drain(aws, "DeletionQueue")
    run(aws, NOW + timedelta(days=31))
    assert call("GET", f"/v1/requests/{export['request_id']}", tenant=tenant).status == 404
    left = [i["sk"]["S"] for i in items(aws, "RequestsTable")]
    assert [sk for sk in left if sk.startswith("R#")] == [] and any(sk.startswith("TOMB#") for sk in left)
    assert call("GET", "/v1/subjects/u-2", tenant=tenant).status == 410  # the tombstone still answers
    assert runs(tenant)[0]["removed"] == {"closed_requests": 2}


def test_a_run_never_scans_and_a_second_run_does_not_query_days_behind_the_watermark(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatsphere.bootstrap import adapters

    age_tenant(aws, tenant, 60)
    settings(tenant, interactions={"days": 5, "action": "delete"})
    subject(tenant, "u-1")
    interaction(tenant, "u-1", "old", 30)
    queried: list[str] = []
    store = adapters().retention
    original = store.due

    def spy(tenant_id: str, category: Any, bucket: str, *args: Any, **kwargs: Any) -> Any:
        queried.append(f"{category}:{bucket}")
        return original(tenant_id, category, bucket, *args, **kwargs)

    monkeypatch.setattr(store, "due", spy)

    def no_scan(**_: Any) -> None:
        raise AssertionError("retention scanned a table")

    boto3.client("dynamodb")  # the shared client registers the hook below
    from chatsphere.dal.clients import client

    client("dynamodb").meta.events.register("before-call.dynamodb.Scan", no_scan)
    run(aws)
    first = set(queried)
    queried.clear()
    run(aws)
    second = set(queried)
    client("dynamodb").meta.events.unregister("before-call.dynamodb.Scan", no_scan)
    # the first run reads every day since the tenant began; the second only the cutoff's day and the late buckets
    assert f"interactions:{at(30)[:10]}" in first and f"interactions:{at(30)[:10]}" not in second
    assert {b.split(":")[1] for b in second if b.startswith("interactions:")} == {at(5)[:10], "late"}
    assert texts(tenant, "u-1") == []


class Fault(Exception):
    pass


def empty_tables(aws: Any) -> None:
    ddb = boto3.client("dynamodb")
    for table in ("SubjectsTable", "SubjectKeysTable", "RequestsTable", "IdempotencyTable"):
        keys = [{k: i[k] for k in ("pk", "sk", "id") if k in i} for i in items(aws, table)]
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            ddb.batch_write_item(RequestItems={aws.refs[table]: batch})


def renamed(value: Any, old: str, new: str) -> Any:
    """A stored item (wire form) with every occurrence of one tenant id replaced by another."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, old, new) for v in value]
    return value


def test_a_run_interrupted_at_every_kth_call_and_rerun_removes_exactly_what_is_due(
    aws: Any, small_chunks: None
) -> None:
    """For every position k of a clean run's AWS calls: a fresh copy of the same tenant, a run whose k-th call
    fails, and the same job again until it is done (as SQS redelivers it). Nothing due is left, nothing else is
    touched, the counts are the clean run's, and the aggregates of the anonymised days are there."""
    from chatsphere.bootstrap import adapters
    from chatsphere.dal.clients import client
    from chatsphere.handlers.retention import ports
    from chatsphere.logic import retention
    from chatsphere.models.retention import RetentionJob

    # The tenant once, through the API; each position gets a copy of its items under a new tenant id.
    original = new_tenant("Acme")[0]
    # The hold's own record (closed at once) is due on the as_of below: the run's last category acts too.
    settings(original, interactions={"days": 30, "action": "anonymize"}, closed_requests={"days": 1})
    body = call("GET", "/v1/settings", tenant=original).body
    body["analytics_min_count"] = 2
    call("PUT", "/v1/settings", tenant=original, body=body)
    for s, days in (("a", (40, 41, 10)), ("b", (40, 10)), ("c", (40, 10))):
        subject(original, s)
        for d in days:
            interaction(original, s, f"{s}-{d}", d)
    call("PUT", "/v1/subjects/c/legal-hold", tenant=original, body={"reason": "r", "categories": ["interactions"]})
    tables = ("SubjectsTable", "SubjectKeysTable", "TenantsTable", "RequestsTable")
    stored = {t: [i for i in items(aws, t) if original in json.dumps(i, default=str)] for t in tables}
    empty_tables(aws)
    ddb = boto3.client("dynamodb")

    def seed(n: int) -> str:
        tenant = f"tk{n:04d}{original[6:]}"
        for table, found in stored.items():
            for start in range(0, len(found), 25):
                puts = [{"PutRequest": {"Item": renamed(i, original, tenant)}} for i in found[start : start + 25]]
                ddb.batch_write_item(RequestItems={aws.refs[table]: puts})
        return tenant

    def records(tenant: str) -> list[str]:
        return [i["sk"]["S"] for i in items(aws, "RequestsTable") if i["pk"]["S"] == f"T#{tenant}"]

    def remaining(tenant: str) -> list[str]:
        """subject:day of every interaction left (the items as stored: no decryption needed)."""
        return sorted(
            f"{i['subject_id']['S']}:{i['occurred_at']['S'][:10]}"
            for i in items(aws, "SubjectsTable")
            if i["sk"]["S"].startswith("I#") and i["tenant_id"]["S"] == tenant
        )

    calls = {"n": 0, "fail_at": 0}

    def count(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise Fault(f"interrupted at call {calls['n']}")

    def complete(tenant: str) -> dict[str, Any]:
        job = RetentionJob(tenant_id=tenant, run_id=f"run-{tenant}", as_of=at(-2))
        for _ in range(200):
            try:
                result = retention.run_chunk(ports(), job, NOW, 2)
            except Fault:
                continue  # the message comes back: the same job again
            if result.outcome == "done":
                break
            job = job.model_copy(update={"acted": result.acted})  # the continuation, as the handler sends it
        calls["fail_at"] = 0  # a run shorter than k is never interrupted
        run = adapters().retention.get_run(tenant, job.run_id)
        assert run is not None and run.status == "completed"
        return run.model_dump()

    expected = sorted(f"{s}:{at(d)[:10]}" for s, d in (("a", 10), ("b", 10), ("c", 10), ("c", 40)))
    ddb_client, s3 = client("dynamodb"), client("s3")
    for c in (ddb_client, s3):
        c.meta.events.register("before-call.*.*", count)
    try:
        baseline = complete(seed(0))
        total = calls["n"]
        stride = int(os.environ.get("RETENTION_FAULT_STRIDE") or 1)  # every position; n: every n-th only
        for k in range(1, total + 1, stride):
            empty_tables(aws)  # moto reads a whole table for every index Query: keep each copy's run as cheap
            tenant = seed(k)
            calls["n"], calls["fail_at"] = 0, k
            got = complete(tenant)
            assert got["counts"] == baseline["counts"], k
            assert remaining(tenant) == expected, k
            assert records(tenant) == [], k
            for day in (at(40)[:10], at(41)[:10]):
                agg = call("GET", "/v1/analytics/daily", tenant=tenant, query=f"from={day}&to={day}").body["items"]
                assert len(agg) == 1, (k, day)
    finally:
        for c in (ddb_client, s3):
            c.meta.events.unregister("before-call.*.*", count)
    assert total > 50
    assert baseline["counts"]["removed"] == {"interactions": 3, "closed_requests": 1}
    assert baseline["counts"]["kept_by_hold"] == {"interactions": 1}


def test_a_dry_run_counts_what_a_run_would_remove_and_writes_nothing_even_while_a_run_holds_the_tenant(
    aws: Any, tenant: str
) -> None:
    from chatsphere.handlers.retention import ports
    from chatsphere.logic import retention
    from chatsphere.models.retention import RetentionJob

    settings(tenant, interactions={"days": 30, "action": "delete"})
    subject(tenant, "u-1")
    for n, days_ago in enumerate((40, 41, 42, 5)):
        interaction(tenant, "u-1", f"text {n}", days_ago)
    job = RetentionJob(tenant_id=tenant, run_id="held-run", as_of=at(0))
    assert retention.run_chunk(ports(), job, NOW, 1).outcome == "continue"  # the run holds the lease, 1 removed
    before = items(aws, "SubjectsTable")
    counts = retention.dry_run(ports(), tenant, NOW, NOW)
    assert counts.removed == {"interactions": 2} and counts.kept_by_hold == {}
    assert items(aws, "SubjectsTable") == before
