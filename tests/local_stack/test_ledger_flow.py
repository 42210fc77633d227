"""The evidence ledger on `make run`'s stack: a day of a tenant's traffic over HTTP, the outbox's stream polled by
the stack as Lambda would, the daily signing fired; then `chatsphere ledger verify --local` passes, a served
receipt verifies with `chatsphere verify` and the PEM alone in an environment with no AWS variable at all, and an
entry edited in the index fails the check, named."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.ledger_tamper import edit_entry
from tests.local_stack.conftest import ROOT, RunningStack, http, make_invoke

pytestmark = pytest.mark.local_stack
CLI = str(ROOT / ".venv" / "bin" / "chatsphere")
GUARD_S = 60  # a hang guard, not a performance assertion


def cli(stack: RunningStack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], cwd=stack.home, env=env or stack.env, capture_output=True, text=True, check=False
    )


def new_tenant(stack: RunningStack) -> tuple[str, str]:
    done = cli(stack, "tenants", "create", "--name", "Ledger Ltd", "--local")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    return created["tenant_id"], created["api_key"]


def eventually(stack: RunningStack, url: str, key: str) -> Any:
    started = time.monotonic()
    while True:
        r = http("GET", url, key=key)
        if r.status == 200:
            return r
        if time.monotonic() - started > GUARD_S:
            pytest.fail(f"{url} still {r.status} after {GUARD_S} s:\n{stack.log()[-3000:]}")
        time.sleep(0.2)


def a_day_of_traffic(stack: RunningStack, key: str) -> str:
    api = stack.api_url
    for subject in ("led-1", "led-2"):
        assert http("PUT", f"{api}/v1/subjects/{subject}", key=key, json_body={"name": "Lea Ledger"}).status == 201
        said = {"conversation_id": "c", "role": "customer", "text": "where is my parcel?"}
        assert http("POST", f"{api}/v1/subjects/{subject}/interactions", key=key, json_body=said).status == 201
    assert http("PUT", f"{api}/v1/settings", key=key, json_body={"deadline_days": 40}).status == 200
    assert http("PATCH", f"{api}/v1/subjects/led-1", key=key, json_body={"name": "Lea L."}).status == 200
    export = http("POST", f"{api}/v1/subjects/led-1/exports", key=key, json_body={})
    assert export.status == 202
    erasure = http("DELETE", f"{api}/v1/subjects/led-2", key=key)
    assert erasure.status == 202
    return str(erasure.body["request_id"])


def test_a_days_log_verifies_its_receipt_verifies_offline_and_an_edited_entry_is_named(
    stack: RunningStack, tmp_path: Path
) -> None:
    tenant, key = new_tenant(stack)
    erasure = a_day_of_traffic(stack, key)
    receipt = eventually(stack, f"{stack.api_url}/v1/requests/{erasure}/receipt", key).body
    pem = http("GET", f"{stack.api_url}/v1/ledger/public-key", key=key)
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    assert pem.status == 200 and pem.content_type == "text/plain" and isinstance(pem.body, bytes)
    (tmp_path / "ledger.pem").write_bytes(pem.body)
    # the daily signing, as its schedule would fire it
    make_invoke(stack, "LedgerFunction", ROOT / "events" / "DailyCheckpoints.json")
    # chatsphere verify, with no AWS variable at all: only the two files
    bare = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = cli(stack, "verify", str(tmp_path / "receipt.json"), "--public-key", str(tmp_path / "ledger.pem"), env=bare)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "includes entry" in done.stdout
    # the whole log: every entry, every signed head, consistency, the locked copies
    done = cli(stack, "ledger", "verify", "--tenant", tenant, "--local")
    assert done.returncode == 0, done.stdout + done.stderr
    # an operator edits entry #1 in the index, its hash too so that the leaf matches: named
    aws_env = stack.state["aws_env"]
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=stack.state["aws_endpoint_url"],
        region_name=aws_env.get("AWS_DEFAULT_REGION") or aws_env.get("AWS_REGION"),
        aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY"),
    )
    edit_entry(ddb, stack.state["resources"]["LedgerTable"], tenant, 1, lambda d: d["data"].update(status="rejected"))
    done = cli(stack, "ledger", "verify", "--tenant", tenant, "--local")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "entry #1" in done.stdout
