"""Retention and analytics end to end on `make run`'s stack: interactions imported with past times, a short
retention, and `make invoke` of the Retention function's own sample event (its chunks run through RetentionQueue
on the stack's poller, 3 items a chunk). Exactly the expired interactions go, the held ones stay, nothing of the
expired texts is left in the stack's moto, and the day's analytics leave out the subject who objected."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.local_stack.conftest import ROOT, RunningStack, http, make_invoke
from tests.residue import SubjectValues, residue

pytestmark = pytest.mark.local_stack

RUN_GUARD_S = 60  # a hang guard, not a performance assertion
NOW = datetime.now(UTC)
SUBJECTS = ("ret-a", "ret-b", "ret-held", "ret-objector")


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expired_text(subject: str, n: int) -> str:
    return f"{subject} asked about the cobalt parcel {n} long ago"


def new_tenant(stack: RunningStack) -> str:
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "chatsphere"), "tenants", "create", "--name", "Retention Ltd", "--local"],
        cwd=stack.home,
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["api_key"])


def texts(stack: RunningStack, key: str, subject: str) -> list[str]:
    r = http("GET", f"{stack.api_url}/v1/subjects/{subject}/interactions?limit=100", key=key)
    assert r.status == 200, r.body
    return sorted(i["text"] for i in r.body["items"])


def test_retention_removes_exactly_the_expired_and_analytics_leave_out_the_objector(stack: RunningStack) -> None:
    api, key = stack.api_url, new_tenant(stack)
    settings = http("GET", f"{api}/v1/settings", key=key).body
    settings["retention"]["interactions"] = {"days": 30, "action": "delete"}
    settings["analytics_min_count"] = 2
    assert http("PUT", f"{api}/v1/settings", key=key, json_body=settings).status == 200
    for subject in SUBJECTS:
        assert http("PUT", f"{api}/v1/subjects/{subject}", key=key, json_body={"name": "Sam Example"}).status == 201
        for n, days_ago in enumerate((100, 45, 1)):
            text = expired_text(subject, n) if days_ago > 30 else f"{subject} today"
            body = {"conversation_id": f"c-{subject}", "role": "customer", "text": text, "occurred_at": at(days_ago)}
            assert http("POST", f"{api}/v1/subjects/{subject}/interactions", key=key, json_body=body).status == 201
    hold = {"reason": "claim 12", "categories": ["interactions"]}
    assert http("PUT", f"{api}/v1/subjects/ret-held/legal-hold", key=key, json_body=hold).status in (200, 201)
    assert http("PUT", f"{api}/v1/subjects/ret-objector/objections/analytics", key=key).status in (200, 201)

    # `make invoke` with the schedule's own sample: the fan-out; the stack's poller runs the chunks
    assert make_invoke(stack, "RetentionFunction", "events/RetentionRun.json")["runs_started"] >= 1
    guard = time.monotonic() + RUN_GUARD_S
    while not (runs := http("GET", f"{api}/v1/retention/runs", key=key).body["items"]) or runs[0]["status"] != (
        "completed"
    ):
        if time.monotonic() > guard:
            pytest.fail(f"no completed run after {RUN_GUARD_S} s:\n{stack.log()[-3000:]}")
        time.sleep(0.2)
    assert runs[0]["removed"] == {"interactions": 6} and runs[0]["kept_by_hold"] == {"interactions": 2}

    for subject in ("ret-a", "ret-b", "ret-objector"):
        assert texts(stack, key, subject) == [f"{subject} today"]
    assert texts(stack, key, "ret-held") == sorted(
        ["ret-held today", expired_text("ret-held", 0), expired_text("ret-held", 1)]
    )
    expired = [expired_text(s, n) for s in ("ret-a", "ret-b", "ret-objector") for n in (0, 1)]
    assert (
        residue(SubjectValues(subject_id="none-such", texts=expired), endpoint_url=stack.state["aws_endpoint_url"])
        == []
    )

    # analytics of yesterday: three subjects, not the objector
    make_invoke(stack, "AnalyticsFunction", "events/AnalyticsRun.json")
    day = at(1)[:10]
    (aggregate,) = http("GET", f"{api}/v1/analytics/daily?from={day}&to={day}", key=key).body["items"]
    assert aggregate["subjects"] == 3 and aggregate["interactions"] == 3, aggregate
