"""Offboarding on `make run`'s stack, over HTTP: a tenant of 50 subjects, one under a legal hold, gets every
package back with a manifest that checks against them; once confirmed, the residue scanner finds nothing of the 49,
the held one is kept, the tenant's key gets 403, and the receipt `chatsphere tenants receipt --local` prints verifies
offline with `chatsphere verify`. And `chatsphere tenants offboard --yes --local` does the same for an operator."""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.local_stack.conftest import RunningStack, http
from tests.local_stack.test_ledger_flow import cli, new_tenant
from tests.residue import SubjectValues, assert_no_residue

pytestmark = pytest.mark.local_stack
SUBJECTS = 50
HELD = "ob-07"
GUARD_S = 240  # a hang guard, not a performance assertion


def person(n: int) -> dict[str, str]:
    return {"name": f"Otto Offboard{n:02d}", "email": f"otto.offboard{n:02d}@example.org"}


def said(n: int) -> str:
    return f"Order {n:02d} arrived broken, regards Otto {n:02d}"


def fetch(url: str) -> bytes:
    assert url.startswith("http://127.0.0.1:"), url
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the stack's own moto, checked above
        body: bytes = response.read()
    return body


def wait_for(stack: RunningStack, key: str, request_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        record = http("GET", f"{stack.api_url}/v1/requests/{request_id}", key=key).body
        if record["status"] in statuses:
            return dict(record)
        if time.monotonic() - started > GUARD_S:
            pytest.fail(f"offboarding still {record['status']} after {GUARD_S} s:\n{stack.log()[-3000:]}")
        time.sleep(0.3)


def test_a_tenant_of_50_subjects_is_returned_then_erased_but_the_held_one_over_http(
    stack: RunningStack, tmp_path: Path
) -> None:
    api = stack.api_url
    tenant, key = new_tenant(stack)
    for n in range(SUBJECTS):
        assert http("PUT", f"{api}/v1/subjects/ob-{n:02d}", key=key, json_body=person(n)).status == 201
        body = {"conversation_id": "c", "role": "customer", "text": said(n)}
        assert http("POST", f"{api}/v1/subjects/ob-{n:02d}/interactions", key=key, json_body=body).status == 201
    hold = {"reason": "Claim 4", "categories": ["profile", "interactions"]}
    assert http("PUT", f"{api}/v1/subjects/{HELD}/legal-hold", key=key, json_body=hold).status in (200, 201)

    started = http("POST", f"{api}/v1/offboarding", key=key, json_body={"format": "json"})
    assert started.status == 202, started.body
    request_id = started.body["request_id"]
    returned = wait_for(stack, key, request_id, ("awaiting_confirmation", "failed"))
    assert returned["status"] == "awaiting_confirmation", returned
    assert http("GET", f"{api}/v1/subjects/ob-00", key=key).status == 200  # nothing deleted yet

    # The manifest checks against every package.
    view = http("GET", f"{api}/v1/offboarding/{request_id}/manifest?limit=1000", key=key).body
    manifest = fetch(view["manifest_url"])
    assert hashlib.sha256(manifest).hexdigest() == view["manifest_sha256"] == returned["result"]["manifest_sha256"]
    listed = {p["subject_id"]: p for p in json.loads(manifest)["packages"]}
    assert sorted(listed) == [f"ob-{n:02d}" for n in range(SUBJECTS)] and view["next_cursor"] is None
    for package in view["packages"]:
        data = fetch(package["download_url"])
        assert hashlib.sha256(data).hexdigest() == package["sha256"] == listed[package["subject_id"]]["sha256"]
        n = int(package["subject_id"][3:])
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert json.loads(zf.read("subject.json"))["email"] == person(n)["email"]
            assert said(n) in zf.read("interactions.jsonl").decode()

    # Confirmed: every copy goes, but the held subject's.
    assert http("POST", f"{api}/v1/offboarding/{request_id}/confirmation", key=key).status == 202
    started_at = time.monotonic()
    while http("GET", f"{api}/v1/requests/{request_id}", key=key).status == 200:
        if time.monotonic() - started_at > GUARD_S:
            pytest.fail(f"the offboarding did not end in {GUARD_S} s:\n{stack.log()[-3000:]}")
        time.sleep(0.3)
    assert http("GET", f"{api}/v1/subjects/ob-00", key=key).status == 403  # the key is gone with the tenant
    moto = stack.state["aws_endpoint_url"]
    erased = [SubjectValues.from_profile(f"ob-{n:02d}", person(n), [said(n)]) for n in range(SUBJECTS)]
    assert_no_residue([v for v in erased if v.subject_id != HELD], endpoint_url=moto)  # one scan for the 49

    # The receipt, printed for the operator, verifies offline.
    pem = http("GET", f"{api}/v1/ledger/public-key", key=stack.key())
    (tmp_path / "ledger.pem").write_bytes(pem.body)
    done = cli(stack, "tenants", "receipt", "--tenant", tenant, "--local", "--output", str(tmp_path / "receipt.json"))
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "receipt.json").read_text())["entry"]["data"]
    assert (data["status"], data["subjects_erased"], len(data["subjects_kept"])) == (
        "completed_with_exceptions",
        SUBJECTS - 1,
        1,
    )
    assert data["returned"]["packages"] == SUBJECTS and data["returned"]["manifest_sha256"] == view["manifest_sha256"]
    verified = cli(stack, "verify", str(tmp_path / "receipt.json"), "--public-key", str(tmp_path / "ledger.pem"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    listed_tenants = cli(stack, "tenants", "list", "--local")
    assert {t["tenant_id"]: t["status"] for t in json.loads(listed_tenants.stdout)}[tenant] == "offboarded"


def test_an_operator_offboards_a_tenant_from_the_console(stack: RunningStack) -> None:
    api = stack.api_url
    tenant, key = new_tenant(stack)
    assert http("PUT", f"{api}/v1/subjects/op-1", key=key, json_body=person(1)).status == 201
    done = cli(stack, "tenants", "offboard", "--tenant", tenant, "--yes", "--local", "--wait", str(GUARD_S))
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "completed" and record["details"]["initiated_by"] == "operator"
    assert record["result"]["packages"] == 1 and record["result"]["erased"] == 1
    listed = cli(stack, "tenants", "list", "--local")  # its key stops once the gateway's cached answer expires
    assert {t["tenant_id"]: t["status"] for t in json.loads(listed.stdout)}[tenant] == "offboarded"
