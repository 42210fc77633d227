"""The local stack's event log: a request's RightsRequestStatusChanged events land in .local/events.log."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.local_stack.conftest import RunningStack, http

pytestmark = pytest.mark.local_stack

# A guard against a hung worker, not a performance assertion.
GUARD_S = 60


def events_of(stack: RunningStack, request_id: str, until: str) -> list[dict[str, Any]]:
    path = stack.local_dir / "events.log"
    guard = time.monotonic() + GUARD_S
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        found = [e for e in map(json.loads, lines) if e["detail"]["request_id"] == request_id]
        if found and found[-1]["detail"]["status"] == until:
            return found
        if time.monotonic() > guard:
            pytest.fail(f"events.log has {found} for {request_id}:\n{stack.log()[-3000:]}")
        time.sleep(0.2)


def test_an_export_s_status_changes_land_in_the_event_log(stack: RunningStack) -> None:
    key, url = stack.key(), stack.api_url
    put = http("PUT", f"{url}/v1/subjects/events-ann", key=key, json_body={"name": "Ann", "email": "ann@example.com"})
    assert put.status == 201, put.body
    r = http("POST", f"{url}/v1/subjects/events-ann/exports", key=key, json_body={"format": "json"})
    assert r.status == 202, r.body
    assert r.headers["Retry-After"] == "1"  # the local stack's jobs finish within a second
    assert http("GET", f"{url}{r.headers['Location']}", key=key).body["request_id"] == r.body["request_id"]
    events = events_of(stack, r.body["request_id"], "completed")
    assert [e["detail"]["status"] for e in events] == ["received", "in_progress", "completed"]
    assert {e["detail"]["tenant_id"] for e in events} == {stack.tenant_id()}
    assert "ann@example.com" not in json.dumps(events) and "events-ann" not in json.dumps(events)
