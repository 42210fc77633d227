"""Subject rights through REST events against moto: records, correction, objection, deactivation,
settings, policies and exports (the queue drained as Lambda's event source mapping would)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest

from chatsphere.models.export import ExportJob
from chatsphere.models.requests import ExportDetails
from tests.integration.helpers import aws_calls, call, snapshot
from tests.integration.queues import drain, fire


@pytest.fixture
def tenant(aws: Any) -> str:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant

    created, _ = create_tenant(wiring().tenants, "Acme")
    return created.tenant_id


@pytest.fixture
def other_tenant(aws: Any) -> str:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant

    created, _ = create_tenant(wiring().tenants, "Globex")
    return created.tenant_id


def subject(tenant: str, sid: str = "u-1", **fields: Any) -> dict[str, Any]:
    body = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550100", **fields}
    r = call("PUT", f"/v1/subjects/{sid}", tenant=tenant, body=body)
    assert r.status == 201, r.body
    created: dict[str, Any] = r.body
    return created


def say(tenant: str, text: str, sid: str = "u-1", **extra: Any) -> dict[str, Any]:
    r = call(
        "POST",
        f"/v1/subjects/{sid}/interactions",
        tenant=tenant,
        body={"conversation_id": "c-1", "role": "customer", "text": text, **extra},
    )
    assert r.status == 201, r.body
    said: dict[str, Any] = r.body
    return said


def records(tenant: str, query: str = "") -> list[dict[str, Any]]:
    r = call("GET", "/v1/requests", tenant=tenant, query=query)
    assert r.status == 200, r.body
    items: list[dict[str, Any]] = r.body["items"]
    return items


# ----------------------------------------------------------------- correction
def test_correction_changes_fields_moves_lookup_and_records_field_names_only(tenant: str) -> None:
    subject(tenant)
    r = call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"email": "ada@newmail.example", "name": None})
    assert r.status == 200, r.body
    assert r.body["email"] == "ada@newmail.example" and r.body["name"] is None and r.body["phone"] == "+14155550100"

    old = call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": "ada@example.com"})
    new = call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": "ADA@newmail.example"})
    assert old.body == {"subject_ids": []} and new.body == {"subject_ids": ["u-1"]}

    (record,) = records(tenant, "type=correction")
    assert record["status"] == "completed" and record["details"] == {"fields_changed": ["email", "name"]}
    assert "newmail" not in json.dumps(record)


def test_correction_with_invalid_value_changes_nothing(tenant: str) -> None:
    subject(tenant)
    r = call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"phone": "12345"})
    assert r.status == 422 and r.body["errors"][0]["loc"][-1] == "phone"
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).body["phone"] == "+14155550100"
    assert records(tenant) == []


def test_correction_is_a_merge_patch_all_the_way_down_and_its_result_a_valid_profile(tenant: str) -> None:
    """contact merges entry by entry and null removes an entry (RFC 7396), as settings do; a result that is not a
    valid profile as a PUT body (33 contact entries) is a 422 that writes nothing."""
    subject(tenant, contact={"telegram": "@ada_l", "skype": "ada.l"})
    r = call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"contact": {"skype": "ada.lovelace"}})
    assert r.status == 200, r.body
    assert r.body["contact"] == {"telegram": "@ada_l", "skype": "ada.lovelace"}
    r = call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"contact": {"skype": None, "signal": "ada.99"}})
    assert r.status == 200, r.body
    assert r.body["contact"] == {"telegram": "@ada_l", "signal": "ada.99"}
    assert r.body["email"] == "ada@example.com" and r.body["name"] == "Ada Lovelace"
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).body == r.body
    assert [rec["details"] for rec in records(tenant, "type=correction")] == [{"fields_changed": ["contact"]}] * 2

    many = {f"k{n}": "v" for n in range(31)}  # 2 stored + 31 valid entries: 33, one more than a profile holds
    before = snapshot()
    r = call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"contact": many})
    assert r.status == 422 and r.headers["content-type"] == "application/problem+json", r.body
    assert [e["loc"] for e in r.body["errors"]] == [["body", "contact"]], r.body
    assert snapshot() == before


def test_correction_of_unknown_subject_is_404(tenant: str) -> None:
    assert call("PATCH", "/v1/subjects/nobody", tenant=tenant, body={"name": "X"}).status == 404
    assert records(tenant) == []


# ------------------------------------------------------------------ objection
def test_objection_shows_in_subject_and_each_change_leaves_a_record(tenant: str) -> None:
    subject(tenant)
    r = call("PUT", "/v1/subjects/u-1/objections/analytics", tenant=tenant)
    assert r.status == 200
    assert r.body["objections"] == ["analytics"]
    assert r.body["processing"]["analytics"] is False and r.body["processing"]["personalization"] is True
    r = call("DELETE", "/v1/subjects/u-1/objections/analytics", tenant=tenant)
    assert r.body["objections"] == [] and r.body["processing"]["analytics"] is True
    kinds = [(x["type"], x["details"]["action"]) for x in records(tenant)]
    assert kinds == [("objection", "withdraw"), ("objection", "object")]


def test_objection_to_an_unknown_purpose_is_422(tenant: str) -> None:
    subject(tenant)
    assert call("PUT", "/v1/subjects/u-1/objections/marketing", tenant=tenant).status == 422
    assert records(tenant) == []


# --------------------------------------------------------------- deactivation
def test_deactivated_subject_keeps_data_but_takes_no_interactions(tenant: str) -> None:
    subject(tenant)
    say(tenant, "hello")
    r = call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant)
    assert r.status == 200 and r.body["status"] == "deactivated"
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).body["name"] == "Ada Lovelace"
    assert call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).body["items"][0]["text"] == "hello"
    blocked = call(
        "POST",
        "/v1/subjects/u-1/interactions",
        tenant=tenant,
        body={"conversation_id": "c", "role": "bot", "text": "x"},
    )
    assert blocked.status == 409
    assert call("DELETE", "/v1/subjects/u-1/deactivation", tenant=tenant).body["status"] == "active"
    say(tenant, "back again")
    assert [x["details"]["action"] for x in records(tenant, "type=deactivation")] == ["reactivate", "deactivate"]


def test_replace_keeps_status_and_objections(tenant: str) -> None:
    subject(tenant)
    call("PUT", "/v1/subjects/u-1/objections/personalization", tenant=tenant)
    call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant)
    r = call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada"})
    assert r.status == 200 and r.body["status"] == "deactivated" and r.body["objections"] == ["personalization"]


# ------------------------------------------------------------------- records
def test_records_are_per_tenant_and_deadline_follows_settings(tenant: str, other_tenant: str) -> None:
    settings = call("GET", "/v1/settings", tenant=tenant).body
    assert settings["deadline_days"] == 30 and settings["extension_days"] == 60
    settings["deadline_days"] = 10
    assert call("PUT", "/v1/settings", tenant=tenant, body=settings).status == 200
    subject(tenant)
    call("PUT", "/v1/subjects/u-1/objections/improvement", tenant=tenant)
    (record,) = records(tenant)
    received, due = datetime.fromisoformat(record["received_at"]), datetime.fromisoformat(record["due_at"])
    assert due - received == timedelta(days=10)
    assert call("GET", f"/v1/requests/{record['request_id']}", tenant=tenant).body == record
    assert call("GET", f"/v1/requests/{record['request_id']}", tenant=other_tenant).status == 404
    assert records(other_tenant) == []
    assert call("GET", "/v1/settings", tenant=other_tenant).body["deadline_days"] == 30


def test_listing_pages_filters_and_rejects_foreign_cursors(tenant: str) -> None:
    subject(tenant)
    for purpose in ("analytics", "personalization", "improvement"):
        call("PUT", f"/v1/subjects/u-1/objections/{purpose}", tenant=tenant)
    call("POST", "/v1/subjects/u-1/deactivation", tenant=tenant)
    seen, cursor = [], None
    while True:
        r = call(
            "GET", "/v1/requests", tenant=tenant, query=f"limit=2&type=objection{'&cursor=' + cursor if cursor else ''}"
        )
        assert r.status == 200, r.body
        seen += r.body["items"]
        cursor = r.body["next_cursor"]
        if not cursor:
            break
    assert [x["details"]["purpose"] for x in seen] == ["improvement", "personalization", "analytics"]
    assert call("GET", "/v1/requests", tenant=tenant, query="cursor=AAAA").status == 400
    assert call("GET", "/v1/requests", tenant=tenant, query="status=bogus").status == 422


def test_listing_filters_by_subject_status_and_type_in_one_query_and_binds_cursors_to_filters(
    tenant: str, aws: Any
) -> None:
    # Given two subjects, each with closed records (objections) and an open one (an export, not yet run)
    for sid in ("cust-001", "cust-002"):
        subject(tenant, sid)
        call("PUT", f"/v1/subjects/{sid}/objections/analytics", tenant=tenant)
        call("PUT", f"/v1/subjects/{sid}/objections/improvement", tenant=tenant)
        assert call("POST", f"/v1/subjects/{sid}/exports", tenant=tenant, body={}).status == 202
    # When one subject's records are listed
    with aws_calls() as calls:
        mine = records(tenant, "subject_id=cust-002")
    # Then only its three come back, newest first, from one Query of the subject index (no Scan, no filter in code)
    assert [(x["subject_id"], x["type"]) for x in mine] == [
        ("cust-002", "export"),
        ("cust-002", "objection"),
        ("cust-002", "objection"),
    ]
    assert calls["Query"] == 1 and "Scan" not in calls, calls
    # and the filters combine: `open` is every open status
    assert [x["type"] for x in records(tenant, "status=open")] == ["export", "export"]
    assert [x["type"] for x in records(tenant, "subject_id=cust-001&status=open")] == ["export"]
    assert records(tenant, "subject_id=cust-001&status=completed&type=export") == []
    assert len(records(tenant, "subject_id=cust-001&type=objection")) == 2
    assert records(tenant, "subject_id=nobody") == []
    # And a cursor pages only the combination of filters that issued it
    first = call("GET", "/v1/requests", tenant=tenant, query="subject_id=cust-001&limit=1")
    cursor = first.body["next_cursor"]
    assert cursor
    again = call("GET", "/v1/requests", tenant=tenant, query=f"subject_id=cust-001&limit=1&cursor={cursor}")
    assert again.status == 200 and again.body["items"][0]["type"] == "objection"
    for other in ("subject_id=cust-002", "", "subject_id=cust-001&status=open", "subject_id=cust-001&overdue=true"):
        r = call("GET", "/v1/requests", tenant=tenant, query=f"{other}&limit=1&cursor={cursor}".lstrip("&"))
        assert r.status == 400, (other, r.body)
    # and a subject id that looks personal is refused as everywhere else
    assert call("GET", "/v1/requests", tenant=tenant, query="subject_id=ada%40example.com").status == 422


def test_a_listed_record_is_the_record_read_alone(tenant: str, aws: Any) -> None:
    # Given a completed export, its link included
    subject(tenant)
    say(tenant, "hello")
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={})
    drain(aws, "ExportQueue")
    # When it is read alone and in the listing
    alone = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    (listed,) = records(tenant, "type=export")
    # Then the two are the same record, download_url and all (each link signed at its read)
    assert alone["status"] == "completed" and alone["result"]["download_url"]
    assert listed["result"]["download_url"]

    def unsigned(record: dict[str, Any]) -> dict[str, Any]:
        return {
            **record,
            "result": {**record["result"], "download_url": urlparse(record["result"]["download_url"]).path},
        }

    assert unsigned(listed) == unsigned(alone)


def _queued_exports(aws: Any) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.ref("ExportQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_an_identical_open_export_is_the_answer_and_a_new_one_follows_a_closed_one(tenant: str, aws: Any) -> None:
    # Given a subject, and an export of it requested with no body at all (every field has a default)
    subject(tenant)
    first = call("POST", "/v1/subjects/u-1/exports", tenant=tenant)
    assert first.status == 202, first.body
    assert first.body["details"] == {"format": "json", "deliver_to": None}
    # and a `null` body is no object: refused, not taken as absent
    assert call("POST", "/v1/subjects/u-1/exports", tenant=tenant, raw_body="null").status == 422
    # When the same export is asked for again while it is open
    again = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    # Then the answer is the open one (200, no Location to a new record), and one job is queued
    assert again.status == 200 and again.body["request_id"] == first.body["request_id"], again.body
    assert _queued_exports(aws) == 1
    # and a different export (another format) is a request of its own
    csv_export = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "csv"})
    assert csv_export.status == 202 and csv_export.body["request_id"] != first.body["request_id"]
    # And once the open ones completed, the same export makes a new request
    drain(aws, "ExportQueue")
    later = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    assert later.status == 202 and later.body["request_id"] not in {
        first.body["request_id"],
        csv_export.body["request_id"],
    }


def test_an_export_honours_its_idempotency_key(tenant: str, aws: Any) -> None:
    # Given a subject and an export requested with an Idempotency-Key
    subject(tenant)
    key = {"Idempotency-Key": "export-0001"}
    first = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "csv"}, headers=key)
    assert first.status == 202, first.body
    drain(aws, "ExportQueue")
    # When it is retried with the same key and body, after the export completed
    retry = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "csv"}, headers=key)
    # Then it is the same request as it stands now (no second request, no second job), answered as the first was
    assert retry.status == 202, retry.body
    assert retry.body["request_id"] == first.body["request_id"] and retry.body["status"] == "completed"
    assert len(records(tenant, "type=export")) == 1 and _queued_exports(aws) == 0
    # and the same key with another body is refused, and writes nothing
    before = _state(aws)
    other = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}, headers=key)
    assert other.status == 422 and other.body["type"].endswith("/idempotency-key-reused"), other.body
    assert _state(aws) == before


def test_overdue_open_request_is_listed_and_extension_is_once_and_bounded(tenant: str) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.requests import new_request

    subject(tenant)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    item = new_request(wiring().adapters.settings.get_settings(tenant), tenant, "u-1", long_ago, ExportDetails())
    wiring().adapters.requests.create(item)
    (overdue,) = records(tenant, "overdue=true")
    assert overdue["request_id"] == item.request_id and overdue["overdue"] is True

    too_long = call(
        "POST", f"/v1/requests/{item.request_id}/extension", tenant=tenant, body={"days": 61, "reason": "complex"}
    )
    assert too_long.status == 422
    r = call(
        "POST",
        f"/v1/requests/{item.request_id}/extension",
        tenant=tenant,
        body={"days": 60, "reason": "complex request"},
    )
    assert r.status == 200 and r.body["extension"]["days"] == 60 and r.body["overdue"] is False
    again = call("POST", f"/v1/requests/{item.request_id}/extension", tenant=tenant, body={"days": 1, "reason": "more"})
    assert again.status == 409
    assert records(tenant, "overdue=true") == []


def test_monitor_counts_overdue_and_requeues_lost_exports(tenant: str, aws: Any) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.requests import new_request

    subject(tenant)
    stale = new_request(
        wiring().adapters.settings.get_settings(tenant),
        tenant,
        "u-1",
        datetime.now(UTC) - timedelta(days=31),
        ExportDetails(),
    )
    wiring().adapters.requests.create(stale)  # its queue message never got sent
    summary = fire(aws, "MonitorFunction")
    assert summary == {"open": 1, "overdue": 1, "requeued": 1}
    drain(aws, "ExportQueue")
    assert call("GET", f"/v1/requests/{stale.request_id}", tenant=tenant).body["status"] == "completed"


# ------------------------------------------------------------------- policies
def test_policy_versions_stamp_interactions_and_record_acceptance(tenant: str, aws: Any) -> None:
    now = datetime.now(UTC)
    v1 = {
        "version": "2026-01",
        "effective_at": (now - timedelta(days=100)).isoformat(),
        "url": "https://acme.example/privacy/1",
        "sha256": "a" * 64,
    }
    v2 = {
        "version": "2026-09",
        "effective_at": (now - timedelta(days=10)).isoformat(),
        "url": "https://acme.example/privacy/2",
        "sha256": "b" * 64,
    }
    sqs = boto3.client("sqs")
    watcher = sqs.create_queue(QueueName="bus-watch")["QueueUrl"]
    watcher_arn = sqs.get_queue_attributes(QueueUrl=watcher, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events")
    events.put_rule(
        Name="watch",
        EventBusName=aws.refs["EventBus"],
        EventPattern=json.dumps({"detail-type": ["PolicyVersionPublished"]}),
    )
    events.put_targets(Rule="watch", EventBusName=aws.refs["EventBus"], Targets=[{"Id": "q", "Arn": watcher_arn}])

    assert call("POST", "/v1/policies", tenant=tenant, body=v1).status == 201
    assert call("POST", "/v1/policies", tenant=tenant, body=v2).status == 201
    assert call("POST", "/v1/policies", tenant=tenant, body=v2).status == 200  # same content: idempotent
    assert call("POST", "/v1/policies", tenant=tenant, body={**v2, "sha256": "c" * 64}).status == 409
    assert [p["version"] for p in call("GET", "/v1/policies", tenant=tenant).body["items"]] == ["2026-01", "2026-09"]
    announced = sqs.receive_message(QueueUrl=watcher, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["detail"]["version"] for m in announced) == ["2026-01", "2026-09"]

    subject(tenant)
    say(tenant, "old import", occurred_at=(now - timedelta(days=50)).isoformat())
    say(tenant, "recent")
    say(tenant, "again")
    versions = [i["policy_version"] for i in call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).body["items"]]
    assert versions == ["2026-01", "2026-09", "2026-09"]

    from chatsphere.bootstrap import wiring

    accepted = wiring().adapters.subjects.get_profile(tenant, "u-1").accepted_policies  # type: ignore[union-attr]
    assert sorted(accepted) == ["2026-01", "2026-09"]
    assert accepted["2026-09"]["accepted_at"] < datetime.now(UTC).isoformat()


# -------------------------------------------------------------------- export
def fetch(url: str) -> bytes:
    """A presigned GET, fetched through moto (its host and path name the bucket and key)."""
    parsed = urlparse(url)
    bucket = parsed.netloc.split(".")[0]
    key = parsed.path.lstrip("/")
    body: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_package_holds_everything_with_checksums(tenant: str, aws: Any, fmt: str) -> None:
    subject(tenant, contact={"telegram": "@ada"})
    call("PUT", "/v1/subjects/u-1/objections/analytics", tenant=tenant)
    settings = call("GET", "/v1/settings", tenant=tenant).body
    settings["processors"] = [
        {"name": "PayCo", "purpose": "payment processing", "data_categories": ["identity"], "country": "IE"}
    ]
    call("PUT", "/v1/settings", tenant=tenant, body=settings)
    texts = [f"message {i}" for i in range(60)] + ["y" * 40_000]
    for text in texts:
        say(tenant, text)

    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": fmt})
    assert r.status == 202 and r.body["status"] == "received" and r.body["type"] == "export"
    drain(aws, "ExportQueue")
    record = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    assert record["status"] == "completed", record
    assert record["result"]["interaction_count"] == len(texts)
    expires = datetime.fromisoformat(record["result"]["expires_at"]) - datetime.fromisoformat(record["completed_at"])
    assert expires == timedelta(hours=24)

    # The package carries the tag template.yaml's lifecycle rule expires packages by.
    from chatsphere.logic.object_keys import export_package_key
    from infra import template

    (rule,) = [
        r
        for r in template.resources()["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        if r["Id"] == "expire-export-packages"
    ]
    tags = boto3.client("s3").get_object_tagging(
        Bucket=aws.refs["DataBucket"], Key=export_package_key(tenant, "u-1", record["request_id"])
    )
    assert [{"Key": t["Key"], "Value": t["Value"]} for t in tags["TagSet"]] == rule["TagFilters"]

    package = fetch(record["result"]["download_url"])
    assert hashlib.sha256(package).hexdigest() == record["result"]["sha256"]
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for name, meta in manifest["files"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == meta["sha256"], name
        subject_doc = json.loads(zf.read("subject.json"))
        processing = json.loads(zf.read("processing_record.json"))
        if fmt == "json":
            rows = [json.loads(line) for line in zf.read("interactions.jsonl").splitlines()]
        else:
            rows = list(csv.DictReader(io.StringIO(zf.read("interactions.csv").decode())))
            assert "data_dictionary.csv" in manifest["files"]
    assert [row["text"] for row in rows] == texts
    assert subject_doc["email"] == "ada@example.com" and subject_doc["contact"] == {"telegram": "@ada"}
    assert [o["purpose"] for o in subject_doc["objections"]] == ["analytics"]
    assert processing["recipients"][0]["name"] == "PayCo"
    assert {p["purpose"] for p in processing["purposes"]} == {
        "inquiries",
        "improvement",
        "personalization",
        "analytics",
        "legal_obligation",
    }
    assert set(processing["retention"]) == {"identity", "contact", "interactions", "export_packages", "request_records"}
    assert processing["rights"] and processing["source"]


def test_export_delivers_only_to_allow_listed_destinations(tenant: str, aws: Any) -> None:
    boto3.client("s3").create_bucket(Bucket="chatsphere-portability-other")
    subject(tenant)
    say(tenant, "hi")
    assert (
        call(
            "POST",
            "/v1/subjects/u-1/exports",
            tenant=tenant,
            body={"deliver_to": "s3://chatsphere-portability-other/in"},
        ).status
        == 422
    )
    settings = call("GET", "/v1/settings", tenant=tenant).body
    settings["portability_destinations"] = ["s3://chatsphere-portability-other/in"]
    call("PUT", "/v1/settings", tenant=tenant, body=settings)
    r = call(
        "POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"deliver_to": "s3://chatsphere-portability-other/in"}
    )
    assert r.status == 202
    drain(aws, "ExportQueue")
    record = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    target = record["result"]["delivered_to"]
    assert target == f"s3://chatsphere-portability-other/in/{r.body['request_id']}.zip"
    delivered = (
        boto3.client("s3")
        .get_object(Bucket="chatsphere-portability-other", Key=f"in/{r.body['request_id']}.zip")["Body"]
        .read()
    )
    assert hashlib.sha256(delivered).hexdigest() == record["result"]["sha256"]


def test_export_requests_are_tenant_isolated(tenant: str, other_tenant: str, aws: Any) -> None:
    subject(tenant)
    assert call("POST", "/v1/subjects/u-1/exports", tenant=other_tenant, body={"format": "json"}).status == 404
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    drain(aws, "ExportQueue")
    assert call("GET", f"/v1/requests/{r.body['request_id']}", tenant=other_tenant).status == 404
    assert records(other_tenant) == []


def test_export_worker_is_idempotent_on_redelivery(tenant: str, aws: Any) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.export import run_export

    subject(tenant)
    r = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    drain(aws, "ExportQueue")
    first = call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body
    job = ExportJob(tenant_id=tenant, request_id=r.body["request_id"])
    again = run_export(wiring().export, job, datetime.now(UTC))
    assert again is not None and again.status == "completed"
    assert (
        call("GET", f"/v1/requests/{r.body['request_id']}", tenant=tenant).body["result"]["sha256"]
        == first["result"]["sha256"]
    )


# ------------------------------------------------------------------ bad input
def _state(aws: Any) -> dict[str, list[Any]]:
    """Every item of every table, for before/after comparison."""
    ddb = boto3.client("dynamodb")
    return {
        t: sorted(json.dumps(i, sort_keys=True, default=str) for i in ddb.scan(TableName=t)["Items"])
        for t in ddb.list_tables()["TableNames"]
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/v1/settings", {"deadline_days": 0}, 422),
        ("PUT", "/v1/settings", {"portability_destinations": ["https://not-s3"]}, 422),
        (
            "PUT",
            "/v1/settings",
            {"processors": [{"name": "X", "purpose": "p", "data_categories": ["dna"], "country": "IE"}]},
            422,
        ),
        (
            "PUT",
            "/v1/settings",
            {"processors": [{"name": "X", "purpose": "p", "data_categories": ["identity"], "country": "IE"}] * 2},
            422,
        ),
        ("PUT", "/v1/settings", {"surprise": 1}, 422),
        (
            "POST",
            "/v1/policies",
            {"version": "v1", "effective_at": "2026-01-01T00:00:00", "url": "https://x.example", "sha256": "a" * 64},
            422,
        ),
        (
            "POST",
            "/v1/policies",
            {"version": "v1", "effective_at": "2026-01-01T00:00:00Z", "url": "http://x.example", "sha256": "a" * 64},
            422,
        ),
        (
            "POST",
            "/v1/policies",
            {"version": "v 1", "effective_at": "2026-01-01T00:00:00Z", "url": "https://x.example", "sha256": "a" * 64},
            422,
        ),
        ("POST", "/v1/subjects/u-1/exports", {"format": "xml"}, 422),
        ("POST", "/v1/subjects/u-1/exports", {"deliver_to": "s3://Bad_Bucket"}, 422),
        ("POST", "/v1/requests/r0000000000000000000000000000/extension", {"days": 0, "reason": "x"}, 422),
        ("POST", "/v1/requests/r0000000000000000000000000000/extension", {"days": 5, "reason": ""}, 422),
        ("POST", "/v1/requests/not-an-id/extension", {"days": 5, "reason": "x"}, 404),
        ("GET", "/v1/requests/not-an-id", None, 404),
        ("GET", "/v1/requests/r0000000000000000000000000000", None, 404),
    ],
)
def test_bad_input_to_rights_routes_is_a_problem_and_writes_nothing(
    tenant: str, aws: Any, method: str, path: str, body: Any, status: int
) -> None:
    subject(tenant)
    before = _state(aws)
    r = call(method, path, tenant=tenant, body=body)
    assert r.status == status, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(r.body)
    if status == 422:
        assert r.body["errors"] and all(e["msg"] for e in r.body["errors"])
    assert _state(aws) == before


@pytest.mark.parametrize("request_id", ["not-an-id", "R0000000000000000000000000000", "r" + "0" * 27, "r" + "0" * 29])
@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("GET", "/v1/requests/{}", None),
        ("POST", "/v1/requests/{}/extension", {"days": 5, "reason": "complex"}),
        ("GET", "/v1/requests/{}/receipt", None),
        ("GET", "/v1/offboarding/{}/manifest", None),
        ("POST", "/v1/offboarding/{}/confirmation", None),
    ],
)
def test_a_request_id_never_issued_is_404_without_a_read(
    tenant: str, method: str, route: str, body: Any, request_id: str
) -> None:
    # Given an id that is not of the issued shape (r and 28 lowercase hex digits)
    with aws_calls() as calls:
        # When a tenant names it
        r = call(method, route.format(request_id), tenant=tenant, body=body)
    # Then no such request exists (404, not a 422 about a pattern), and nothing was read to say so
    assert r.status == 404, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert not calls, calls


def test_malformed_and_mistyped_bodies_on_rights_routes(tenant: str, aws: Any) -> None:
    before = _state(aws)
    assert call("PUT", "/v1/settings", tenant=tenant, raw_body="{not json").status == 400
    assert (
        call("PUT", "/v1/settings", tenant=tenant, raw_body="{}", headers={"Content-Type": "text/plain"}).status == 415
    )
    assert call("POST", "/v1/policies", tenant=tenant, raw_body=b"\xff\xfe{}").status == 400
    assert _state(aws) == before
