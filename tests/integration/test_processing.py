"""The record of processing (GET /v1/records-of-processing) against moto, through the gateway and RightsFunction:
it follows the settings (a processor or a retention period that changes changes it, nothing else does), its counts
are the stores' own, and its CSV and HTML forms are what their media types say."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.integration.helpers import call, new_tenant
from tests.page_check import assert_self_contained

PAYCO = {"name": "PayCo", "purpose": "Payments", "data_categories": ["identity"], "country": "IE"}
DRAFTS = {"name": "DraftAI", "purpose": "Reply drafts", "data_categories": ["interactions"], "country": "US"}
CONTROLLER = {"name": "Acme Shop Ltd", "contact": "privacy@acme.example", "dpo_contact": "dpo@acme.example"}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


def record(tenant: str, query: str = "") -> dict[str, Any]:
    reply = call("GET", "/v1/records-of-processing", tenant=tenant, query=query)
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    body: dict[str, Any] = reply.body
    return body


def without_time(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("generated_at", "settings_version")}


def test_the_record_changes_when_a_processor_or_a_retention_period_changes_and_only_then(tenant: str) -> None:
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"processors": [PAYCO]}).status == 200
    before = record(tenant)
    assert without_time(record(tenant)) == without_time(before)  # the same settings, the same record
    assert [p["name"] for p in before["recipients"]] == ["PayCo"] and before["transfers"] == before["flags"] == []

    # a processor outside the EEA, without a safeguard
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"processors": [PAYCO, DRAFTS]}).status == 200
    after = record(tenant)
    assert after["settings_version"] == before["settings_version"] + 1
    assert [p["name"] for p in after["recipients"]] == ["PayCo", "DraftAI"]
    assert after["transfers"] == [{"processor": "DraftAI", "country": "US", "safeguard": None}]
    assert [(f["kind"], f["subject"]) for f in after["flags"]] == [("transfer_without_safeguard", "DraftAI")]
    analytics = next(a for a in after["activities"] if a["purpose"] == "analytics")
    assert analytics["recipients"] == ["DraftAI"] and analytics["transfers"] == ["DraftAI (US): no safeguard stated"]
    changed = {k for k in without_time(after) if after[k] != before[k]}
    assert changed == {"recipients", "transfers", "flags", "activities"}

    # a retention period
    patch = {"retention": {"interactions": {"days": 90, "action": "anonymize"}}}
    assert call("PATCH", "/v1/settings", tenant=tenant, body=patch).status == 200
    shorter = record(tenant)
    assert shorter["retention"]["interactions"] == {
        "days": 90,
        "action": "anonymised into daily counts",
        "text": "90 days after they occurred, then anonymised into daily counts",
    }
    assert {k for k in without_time(shorter) if shorter[k] != after[k]} == {"retention", "activities"}
    inquiries = next(a for a in shorter["activities"] if a["purpose"] == "inquiries")
    assert "interactions: 90 days after they occurred, then anonymised into daily counts" in inquiries["retention"]


def test_the_controller_and_the_legal_bases_come_from_the_settings(tenant: str) -> None:
    assert record(tenant)["controller"] is None and record(tenant)["controller_name"] == "Acme"
    body = {"controller": CONTROLLER, "purposes": {"improvement": "consent"}}
    assert call("PATCH", "/v1/settings", tenant=tenant, body=body).status == 200
    got = record(tenant)
    assert got["controller"] == CONTROLLER and got["controller_name"] == "Acme Shop Ltd"
    bases = {a["purpose"]: a["legal_basis"] for a in got["activities"]}
    assert bases == {
        "inquiries": "contract",
        "improvement": "consent",
        "personalization": "consent",
        "analytics": "legitimate_interest",
        "legal_obligation": "legal_obligation",
    }


def test_the_counts_are_the_tenants_own(tenant: str) -> None:
    other = new_tenant("Other")[0]
    for subject_id in ("u-1", "u-2", "u-3"):
        assert call("PUT", f"/v1/subjects/{subject_id}", tenant=tenant, body={"name": "Ada"}).status == 201
    assert call("PUT", "/v1/subjects/u-1", tenant=other, body={"name": "Bo"}).status == 201
    for text in ("hi", "again"):
        message = {"conversation_id": "c1", "role": "customer", "text": text}
        assert call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=message).status == 201
    back_dated = {"conversation_id": "c1", "role": "customer", "text": "old", "occurred_at": "2020-01-01T00:00:00Z"}
    assert call("POST", "/v1/subjects/u-2/interactions", tenant=tenant, body=back_dated).status == 201
    assert call("POST", "/v1/subjects/u-3/exports", tenant=tenant, body={"format": "json"}).status == 202
    assert record(tenant)["counts"] == {"subjects": 3, "open_requests": 1, "interactions_last_7_days": 2}
    assert record(other)["counts"] == {"subjects": 1, "open_requests": 0, "interactions_last_7_days": 0}


def test_csv_is_one_row_per_purpose_in_the_cnil_column_order(tenant: str) -> None:
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"processors": [PAYCO, DRAFTS]}).status == 200
    reply = call("GET", "/v1/records-of-processing", tenant=tenant, query="format=csv")
    assert reply.status == 200 and reply.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(reply.text, newline="")))
    assert rows[0][:3] == ["purpose", "legal_basis", "categories_of_subjects"]
    assert rows[0][5:] == ["transfers_outside_eea_and_safeguards", "retention", "security_measures"]
    assert len(rows) == 6 and rows[4][0].startswith("analytics:") and rows[4][4] == "DraftAI"


def test_html_is_self_contained_and_escapes_a_hostile_tenant_text(tenant: str) -> None:
    hostile = {**CONTROLLER, "name": "<script>alert(1)</script>"}
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"controller": hostile}).status == 200
    reply = call("GET", "/v1/records-of-processing", tenant=tenant, query="format=html")
    assert reply.status == 200 and reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["content-security-policy"].startswith("default-src 'none'; style-src 'unsafe-inline'")
    assert "<script>" not in reply.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in reply.text
    assert_self_contained(reply.text)


@pytest.mark.parametrize("query", ["format=pdf", "format=", "format=JSON"])
def test_an_unknown_format_is_a_422_problem(tenant: str, query: str) -> None:
    reply = call("GET", "/v1/records-of-processing", tenant=tenant, query=query)
    assert reply.status == 422 and reply.headers["content-type"] == "application/problem+json"
    assert reply.body["type"].endswith("/validation")


def test_the_settings_ledger_entry_names_the_new_fields_and_holds_no_controller_text(tenant: str) -> None:
    from chatsphere.bootstrap import wiring

    body = {"controller": CONTROLLER, "purposes": {"analytics": "consent"}}
    assert call("PATCH", "/v1/settings", tenant=tenant, body=body).status == 200
    entries = [e for e in wiring().adapters.outbox.pending(tenant, 100) if e.type == "settings.changed"]
    assert [sorted(e.data["fields"]) for e in entries] == [["controller", "purposes"]]
    written = repr([e.model_dump() for e in entries])
    assert all(value not in written for value in CONTROLLER.values())
