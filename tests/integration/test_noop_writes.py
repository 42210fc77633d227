"""A write that changes nothing (a PUT or PATCH of a subject or of the settings with the values stored) writes
nothing: it answers 200 with the stored representation and ETag, makes no AWS write call, and leaves another
writer's If-Match valid; a stale If-Match is still 412."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.helpers import aws_calls, call, new_tenant

ADA = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550100"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
WRITES = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "PutObject",
    "DeleteObject",
    "SendMessage",
    "PutEvents",
}


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant()[0]


@pytest.fixture
def aws_writes(aws: Any) -> Iterator[Counter[str]]:
    """The AWS calls made while the test runs; writes() names the writes among them."""
    with aws_calls() as seen:
        yield seen


def writes(seen: Counter[str]) -> list[str]:
    return sorted(name for name in seen if name in WRITES)


def subject_now(tenant: str) -> tuple[dict[str, Any], str]:
    r = call("GET", "/v1/subjects/u-1", tenant=tenant)
    assert r.status == 200, r.body
    return r.body, r.headers["etag"]


def settings_now(tenant: str) -> tuple[dict[str, Any], str]:
    r = call("GET", "/v1/settings", tenant=tenant)
    assert r.status == 200, r.body
    return r.body, r.headers["etag"]


SUBJECT_NOOPS = [
    ("PUT", "", ADA, {}),
    ("PATCH", "", {"name": ADA["name"]}, MERGE_PATCH),
    ("PATCH", "", {}, MERGE_PATCH),
]


def test_the_counter_sees_the_writes_of_a_write_that_changes_something(tenant: str, aws_writes: Counter[str]) -> None:
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=ADA).status == 201
    aws_writes.clear()
    r = call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada King"}, headers=MERGE_PATCH)
    assert r.status == 200, r.body
    assert writes(aws_writes) != []  # so the empty lists below are no blind spot


@pytest.mark.parametrize(("method", "suffix", "body", "headers"), SUBJECT_NOOPS)
def test_a_subject_write_that_changes_nothing_keeps_the_etag_and_writes_nothing(
    tenant: str, aws_writes: Counter[str], method: str, suffix: str, body: Any, headers: dict[str, str]
) -> None:
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=ADA).status == 201
    before, etag = subject_now(tenant)
    aws_writes.clear()
    r = call(method, f"/v1/subjects/u-1{suffix}", tenant=tenant, body=body, headers={**headers, "If-Match": etag})
    assert r.status == 200, r.body
    assert writes(aws_writes) == []
    assert (r.body, r.headers["etag"]) == (before, etag)
    assert subject_now(tenant) == (before, etag)


@pytest.mark.parametrize(("method", "suffix", "body", "headers"), SUBJECT_NOOPS)
def test_a_subject_noop_leaves_another_writers_if_match_valid(
    tenant: str, method: str, suffix: str, body: Any, headers: dict[str, str]
) -> None:
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=ADA).status == 201
    _, etag = subject_now(tenant)  # both writers read this version
    noop = call(method, f"/v1/subjects/u-1{suffix}", tenant=tenant, body=body, headers=headers)
    assert noop.status == 200 and noop.headers["etag"] == etag, noop.body
    other = call(
        "PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada King"}, headers={**MERGE_PATCH, "If-Match": etag}
    )
    assert other.status == 200, other.body
    assert other.headers["etag"] != etag and other.body["name"] == "Ada King"


@pytest.mark.parametrize(("method", "suffix", "body", "headers"), SUBJECT_NOOPS)
def test_a_subject_noop_with_a_stale_if_match_is_still_412(
    tenant: str, method: str, suffix: str, body: Any, headers: dict[str, str]
) -> None:
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada"}).status == 201
    _, stale = subject_now(tenant)
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=ADA).status == 200  # a real change
    r = call(method, f"/v1/subjects/u-1{suffix}", tenant=tenant, body=body, headers={**headers, "If-Match": stale})
    assert r.status == 412, r.body


def test_a_real_subject_change_still_moves_the_etag(tenant: str) -> None:
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=ADA).status == 201
    _, etag = subject_now(tenant)
    r = call("PUT", "/v1/subjects/u-1", tenant=tenant, body={**ADA, "name": "Ada King"}, headers={"If-Match": etag})
    assert r.status == 200 and r.headers["etag"] != etag, r.body


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_settings_write_that_changes_nothing_keeps_the_etag_and_writes_nothing(
    tenant: str, aws_writes: Counter[str], method: str
) -> None:
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"deadline_days": 20}).status == 200
    before, etag = settings_now(tenant)
    body = before if method == "PUT" else {"deadline_days": 20}
    for headers in ({}, {"If-Match": etag}):
        aws_writes.clear()
        r = call(method, "/v1/settings", tenant=tenant, body=body, headers=headers)
        assert r.status == 200, r.body
        assert writes(aws_writes) == []
        assert (r.body, r.headers["etag"]) == (before, etag)
    assert settings_now(tenant) == (before, etag)


def test_two_settings_writers_a_noop_does_not_make_the_other_412(tenant: str) -> None:
    before, etag = settings_now(tenant)
    assert call("PUT", "/v1/settings", tenant=tenant, body=before, headers={"If-Match": etag}).status == 200
    other = call("PATCH", "/v1/settings", tenant=tenant, body={"deadline_days": 11}, headers={"If-Match": etag})
    assert other.status == 200 and other.headers["etag"] != etag, other.body
    stale = call("PUT", "/v1/settings", tenant=tenant, body=other.body, headers={"If-Match": etag})
    assert stale.status == 412, stale.body  # a no-op with a stale If-Match
