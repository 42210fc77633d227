"""The request metrics against moto: records of every type and status, made through the API and the jobs, and the
report's counts, kept in the records' own transactions, equal a hand count of the records themselves."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from tests.integration.helpers import call, new_tenant
from tests.integration.queues import drain

PERSON = {"name": "Mira Metric", "email": "mira.metric@example.org"}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


def records(tenant: str) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        page = call(
            "GET", "/v1/requests", tenant=tenant, query=f"limit=100{f'&cursor={cursor}' if cursor else ''}"
        ).body
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def hand_count(tenant: str, today: str) -> dict[str, dict[str, Any]]:
    counted: dict[str, dict[str, Any]] = {}
    days: dict[str, list[float]] = {}
    for r in records(tenant):
        c = counted.setdefault(r["type"], Counter())
        c["received"] += 1
        if r["status"] in ("received", "in_progress"):
            c["open"] += 1
            c["past_due"] += int(r["due_at"][:10] < today)
        else:
            c[r["status"]] += 1
            took = datetime.fromisoformat(r["completed_at"]) - datetime.fromisoformat(r["received_at"])
            days.setdefault(r["type"], []).append(took.total_seconds() / 86400)
    for kind, lengths in days.items():
        counted[kind]["mean"] = round(sum(lengths) / len(lengths), 2)
    return counted


def test_the_report_equals_a_hand_count_of_records_of_every_type_and_status(aws: Any, tenant: str) -> None:
    for subject in ("m-1", "m-2", "m-3"):
        assert call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body=PERSON).status == 201
    assert call("PATCH", "/v1/subjects/m-1", tenant=tenant, body={"name": "Mira M."}).status == 200  # correction
    assert call("PUT", "/v1/subjects/m-1/objections/analytics", tenant=tenant).status in (200, 201)  # objection
    assert call("POST", "/v1/subjects/m-1/deactivation", tenant=tenant).status in (200, 201)  # deactivation
    assert call("DELETE", "/v1/subjects/m-1/deactivation", tenant=tenant).status in (200, 201)
    hold = {"reason": "Case 3", "categories": ["interactions"]}
    assert call("PUT", "/v1/subjects/m-2/legal-hold", tenant=tenant, body=hold).status in (200, 201)
    assert call("DELETE", "/v1/subjects/m-2/legal-hold", tenant=tenant).status in (200, 201)
    assert call("POST", "/v1/subjects/m-1/exports", tenant=tenant, body={}).status == 202
    drain(aws, "ExportQueue")  # completed
    settings = call("GET", "/v1/settings", tenant=tenant).body
    settings["portability_destinations"] = ["s3://chatsphere-portability-missing/in"]
    assert call("PUT", "/v1/settings", tenant=tenant, body=settings).status == 200
    body = {"deliver_to": "s3://chatsphere-portability-missing/in"}
    assert call("POST", "/v1/subjects/m-1/exports", tenant=tenant, body=body).status == 202
    drain(aws, "ExportQueue")  # failed: the destination does not exist
    open_export = call("POST", "/v1/subjects/m-3/exports", tenant=tenant, body={}).body["request_id"]
    extended = call("POST", f"/v1/requests/{open_export}/extension", tenant=tenant, body={"days": 10, "reason": "x"})
    assert extended.status == 200  # open, its due date moved
    assert call("POST", "/v1/subjects/m-2/exports", tenant=tenant, body={}).status == 202  # rejected by the erasure
    assert call("DELETE", "/v1/subjects/m-2", tenant=tenant).status == 202
    drain(aws, "DeletionQueue")  # completed, and m-2's open export rejected
    today = datetime.now().astimezone().date().isoformat()
    r = call("GET", "/v1/reports/requests", tenant=tenant)
    assert r.status == 200, r.body
    by_type = {t["type"]: t for t in r.body["types"]}
    expected = hand_count(tenant, today)
    assert set(expected) >= {"correction", "objection", "deactivation", "legal_hold", "export", "deletion"}
    statuses = ("completed", "completed_with_exceptions", "rejected", "failed")
    for kind, counted in expected.items():
        got = by_type[kind]
        assert got["received"] == counted["received"], kind
        assert {s: got[s] for s in statuses} == {s: counted[s] for s in statuses}, kind
        assert (got["open"], got["past_due"]) == (counted["open"], counted["past_due"]), kind
        if "mean" in counted:
            assert got["mean_days_to_close"] == pytest.approx(counted["mean"], abs=0.01), kind
    export = by_type["export"]
    assert (export["completed"], export["failed"], export["rejected"], export["open"]) == (1, 1, 1, 1)
    assert call("GET", "/v1/reports/requests", tenant=tenant, query="from=2026-05-02&to=2026-05-01").status == 422
