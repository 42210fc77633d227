"""Trend analytics (the Analytics function and GET /v1/analytics/daily) against moto: objectors and erased subjects
left out, small cells folded into an unnamed `other`, a day computed once, and no identifier in any aggregate."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.helpers import call, functions, new_tenant
from tests.integration.queues import drain
from tests.integration.test_retention import NOW, at, interaction, subject
from tests.unit.test_analytics_logic import disclosures, entry, truth_of


@pytest.fixture
def tenant(aws: Any) -> str:
    tenant = new_tenant("Acme")[0]
    body = call("GET", "/v1/settings", tenant=tenant).body
    body["analytics_min_count"] = 3
    assert call("PUT", "/v1/settings", tenant=tenant, body=body).status == 200
    return tenant


def compute(as_of: Any = None) -> dict[str, Any]:
    event = {"as_of": as_of.strftime("%Y-%m-%dT%H:%M:%S.%fZ")} if as_of else {}
    result: dict[str, Any] = functions().invoke("AnalyticsFunction", event)
    return result


def day_of(tenant: str, day: str) -> dict[str, Any] | None:
    r = call("GET", "/v1/analytics/daily", tenant=tenant, query=f"from={day}&to={day}")
    assert r.status == 200, r.body
    items = r.body["items"]
    return items[0] if items else None


def test_a_day_counts_everyone_but_objectors_and_erased_subjects_and_names_nobody(aws: Any, tenant: str) -> None:
    day = at(1)[:10]
    for n in range(5):
        subject(tenant, f"u-{n}", email=f"person{n}@example.com")
        interaction(tenant, f"u-{n}", f"my order {n} is late", 1, channel="web")
        interaction(tenant, f"u-{n}", "thanks", 1, channel="web", role="agent")
    interaction(tenant, "u-0", "one more by sms", 1, channel="sms")
    # u-3 objects to analytics (after the interactions: they are left out too); u-4 is erased
    assert call("PUT", "/v1/subjects/u-3/objections/analytics", tenant=tenant).status in (200, 201)
    assert call("DELETE", "/v1/subjects/u-4", tenant=tenant).status == 202
    drain(aws, "DeletionQueue")
    compute()
    got = day_of(tenant, day)
    assert got is not None and got["suppressed"] is False
    assert got["subjects"] == 3 and got["interactions"] == 7 and got["conversations"] == 1
    assert got["by_role"] == {"agent": 3, "customer": 4}
    # sms is one subject (fewer than 3): folded into other, unnamed, and web with it (other alone would be sms)
    assert got["by_channel"] == {"other": 7}
    # every interaction used conversation c-1: one conversation of 7 turns, among 3 subjects (published)
    assert got["conversation_turns"] == {"6-10": 1}
    text = json.dumps(got)
    for n in range(5):
        assert f"u-{n}" not in text and f"person{n}" not in text and "order" not in text


def test_the_probes_day_names_no_small_channel_and_its_numbers_pin_no_conversation(aws: Any, tenant: str) -> None:
    """Issue 14's probe: six subjects with one web interaction each, one alone on helpline-vip with 3 turns, k = 5."""
    body = call("GET", "/v1/settings", tenant=tenant).body
    body["analytics_min_count"] = 5
    assert call("PUT", "/v1/settings", tenant=tenant, body=body).status == 200
    entries = []
    for n in range(6):
        subject(tenant, f"u-{n}")
        interaction(tenant, f"u-{n}", "hello", 1, channel="web", conversation_id=f"c-{n}")
        entries.append(entry(f"u-{n}", conversation=f"c-{n}"))
    subject(tenant, "vip")
    for _ in range(3):
        interaction(tenant, "vip", "a word", 1, channel="helpline-vip", conversation_id="c-vip")
        entries.append(entry("vip", channel="helpline-vip", conversation="c-vip"))
    compute()
    got = day_of(tenant, at(1)[:10])
    assert got is not None and (got["subjects"], got["interactions"], got["conversations"]) == (7, 9, 7)
    assert got["by_channel"] == {"other": 9} and got["conversation_turns"] == {"other": 7}
    assert "helpline" not in json.dumps(got)
    assert disclosures(got, truth_of(entries), 5) == []


def test_a_day_of_too_few_subjects_is_suppressed_whole(aws: Any, tenant: str) -> None:
    subject(tenant, "solo")
    interaction(tenant, "solo", "hello", 1)
    compute()
    got = day_of(tenant, at(1)[:10])
    assert got is not None and got["suppressed"] is True and got["interactions"] is None and got["by_channel"] == {}


def test_a_day_is_computed_once_and_kept_after_its_interactions_go(aws: Any, tenant: str) -> None:
    for n in range(3):
        subject(tenant, f"u-{n}")
        interaction(tenant, f"u-{n}", "hi", 1)
    compute()
    first = day_of(tenant, at(1)[:10])
    subject(tenant, "late")
    interaction(tenant, "late", "imported afterwards", 1)
    compute()  # the watermark has passed the day: it is not recomputed
    compute(NOW - timedelta(days=0))  # nor by a back-fill of that day
    assert day_of(tenant, at(1)[:10]) == first
    for n in range(3):
        assert call("DELETE", f"/v1/subjects/u-{n}", tenant=tenant).status == 202
    drain(aws, "DeletionQueue")
    assert day_of(tenant, at(1)[:10]) == first


def test_without_a_range_the_last_30_days_are_listed_and_a_suppressed_day_says_why(aws: Any, tenant: str) -> None:
    # Given one subject who talked yesterday, 29 days ago and 31 days ago (days of too few subjects to publish)
    subject(tenant, "u-1", email="one@example.com")
    for days_ago in (1, 29, 31):
        interaction(tenant, "u-1", "hello", days_ago, channel="web")
    for days_ago in (1, 29, 31):
        compute(NOW - timedelta(days=days_ago - 1))
    # When the daily aggregates are read with no range at all
    r = call("GET", "/v1/analytics/daily", tenant=tenant)
    # Then they are the last 30 days (UTC), today included: 31 days ago is not among them
    assert r.status == 200, r.body
    days = [item["day"] for item in r.body["items"]]
    assert days == [at(29)[:10], at(1)[:10]], days
    # and each day says why it shows no counts: suppressed, below its threshold
    for item in r.body["items"]:
        assert item["suppressed"] is True and item["min_count"] == 3, item
        assert item["subjects"] is None and item["interactions"] is None and item["by_channel"] == {}


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-01-02&to=2026-01-01",
        "from=2024-01-01&to=2025-01-02",
        "from=2026-13-01&to=2026-12-01",
        "from=2020-01-01",
    ],
)
def test_a_bad_range_is_a_problem_and_reads_nothing(aws: Any, tenant: str, query: str) -> None:
    r = call("GET", "/v1/analytics/daily", tenant=tenant, query=query)
    assert r.status == 422 and r.headers["content-type"].startswith("application/problem+json"), r.body
