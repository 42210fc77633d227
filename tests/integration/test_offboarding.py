"""Offboarding against moto, through the API and the jobs: every subject's package comes back with a manifest
that checks against them, nothing is deleted before the controller confirms, then every subject but the held one
is erased through the deletion path and the tenant's own data goes; the receipt is a signed ledger entry that
verifies offline, the keys get 403 and the tenant is listed as offboarded."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from chatsphere.bootstrap import wiring
from chatsphere.cli import main
from chatsphere.logic import evidence
from tests.integration.helpers import call, call_with_key, new_tenant
from tests.integration.queues import drain, sequence
from tests.residue import SubjectValues, assert_no_residue

SUBJECTS = 7
HELD = "s-03"


def person(n: int) -> dict[str, Any]:
    return {"name": f"Olga Offboard{n:02d}", "email": f"olga.offboard{n:02d}@example.org"}


def text(n: int, k: int) -> str:
    return f"My parcel {n:02d}-{k} is late, sincerely O{n:02d}"


@pytest.fixture
def tenant(aws: Any) -> tuple[str, str]:
    tenant_id, key = new_tenant("Acme")
    for n in range(SUBJECTS):
        subject = f"s-{n:02d}"
        assert call("PUT", f"/v1/subjects/{subject}", tenant=tenant_id, body=person(n)).status == 201
        for k in range(n % 3 + 1):
            body = {"conversation_id": "c", "role": "customer", "text": text(n, k)}
            assert call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant_id, body=body).status == 201
    assert call("PATCH", "/v1/settings", tenant=tenant_id, body={"deadline_days": 20}).status == 200
    hold = {"reason": "Case 12", "categories": ["profile", "interactions"]}
    assert call("PUT", f"/v1/subjects/{HELD}/legal-hold", tenant=tenant_id, body=hold).status in (200, 201)
    return tenant_id, key


def get(url: str) -> bytes:
    """A presigned link, fetched as a client would (moto in-process answers botocore's own HTTP)."""
    import urllib.parse

    parsed = urllib.parse.urlparse(url)
    bucket = parsed.netloc.split(".")[0] if ".s3" in parsed.netloc else parsed.path.split("/")[1]
    key = parsed.path.lstrip("/") if ".s3" in parsed.netloc else parsed.path.split("/", 2)[2]
    body: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=urllib.parse.unquote(key))["Body"].read()
    return body


def test_a_tenant_gets_everything_back_then_every_copy_goes_but_what_a_hold_keeps(
    aws: Any, tenant: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant_id, key = tenant
    r = call("POST", "/v1/offboarding", tenant=tenant_id, body={"format": "json"})
    assert r.status == 202, r.body
    request_id = r.body["request_id"]
    assert r.headers["location"].endswith(f"/v1/requests/{request_id}") and r.body["type"] == "offboarding"
    again = call("POST", "/v1/offboarding", tenant=tenant_id, body={})
    assert (again.status, again.body["request_id"]) == (200, request_id)  # asking twice returns the open one
    early = call("POST", f"/v1/offboarding/{request_id}/confirmation", tenant=tenant_id)
    assert early.status == 409, early.body  # nothing is returned yet

    # Phase 1: the return. Nothing is deleted.
    drain(aws, "DeletionQueue")
    record = call("GET", f"/v1/requests/{request_id}", tenant=tenant_id).body
    assert record["status"] == "awaiting_confirmation", record
    assert record["result"]["packages"] == SUBJECTS
    assert record["result"]["interactions"] == sum(n % 3 + 1 for n in range(SUBJECTS))
    assert call("GET", "/v1/subjects/s-00", tenant=tenant_id).status == 200
    view = call("GET", f"/v1/offboarding/{request_id}/manifest", tenant=tenant_id, query="limit=3")
    assert view.status == 200, view.body
    packages = list(view.body["packages"])
    cursor = view.body["next_cursor"]
    while cursor:
        page = call("GET", f"/v1/offboarding/{request_id}/manifest", tenant=tenant_id, query=f"limit=3&cursor={cursor}")
        packages += page.body["packages"]
        cursor = page.body["next_cursor"]
    assert sorted(p["subject_id"] for p in packages) == [f"s-{n:02d}" for n in range(SUBJECTS)]
    stored = get(view.body["manifest_url"])
    assert hashlib.sha256(stored).hexdigest() == view.body["manifest_sha256"] == record["result"]["manifest_sha256"]
    manifest = json.loads(stored)
    assert manifest["package_count"] == SUBJECTS and len(manifest["packages"]) == SUBJECTS
    for listed in packages:
        data = get(listed["download_url"])
        assert hashlib.sha256(data).hexdigest() == listed["sha256"] and len(data) == listed["bytes"]
        n = int(listed["subject_id"][2:])
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            subject = json.loads(zf.read("subject.json"))
            lines = zf.read("interactions.jsonl").decode().splitlines()
        assert subject["email"] == person(n)["email"] and len(lines) == listed["interaction_count"] == n % 3 + 1

    # Phase 2: confirmed, every copy goes, but what the hold keeps.
    confirmed = call("POST", f"/v1/offboarding/{request_id}/confirmation", tenant=tenant_id)
    assert confirmed.status == 202, confirmed.body
    assert call("POST", f"/v1/offboarding/{request_id}/confirmation", tenant=tenant_id).status == 200
    drain(aws, "DeletionQueue")
    sequence(aws)
    assert call_with_key(key, "GET", "/v1/subjects/s-00").status == 403  # the keys are gone
    erased = [
        SubjectValues.from_profile(f"s-{n:02d}", person(n), [text(n, k) for k in range(n % 3 + 1)])
        for n in range(SUBJECTS)
        if f"s-{n:02d}" != HELD
    ]
    assert_no_residue(erased)

    # The receipt: a sealed ledger entry, printed for the operator, verifying offline.
    assert main(["tenants", "receipt", "--tenant", tenant_id, "--output", str(tmp_path / "receipt.json")]) == 0
    receipt = json.loads((tmp_path / "receipt.json").read_text())
    data = receipt["entry"]["data"]
    assert receipt["entry"]["type"] == "offboarding.receipt" and data["status"] == "completed_with_exceptions"
    assert data["subjects_erased"] == SUBJECTS - 1 and len(data["subjects_kept"]) == 1
    assert data["returned"]["packages"] == SUBJECTS and data["returned"]["manifest_sha256"] == manifest_sha(view)
    assert data["counts"]["interactions"] == sum(n % 3 + 1 for n in range(SUBJECTS) if f"s-{n:02d}" != HELD)
    assert (data["counts"]["api_keys"], data["counts"]["settings"]) == (1, 1)
    assert data["counts"]["request_records"] >= SUBJECTS  # each erasure's record, the hold's, the settings'...
    assert data["counts"]["return_objects"] == SUBJECTS + 1 <= data["counts"]["return_object_versions"]
    assert not any(data["read_back"].values())
    # The held subject stays, restricted; the tenant is listed as offboarded, its secret gone.
    adapters = wiring().adapters
    held = adapters.subjects.get_profile(tenant_id, HELD)
    assert held is not None and held.status == "restricted" and adapters.subjects.count_subjects(tenant_id) == 1
    gone = adapters.tenants.get_tenant(tenant_id)
    assert gone is not None and (gone.status, gone.hmac_key_wrapped) == ("offboarded", None)
    assert main(["tenants", "list"]) == 0
    listed = {t["tenant_id"]: t["status"] for t in json.loads(capsys.readouterr().out.splitlines()[-1])}
    assert listed[tenant_id] == "offboarded"
    pem = call("GET", "/v1/ledger/public-key", tenant="t-any").text.encode()
    assert evidence.verify_receipt(receipt, pem).ok
    (tmp_path / "key.pem").write_bytes(pem)
    assert main(["verify", str(tmp_path / "receipt.json"), "--public-key", str(tmp_path / "key.pem")]) == 0


def manifest_sha(view: Any) -> str:
    return str(view.body["manifest_sha256"])


# ------------------------------------------------------------------ interrupted anywhere
class _FailAt:
    """Fails the k-th AWS call any client makes (once armed), as a crash or a throttle would."""

    def __init__(self) -> None:
        self.k, self.calls = 0, 0

    def __call__(self, **_: Any) -> None:
        self.calls += 1
        if self.calls == self.k:
            raise ConnectionError(f"injected failure at call {self.k}")


def _small_tenant() -> tuple[str, str]:
    tenant_id, _ = new_tenant("Faulty")
    for n in range(3):
        assert call("PUT", f"/v1/subjects/s-{n}", tenant=tenant_id, body=person(n)).status == 201
        body = {"conversation_id": "c", "role": "customer", "text": text(n, 0)}
        assert call("POST", f"/v1/subjects/s-{n}/interactions", tenant=tenant_id, body=body).status == 201
    hold = {"reason": "Case 7", "categories": ["interactions"]}
    assert call("PUT", "/v1/subjects/s-1/legal-hold", tenant=tenant_id, body=hold).status in (200, 201)
    r = call("POST", "/v1/offboarding", tenant=tenant_id, body={})
    assert r.status == 202
    return tenant_id, str(r.body["request_id"])


def _offboard(tenant_id: str, request_id: str, counter: _FailAt, budget: int) -> dict[str, Any]:
    """Run both phases in-process, rerunning after each failure as the queue redelivers; confirm in between."""
    from chatsphere.logic import offboarding
    from chatsphere.models.common import utc_now
    from chatsphere.models.deletion import DeletionJob

    ports = wiring().offboarding
    job = DeletionJob(tenant_id=tenant_id, request_id=request_id, scope="tenant")
    for _ in range(budget):
        try:
            outcome = offboarding.run_offboarding(ports, job, utc_now())
        except ConnectionError:
            continue
        if outcome == "awaiting_confirmation":
            armed, counter.k = counter.k, 0
            offboarding.confirm_offboarding(ports, tenant_id, request_id, utc_now())
            counter.k = armed
        elif outcome in ("done", "skipped"):
            break
    counter.k = 0  # the job is over: the test's own reads are not the job's
    item = ports.export.requests.get(tenant_id, request_id)
    assert item is not None and item.result is not None
    return item.result.model_dump()


def test_an_offboarding_failed_at_every_kth_aws_call_and_rerun_ends_with_exact_counts_and_no_residue(
    aws: Any,
) -> None:
    import os

    from chatsphere.dal.clients import client

    counter = _FailAt()
    for service in ("dynamodb", "s3", "sqs", "events", "kms"):
        client(service).meta.events.register("before-call", counter)
    tenant_id, request_id = _small_tenant()
    counter.calls = 0
    expected = _offboard(tenant_id, request_id, counter, 100)
    total = counter.calls
    assert expected["erased"] == 2 and len(expected["kept"]) == 1 and total > 100
    fewest_versions = expected["removed"].pop("return_object_versions")
    exact = ("packages", "interactions", "erased", "removed", "remaining")  # bytes: each tenant's own packages
    stride = int(os.environ.get("OFFBOARDING_FAULT_STRIDE") or 10)  # every 10th call by default; 1: every one
    for k in range(1, total + 1, stride):
        tenant_id, request_id = _small_tenant()
        counter.k, counter.calls = k, 0
        got = _offboard(tenant_id, request_id, counter, total + 10)
        record = call("GET", f"/v1/requests/{request_id}", tenant=tenant_id).body
        assert record["status"] == "completed_with_exceptions", (k, record["status"])
        versions = got["removed"].pop("return_object_versions")  # a retried page writes its packages again
        assert versions >= fewest_versions, k
        assert {f: got[f] for f in exact} == {f: expected[f] for f in exact}, (k, got["removed"])
        assert [s["subject_id"] for s in got["kept"]] == ["s-1"], k
        listed = boto3.client("s3").list_object_versions(
            Bucket=aws.refs["DataBucket"], Prefix=f"tenants/{tenant_id}/offboarding/"
        )
        assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == [], k
        assert wiring().adapters.offboarding.leftovers(tenant_id, request_id, 10) == [], k
        assert wiring().adapters.subjects.count_subjects(tenant_id) == 1, k
