"""An export end to end on `make run`'s stack: 300 interactions in over HTTP (twelve of the export's pages of 25;
the memory of much larger exports is measured in-process, tests/unit/test_export_memory.py), the queue worker
builds the package, the download link fetches it, and every count and checksum holds. The other tenant sees none
of it."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.local_stack.conftest import RunningStack, http

pytestmark = pytest.mark.local_stack

SUBJECT = "export-bob"
COUNT = 300
LARGE = {7, 250}  # two texts over 32 KiB, so the export reads S3 too
# A guard against a hung worker, not a performance assertion.
DONE_GUARD_S = 300


def text(n: int) -> str:
    return (f"message {n} " + "z" * 40_000) if n in LARGE else f"message {n}: where is order {n}?"


def wait_done(stack: RunningStack, request_id: str) -> dict[str, Any]:
    guard = time.monotonic() + DONE_GUARD_S
    while True:
        record: dict[str, Any] = http("GET", f"{stack.api_url}/v1/requests/{request_id}", key=stack.key()).body
        if record["status"] not in ("received", "in_progress"):
            return record
        if time.monotonic() > guard:
            pytest.fail(f"export still {record['status']}:\n{stack.log()[-3000:]}")
        time.sleep(0.2)


def test_export_of_300_interactions_downloads_complete_and_verified(stack: RunningStack) -> None:
    api, key, other = stack.api_url, stack.key(0), stack.key(1)
    subject = {"name": "Exporting Bob", "email": "export.bob@example.net", "phone": "+14155550142"}
    assert http("PUT", f"{api}/v1/subjects/{SUBJECT}", key=key, json_body=subject).status == 201

    def post(n: int) -> int:
        body = {"conversation_id": f"c-{n // 50}", "role": "customer" if n % 2 else "agent", "text": text(n)}
        return http("POST", f"{api}/v1/subjects/{SUBJECT}/interactions", key=key, json_body=body).status

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(post, range(COUNT)))
    assert statuses == [201] * COUNT

    for fmt in ("json", "csv"):
        requested = http("POST", f"{api}/v1/subjects/{SUBJECT}/exports", key=key, json_body={"format": fmt})
        assert requested.status == 202, requested.body
        record = wait_done(stack, requested.body["request_id"])
        assert record["status"] == "completed", record
        result = record["result"]
        assert result["interaction_count"] == COUNT

        package = http("GET", result["download_url"])
        assert package.status == 200, package.body
        assert isinstance(package.body, bytes)
        assert hashlib.sha256(package.body).hexdigest() == result["sha256"]
        with zipfile.ZipFile(io.BytesIO(package.body)) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            for name, meta in manifest["files"].items():
                assert hashlib.sha256(zf.read(name)).hexdigest() == meta["sha256"], name
            name = "interactions.jsonl" if fmt == "json" else "interactions.csv"
            assert manifest["files"][name]["records"] == COUNT
            if fmt == "json":
                texts = {json.loads(line)["text"] for line in zf.read(name).splitlines()}
                assert texts == {text(n) for n in range(COUNT)}
            assert json.loads(zf.read("subject.json"))["email"] == "export.bob@example.net"

        # The other tenant: no record, no listing, no export of this subject, no read of its data.
        request_url = f"{api}/v1/requests/{record['request_id']}"
        assert http("GET", request_url, key=other).status == 404
        listed = http("GET", f"{api}/v1/requests?type=export", key=other).body["items"]
        assert record["request_id"] not in {r["request_id"] for r in listed}
        assert http("POST", f"{api}/v1/subjects/{SUBJECT}/exports", key=other, json_body={"format": fmt}).status == 404
        assert http("GET", f"{api}/v1/subjects/{SUBJECT}/interactions", key=other).status == 404
