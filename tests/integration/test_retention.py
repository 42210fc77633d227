"""Retention on a schedule (the Retention function) and its run records, against moto: every category and action,
legal holds, the watermark, continuation, a run interrupted at every k-th AWS call (a hold placed and an erasure
begun at the interruption), and holds, erasures and activity that arrive between a decision and its act."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
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


def partition(aws: Any, tenant: str, subject_id: str) -> list[str]:
    """The sort keys of everything stored in the subject's partition (as stored)."""
    from chatsphere.dal import keyspace

    pk = keyspace.subject_pk(tenant, subject_id)
    return sorted(i["sk"]["S"] for i in items(aws, "SubjectsTable") if i["pk"]["S"] == pk)


def before_act(monkeypatch: pytest.MonkeyPatch, when: Callable[[Any], bool], then: Callable[[], None]) -> list[int]:
    """Run `then` once, between a chunk's commit and its act (the first act whose pending chunk `when` accepts)."""
    from chatsphere.logic import retention

    original = retention.act
    fired: list[int] = []

    def hooked(ports: Any, run: Any, pending: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired and when(pending):
            fired.append(1)
            then()
        return original(ports, run, pending, *args, **kwargs)

    monkeypatch.setattr(retention, "act", hooked)
    return fired


def run_direct(tenant: str, as_of: datetime, chunk: int = 1000) -> None:
    """One run of one tenant through the real logic and adapters, in this thread (not the local runtime, which
    holds one lock per invocation: a hook inside the run may call the API), continuing as the handler does."""
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import retention
    from chatsphere.models.common import iso
    from chatsphere.models.retention import RetentionJob

    job = RetentionJob(tenant_id=tenant, run_id=retention.new_run_id(datetime.now(UTC)), as_of=iso(as_of))
    for _ in range(100):
        result = retention.run_chunk(wiring().retention, job, datetime.now(UTC), chunk)
        if result.outcome != "continue":
            assert result.outcome == "done", result
            return
        job = job.model_copy(update={"acted": result.acted})
    raise AssertionError("the run did not finish")


def place_hold(tenant: str, subject_id: str, *categories: str) -> None:
    body = {"reason": "claim 7", "categories": list(categories)}
    r = call("PUT", f"/v1/subjects/{subject_id}/legal-hold", tenant=tenant, body=body)
    assert r.status == 200, r.body


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


def test_a_redo_after_a_failed_act_keeps_a_hold_placed_meanwhile_and_writes_nothing_into_an_erased_subject(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's scenario: the chunk's decisions are committed and its act fails once; then subject H is put under
    a legal hold and subject E is erased (completed, verified). The redo deletes none of H's interactions, writes
    nothing into E's partition or prefix, and the run's counts say what happened."""
    from chatsphere.bootstrap import wiring
    from chatsphere.dal import keyspace
    from chatsphere.logic import object_keys, retention
    from chatsphere.models.retention import RetentionJob

    settings(tenant, interactions={"days": 30, "action": "delete"})
    for name in ("H", "E", "F"):
        subject(tenant, name)
    for n in range(3):
        interaction(tenant, "H", f"claim {n}", 100 + n)
    interaction(tenant, "E", "x" * (40 * KIB), 100)  # a long text: in S3
    interaction(tenant, "E", "short", 101)
    interaction(tenant, "F", "goes", 100)
    original = retention.act
    failed: list[int] = []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(1)
            raise Fault("the act was interrupted")
        return original(*args, **kwargs)

    monkeypatch.setattr(retention, "act", fails_once)
    job = RetentionJob(tenant_id=tenant, run_id="probe-run", as_of=at(0))
    with pytest.raises(Fault):
        retention.run_chunk(wiring().retention, job, NOW)
    assert adapters_run(tenant, "probe-run").pending is not None  # the decisions were committed
    place_hold(tenant, "H", "interactions")
    erasure = call("DELETE", "/v1/subjects/E", tenant=tenant)
    assert erasure.status == 202, erasure.body
    drain(aws, "DeletionQueue")
    done = call("GET", f"/v1/requests/{erasure.body['request_id']}", tenant=tenant).body
    assert done["status"] == "completed" and done["result"]["verified"], done
    assert partition(aws, tenant, "E") == []
    for _ in range(10):  # the message comes back
        result = retention.run_chunk(wiring().retention, job, NOW)
        if result.outcome == "done":
            break
        job = job.model_copy(update={"acted": result.acted})
    assert sorted(texts(tenant, "H")) == ["claim 0", "claim 1", "claim 2"] and texts(tenant, "F") == []
    assert partition(aws, tenant, "E") == []  # no activity marker, nothing else
    listed = boto3.client("s3").list_object_versions(
        Bucket=aws.refs["DataBucket"], Prefix=object_keys.subject_prefix(tenant, "E")
    )
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []
    held = [i for i in items(aws, "SubjectsTable") if i["pk"]["S"] == keyspace.subject_pk(tenant, "H")]
    assert not any(i["sk"]["S"].startswith(keyspace.ACTIVITY_PREFIX) for i in held)
    kept = [i for i in held if i["sk"]["S"].startswith("I#")]
    assert len(kept) == 3 and all("expires_at" not in i and "#late#" in i["day_pk"]["S"] for i in kept)
    (record,) = runs(tenant)
    assert record["status"] == "completed", record
    assert record["removed"] == {"interactions": 1} and record["kept_by_hold"] == {"interactions": 3}, record


def adapters_run(tenant: str, run_id: str) -> Any:
    from chatsphere.bootstrap import wiring

    found = wiring().adapters.retention_store.get_run(tenant, run_id)
    assert found is not None
    return found


@pytest.mark.parametrize("chunk", [1000, 3], ids=["one-chunk", "small-chunks"])
def test_a_hold_placed_between_the_decision_and_the_act_keeps_what_it_covers(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """The window inside one invocation: H's interactions are decided, then a hold is placed, then the act runs.
    Nothing of H goes; what it keeps moves to the late bucket without its TTL, is counted kept once (whether the
    run reads the late bucket again after the act or had read it already), and goes once the hold is lifted."""
    from chatsphere.dal import keyspace

    settings(tenant, interactions={"days": 30, "action": "delete"})
    subject(tenant, "H")
    subject(tenant, "F")
    for n in range(3):
        interaction(tenant, "H", f"claim {n}", 0)  # today's day bucket: not back-dated
    interaction(tenant, "F", "goes", 0)
    h_pk = keyspace.subject_pk(tenant, "H")
    fired = before_act(
        monkeypatch,
        lambda pending: any(ref.subject_id == "H" for ref in pending.remove),
        lambda: place_hold(tenant, "H", "interactions"),
    )
    run_direct(tenant, NOW + timedelta(days=35), chunk)
    assert fired, "the hook never ran: H's interactions were never decided for removal"
    assert sorted(texts(tenant, "H")) == ["claim 0", "claim 1", "claim 2"] and texts(tenant, "F") == []
    record = runs(tenant)[0]
    assert record["removed"] == {"interactions": 1} and record["kept_by_hold"] == {"interactions": 3}, record
    kept = [i for i in items(aws, "SubjectsTable") if i["pk"]["S"] == h_pk and i["sk"]["S"].startswith("I#")]
    assert len(kept) == 3 and all("expires_at" not in i and "#late#" in i["day_pk"]["S"] for i in kept)
    assert not any(sk.startswith(keyspace.ACTIVITY_PREFIX) for sk in partition(aws, tenant, "H"))
    assert call("DELETE", "/v1/subjects/H/legal-hold", tenant=tenant).status in (200, 202)
    run_direct(tenant, NOW + timedelta(days=36), chunk)
    assert texts(tenant, "H") == [] and runs(tenant)[0]["removed"] == {"interactions": 3}


def test_a_subject_with_more_due_items_than_one_transaction_holds_takes_several_each_with_its_check(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TransactWriteItems holds 100 items: 200 due interactions of one subject go in three conditional writes
    (97, 97, 6 deletes beside the profile's check, the activity marker and the act's record)."""
    from chatsphere.bootstrap import wiring
    from chatsphere.dal import keyspace
    from chatsphere.dal.dynamo import serialise
    from chatsphere.models.retention import REMOVALS_PER_TRANSACTION

    settings(tenant, interactions={"days": 30, "action": "delete"})
    subject(tenant, "big")
    interaction(tenant, "big", "recent", 1)
    seeded = []
    for n in range(200):
        occurred = at(40 + n / 1000)
        iid = f"i{n:05d}"
        seeded.append(
            {
                "pk": keyspace.subject_pk(tenant, "big"),
                "sk": keyspace.interaction_sk(occurred, iid),
                "tenant_id": tenant,
                "subject_id": "big",
                "occurred_at": occurred,
                **keyspace.day_entry(tenant, "interactions", occurred, iid, late=True),
            }
        )
    ddb = boto3.client("dynamodb")
    for start in range(0, len(seeded), 25):
        puts = [{"PutRequest": {"Item": serialise(i)}} for i in seeded[start : start + 25]]
        ddb.batch_write_item(RequestItems={aws.refs["SubjectsTable"]: puts})
    store = wiring().adapters.retention_store
    original, sizes = store.remove_unless_held, []

    def spy(act: Any, category: Any, subject_id: str, refs: list[Any], marker: str | None) -> Any:
        sizes.append(len(refs))
        return original(act, category, subject_id, refs, marker)

    monkeypatch.setattr(store, "remove_unless_held", spy)
    run_direct(tenant, NOW)
    assert sizes == [REMOVALS_PER_TRANSACTION, REMOVALS_PER_TRANSACTION, 200 - 2 * REMOVALS_PER_TRANSACTION]
    assert texts(tenant, "big") == ["recent"] and runs(tenant)[0]["removed"] == {"interactions": 200}
    markers = [sk for sk in partition(aws, tenant, "big") if sk.startswith(keyspace.ACTIVITY_PREFIX)]
    assert max(markers) == keyspace.activity_sk(max(i["occurred_at"] for i in seeded))


def test_an_expired_profile_active_again_or_held_before_its_erasure_is_not_erased(
    aws: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale `erase` decision: between the decision and the act, `back` takes an interaction and `held` a legal
    hold; and `late-held` takes one between the act's check and its erasure (request_deletion's own condition, the
    version checked, refuses it). Only `idle` is erased; the counts say so."""
    from chatsphere.logic import deletion

    age_tenant(aws, tenant, 200)
    settings(tenant, inactive_profiles={"days": 60, "action": "delete"})
    for name in ("idle", "back", "held", "late-held"):
        subject(tenant, name)
        age_profile(aws, tenant, name, 100)

    def meanwhile() -> None:
        interaction(tenant, "back", "I am back", 0)
        place_hold(tenant, "held", "profile")

    fired = before_act(monkeypatch, lambda pending: bool(pending.erase), meanwhile)
    original = deletion.request_deletion
    late: list[int] = []

    def hold_first(*args: Any, **kwargs: Any) -> Any:
        if "late-held" in args and not late:
            late.append(1)
            place_hold(tenant, "late-held", "profile")
        return original(*args, **kwargs)

    monkeypatch.setattr(deletion, "request_deletion", hold_first)
    run_direct(tenant, NOW)
    drain(aws, "DeletionQueue")
    assert fired and late
    assert call("GET", "/v1/subjects/idle", tenant=tenant).status == 410
    for name in ("back", "held", "late-held"):
        got = call("GET", f"/v1/subjects/{name}", tenant=tenant)
        assert got.status == 200 and got.body["status"] == "active", (name, got.body)
    (erased,) = call("GET", "/v1/requests", tenant=tenant, query="type=deletion").body["items"]
    assert erased["details"]["initiated_by"] == "retention" and erased["status"] == "completed"
    record = runs(tenant)[0]
    assert record["removed"] == {"inactive_profiles": 1} and record["still_active_profiles"] == 1, record
    assert record["kept_by_hold"] == {"inactive_profiles": 2}, record
    # the next run, past the hold's day and back's new activity: nothing more is erased, the holds keep theirs
    run_direct(tenant, NOW + timedelta(days=1))
    drain(aws, "DeletionQueue")
    assert runs(tenant)[0]["kept_by_hold"] == {"inactive_profiles": 2} and runs(tenant)[0]["removed"] == {}
    assert call("GET", "/v1/subjects/back", tenant=tenant).status == 200


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
    from chatsphere.bootstrap import wiring

    age_tenant(aws, tenant, 60)
    settings(tenant, interactions={"days": 5, "action": "delete"})
    subject(tenant, "u-1")
    interaction(tenant, "u-1", "old", 30)
    queried: list[str] = []
    store = wiring().adapters.retention_store
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


# C901: the scenario's helpers close over one run's call counter and copy; mccabe counts them into the test.
def test_a_run_interrupted_at_every_kth_call_and_rerun_removes_exactly_what_is_due(  # noqa: C901
    aws: Any, small_chunks: None
) -> None:
    """For every position k of a clean run's AWS calls: a fresh copy of the same tenant, a run whose k-th call
    fails, and the same job again until it is done (as SQS redelivers it). At the interruption, subject b is put
    under a legal hold and subject a's erasure begins (its status `erasing`): nothing of theirs that was still there
    then goes, nothing is written into their partitions after it, and the counts say exactly that. Nothing else
    due is left, nothing else is touched, and the aggregates of the anonymised days are there."""
    from chatsphere.bootstrap import wiring
    from chatsphere.dal.clients import client
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
        """The tenant's items in RequestsTable but its request metrics (counts per day, which outlive records)."""
        from chatsphere.dal import keyspace

        rows = [i for i in items(aws, "RequestsTable") if i["pk"]["S"] == keyspace.tenant_pk(tenant)]
        return [i["sk"]["S"] for i in rows if not i["sk"]["S"].startswith(keyspace.METRICS_PREFIX)]

    def remaining(tenant: str) -> list[str]:
        """subject:day of every interaction left (the items as stored: no decryption needed)."""
        return sorted(
            f"{i['subject_id']['S']}:{i['occurred_at']['S'][:10]}"
            for i in items(aws, "SubjectsTable")
            if i["sk"]["S"].startswith("I#") and i["tenant_id"]["S"] == tenant
        )

    calls = {"n": 0, "fail_at": 0}
    current: dict[str, Any] = {}  # the copy being run, and what a and b held when the interruption came

    def intervene(tenant: str) -> dict[str, list[str]]:
        """A hold on b's interactions and a's erasure begun, as the API writes them on the profile (the test's own
        client: not a call of the run). Returns their partitions as they were."""
        from chatsphere.dal import keyspace
        from chatsphere.dal.dynamo import serialise

        found = {s: partition(aws, tenant, s) for s in ("a", "b")}
        hold = {"reason": "r", "categories": ["interactions"], "since": at(0), "request_id": "r-hold"}
        ddb.update_item(
            TableName=aws.refs["SubjectsTable"],
            Key=serialise({"pk": keyspace.subject_pk(tenant, "b"), "sk": keyspace.PROFILE_SK}),
            UpdateExpression="SET legal_hold = :h, held_pk = :p, version = version + :one",
            ExpressionAttributeValues=serialise({":h": hold, ":p": keyspace.held_pk(tenant), ":one": 1}),
        )
        ddb.update_item(
            TableName=aws.refs["SubjectsTable"],
            Key=serialise({"pk": keyspace.subject_pk(tenant, "a"), "sk": keyspace.PROFILE_SK}),
            UpdateExpression="SET #s = :e, deletion_request_id = :r, version = version + :one REMOVE day_pk, day_sk",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=serialise({":e": "erasing", ":r": "r-erasure", ":one": 1}),
        )
        return found

    def count(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            if "tenant" in current:
                current["before"] = intervene(current["tenant"])
            raise Fault(f"interrupted at call {calls['n']}")

    def complete(tenant: str) -> dict[str, Any]:
        job = RetentionJob(tenant_id=tenant, run_id=f"run-{tenant}", as_of=at(-2))
        for _ in range(200):
            try:
                result = retention.run_chunk(wiring().retention, job, NOW, 2)
            except Fault:
                continue  # the message comes back: the same job again
            if result.outcome == "done":
                break
            job = job.model_copy(update={"acted": result.acted})  # the continuation, as the handler sends it
        calls["fail_at"] = 0  # a run shorter than k is never interrupted
        run = wiring().adapters.retention_store.get_run(tenant, job.run_id)
        assert run is not None and run.status == "completed"
        return run.model_dump()

    expected = sorted(f"{s}:{at(d)[:10]}" for s, d in (("a", 10), ("b", 10), ("c", 10), ("c", 40)))
    due_days = {at(40)[:10], at(41)[:10]}

    def spared(before: dict[str, list[str]]) -> list[str]:
        """subject:day of a's and b's due interactions that were still there when the hold and the erasure came."""
        found = (f"{s}:{sk.removeprefix('I#')[:10]}" for s, sks in before.items() for sk in sks if sk.startswith("I#"))
        return [f for f in found if f.partition(":")[2] in due_days]

    ddb_client, s3 = client("dynamodb"), client("s3")
    for c in (ddb_client, s3):
        c.meta.events.register("before-call.*.*", count)
    exercised: set[int] = set()
    try:
        baseline = complete(seed(0))
        total = calls["n"]
        stride = int(os.environ.get("RETENTION_FAULT_STRIDE") or 1)  # every position; n: every n-th only
        for k in range(1, total + 1, stride):
            empty_tables(aws)  # moto reads a whole table for every index Query: keep each copy's run as cheap
            tenant = seed(k)
            current.clear()
            current["tenant"] = tenant
            calls["n"], calls["fail_at"] = 0, k
            got = complete(tenant)
            before = current.pop("before", None)  # None: the run ended before its k-th call
            if before is None:
                assert got["counts"] == baseline["counts"], k
                assert remaining(tenant) == expected, k
            else:
                # what a and b had then is exactly what they have now: nothing went, nothing was written
                assert {s: partition(aws, tenant, s) for s in ("a", "b")} == before, k
                kept = spared(before)
                exercised.add(len(kept))
                b_kept = sum(1 for f in kept if f.startswith("b:"))
                removed = {"interactions": 3 - len(kept), "closed_requests": 1}
                assert got["counts"]["removed"] == {c: n for c, n in removed.items() if n}, k
                assert got["counts"]["kept_by_hold"] == {"interactions": 1 + b_kept}, k
                assert remaining(tenant) == sorted(expected + kept), k
            assert records(tenant) == [], k
            for day in (at(40)[:10], at(41)[:10]):
                agg = call("GET", "/v1/analytics/daily", tenant=tenant, query=f"from={day}&to={day}").body["items"]
                assert len(agg) == 1, (k, day)
    finally:
        for c in (ddb_client, s3):
            c.meta.events.unregister("before-call.*.*", count)
    assert total > 50
    # interruptions before anything of a's and b's went, and after some of it had
    assert 3 in exercised and len(exercised) > 1, exercised
    assert baseline["counts"]["removed"] == {"interactions": 3, "closed_requests": 1}
    assert baseline["counts"]["kept_by_hold"] == {"interactions": 1}


def test_a_dry_run_counts_what_a_run_would_remove_and_writes_nothing_even_while_a_run_holds_the_tenant(
    aws: Any, tenant: str
) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import retention
    from chatsphere.models.retention import RetentionJob

    settings(tenant, interactions={"days": 30, "action": "delete"})
    subject(tenant, "u-1")
    for n, days_ago in enumerate((40, 41, 42, 5)):
        interaction(tenant, "u-1", f"text {n}", days_ago)
    job = RetentionJob(tenant_id=tenant, run_id="held-run", as_of=at(0))
    assert (
        retention.run_chunk(wiring().retention, job, NOW, 1).outcome == "continue"
    )  # the run holds the lease, 1 removed
    before = items(aws, "SubjectsTable")
    counts = retention.dry_run(wiring().retention, tenant, NOW, NOW)
    assert counts.removed == {"interactions": 2} and counts.kept_by_hold == {}
    assert items(aws, "SubjectsTable") == before
