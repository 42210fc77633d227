"""The evidence ledger end to end against moto: actions through the API write their entries in their own
transactions, the outbox's stream (run by the local stack's own stream poller) feeds LedgerFunction, the tree's
entries and signed heads land in the Object Lock bucket, and what the API serves verifies offline with the public
key alone: `chatsphere verify` and `chatsphere ledger verify`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from chatsphere.cli import main
from chatsphere.logic import evidence, merkle
from tests.integration.helpers import call, new_tenant
from tests.integration.queues import drain, sequence
from tests.ledger_tamper import edit_entry

PERSON = {"name": "Lena Ledger", "email": "lena.ledger@example.org", "phone": "+12015550123"}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


def erase(aws: Any, tenant: str, subject: str) -> str:
    assert call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body=PERSON).status == 201
    body = {"conversation_id": "c", "role": "customer", "text": "hello"}
    assert call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body=body).status == 201
    r = call("DELETE", f"/v1/subjects/{subject}", tenant=tenant)
    assert r.status == 202, r.body
    drain(aws, "DeletionQueue")
    sequence(aws)
    return str(r.body["request_id"])


def public_key() -> bytes:
    r = call("GET", "/v1/ledger/public-key", tenant="t-any")
    assert r.status == 200 and r.headers["content-type"] == "text/plain"
    return r.text.encode()


def test_an_erasures_receipt_is_signed_and_verifies_offline_with_the_public_key_alone(
    aws: Any, tenant: str, tmp_path: Path
) -> None:
    request_id = erase(aws, tenant, "u-1")
    record = call("GET", f"/v1/requests/{request_id}", tenant=tenant).body
    r = call("GET", f"/v1/requests/{request_id}/receipt", tenant=tenant)
    assert r.status == 200, r.body
    receipt = r.body
    # the entry is the erasure's receipt: the counts, the read-back and the steps the record shows
    data = receipt["entry"]["data"]
    assert (receipt["entry"]["type"], data["request_id"]) == ("deletion.receipt", request_id)
    assert data["counts"] == record["result"]["removed"] and not any(data["read_back"].values())
    assert data["subject_hash"] == record["subject_id"] != "u-1"
    times = [step["completed_at"] for step in data["steps"]]
    assert times == sorted(times) and len(set(times)) > 1  # each step's own time
    assert receipt["tree_head"]["tree_size"] > receipt["leaf_index"]
    verdict = evidence.verify_receipt(receipt, public_key())
    assert verdict.ok, verdict.checks
    # the erasure's story in the order it happened: asked, started, the id refused, the receipt
    story = [
        (e["type"], e["data"].get("status") or e["data"].get("phase"))
        for e in call("GET", "/v1/audit", tenant=tenant, query="limit=100").body["items"]
        if e["data"].get("request_id") == request_id
    ]
    assert story[:3] == [
        ("request.created", "received"),
        ("request.status_changed", "in_progress"),
        ("deletion.tombstone", "started"),
    ]
    assert ("deletion.receipt", "completed") in story and ("deletion.tombstone", "completed") in story
    # `chatsphere verify` with only the two files: 0; any byte of the receipt changed: 1, naming the check
    (tmp_path / "key.pem").write_bytes(public_key())
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    assert main(["verify", str(tmp_path / "receipt.json"), "--public-key", str(tmp_path / "key.pem")]) == 0
    changed = json.dumps(receipt).replace('"verified": true', '"verified": false')
    assert changed != json.dumps(receipt)
    (tmp_path / "changed.json").write_text(changed)
    assert main(["verify", str(tmp_path / "changed.json"), "--public-key", str(tmp_path / "key.pem")]) == 1


def test_every_lifecycle_event_is_an_entry_and_the_audit_pages_and_filters_them(aws: Any, tenant: str) -> None:
    processor = {"name": "Mailer", "purpose": "email", "data_categories": ["contact"], "country": "DE"}
    settings = {"deadline_days": 40, "processors": [processor]}
    assert call("PUT", "/v1/settings", tenant=tenant, body=settings).status == 200
    policy = {
        "version": "2026-12",
        "effective_at": "2026-12-01T00:00:00Z",
        "url": "https://example.com/privacy",
        "sha256": "a" * 64,
    }
    assert call("POST", "/v1/policies", tenant=tenant, body=policy).status in (200, 201)
    assert call("PUT", "/v1/subjects/u-2", tenant=tenant, body=PERSON).status == 201
    hold = {"categories": ["interactions"], "reason": "Case 12 of Lena Ledger"}
    assert call("PUT", "/v1/subjects/u-2/legal-hold", tenant=tenant, body=hold).status in (200, 201)
    assert call("DELETE", "/v1/subjects/u-2/legal-hold", tenant=tenant).status in (200, 201)
    assert call("POST", "/v1/subjects/u-2/exports", tenant=tenant, body={}).status == 202
    drain(aws, "ExportQueue")
    erase(aws, tenant, "u-3")
    page = call("GET", "/v1/audit", tenant=tenant, query="limit=100").body
    types = [item["type"] for item in page["items"]]
    assert [item["seq"] for item in page["items"]] == list(range(len(types)))
    for kind in (
        "api_key.created",
        "settings.changed",
        "policy.published",
        "request.created",
        "hold.placed",
        "hold.lifted",
        "request.status_changed",
        "deletion.tombstone",
        "deletion.receipt",
    ):
        assert kind in types, (kind, types)
    [changed] = [item for item in page["items"] if item["type"] == "settings.changed"]
    assert set(changed["data"]["fields"]) == {"deadline_days", "processors"}
    assert changed["data"]["processors"][0]["name"] == "Mailer"
    # the hold's reason is tenant text: it is not in the ledger
    assert "Lena" not in json.dumps(page)
    holds = call("GET", "/v1/audit", tenant=tenant, query="type=hold.placed").body["items"]
    assert [item["type"] for item in holds] == ["hold.placed"]
    first = call("GET", "/v1/audit", tenant=tenant, query="limit=2").body
    rest = call("GET", "/v1/audit", tenant=tenant, query=f"limit=100&after={first['next_after']}").body
    assert [i["seq"] for i in first["items"] + rest["items"]] == list(range(len(types)))
    assert call("GET", "/v1/audit", tenant=tenant, query="type=nonsense").status == 422


def test_a_later_signed_head_extends_an_earlier_one_by_the_served_consistency_proof(aws: Any, tenant: str) -> None:
    erase(aws, tenant, "u-4")
    erase(aws, tenant, "u-5")
    heads = [
        call("GET", f"/v1/requests/{r}/receipt", tenant=tenant).body["tree_head"]
        for r in [item["data"]["request_id"] for item in audit(tenant, "deletion.receipt")]
    ]
    old, new = heads[0], heads[-1]
    assert old["tree_size"] < new["tree_size"]
    r = call("GET", "/v1/ledger/consistency", tenant=tenant, query=f"from={old['tree_size']}&to={new['tree_size']}")
    assert r.status == 200, r.body
    proof = r.body
    assert (proof["from_root"], proof["to_root"]) == (old["root_hash"], new["root_hash"])
    assert merkle.verify_consistency(
        old["tree_size"],
        new["tree_size"],
        bytes.fromhex(old["root_hash"]),
        bytes.fromhex(new["root_hash"]),
        [bytes.fromhex(h) for h in proof["proof"]],
    )
    beyond = f"from=1&to={new['tree_size'] + 1000}"
    assert call("GET", "/v1/ledger/consistency", tenant=tenant, query=beyond).status == 404


def audit(tenant: str, kind: str) -> list[dict[str, Any]]:
    return list(call("GET", "/v1/audit", tenant=tenant, query=f"type={kind}&limit=100").body["items"])


def test_the_bucket_is_locked_and_the_index_rebuilds_from_it(aws: Any, tenant: str) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import ledger

    erase(aws, tenant, "u-6")
    s3, bucket = boto3.client("s3"), aws.refs["LedgerBucket"]
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 730)  # the template's LedgerRetentionDays
    first = s3.list_object_versions(Bucket=bucket, Prefix=f"tenants/{tenant}/ledger/entries/")["Versions"][0]
    with pytest.raises(s3.exceptions.ClientError):  # compliance mode: no one deletes a version before its time
        s3.delete_object(Bucket=bucket, Key=first["Key"], VersionId=first["VersionId"])
    ports = wiring().ledger
    before = [leaf.model_dump() for leaf in ports.index.leaves(tenant)]
    signed_before = ports.index.signed_heads(tenant)
    head_before = ports.index.head(tenant)
    # the index lost (every item of the tenant's tree deleted), then rebuilt from the bucket alone
    ddb, table = boto3.client("dynamodb"), aws.refs["LedgerTable"]
    for item in ddb.scan(TableName=table)["Items"]:
        if item["pk"]["S"].startswith(f"T#{tenant}#"):
            ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    assert list(ports.index.leaves(tenant)) == []
    rebuilt = ledger.rebuild(ports, tenant)
    assert (rebuilt.size, rebuilt.frontier) == (head_before.size, head_before.frontier)
    assert [leaf.model_dump() for leaf in ports.index.leaves(tenant)] == before
    assert ports.index.signed_heads(tenant) == signed_before
    # and the rebuilt index proves what the old one did
    receipt = ledger.receipt(ports, tenant, audit(tenant, "deletion.receipt")[0]["data"]["request_id"])
    assert evidence.verify_receipt(receipt, public_key()).ok


def test_ledger_verify_passes_and_names_the_entry_an_edit_of_the_index_breaks(
    aws: Any, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    erase(aws, tenant, "u-7")
    assert main(["ledger", "verify", "--tenant", tenant]) == 0
    out = capsys.readouterr().out
    assert "verified" in out
    # an operator edits entry #1 in the index (and its stored hash, to match): the signed root and the locked
    # copy both tell
    edit_entry(
        boto3.client("dynamodb"), aws.refs["LedgerTable"], tenant, 1, lambda d: d.update(at="2000-01-01T00:00:00Z")
    )
    assert main(["ledger", "verify", "--tenant", tenant]) == 1
    out = capsys.readouterr().out
    assert "#1" in out
