"""numeric_subject_ids: a tenant whose user ids are numbers may use digit-only subject ids, which otherwise look like
phone numbers (422, saying the setting exists); a leading +, separators and email-like ids stay refused. Only a
digit-only id reads the settings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.helpers import aws_calls, call, new_tenant, snapshot

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
REFUSED_ALWAYS = ("+1234567", "123-4567", "123 4567", "123.4567", "(123)4567", "a@example.com", "1234567@example.com")


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant()[0]


@pytest.fixture
def counted(aws: Any) -> Iterator[Counter[str]]:
    with aws_calls() as seen:
        yield seen


def allow_numeric(tenant: str, on: bool = True) -> None:
    r = call("PATCH", "/v1/settings", tenant=tenant, body={"numeric_subject_ids": on}, headers=MERGE_PATCH)
    assert r.status == 200 and r.body["numeric_subject_ids"] is on, r.body


def test_the_setting_is_off_by_default(tenant: str) -> None:
    assert call("GET", "/v1/settings", tenant=tenant).body["numeric_subject_ids"] is False


def test_a_digit_only_id_without_the_setting_is_422_naming_the_setting_and_writes_nothing(tenant: str) -> None:
    before = snapshot()
    r = call("PUT", "/v1/subjects/1234567", tenant=tenant, body={"name": "Ada"})
    assert r.status == 422, r.body
    (error,) = r.body["errors"]
    assert error["loc"] == ["path", "subject_id"] and error["type"] == "numeric_subject_id"
    assert "numeric_subject_ids: true" in error["msg"]
    assert "1234567" not in r.text
    assert snapshot() == before


def test_with_the_setting_a_digit_only_id_is_a_subject_on_every_route(tenant: str) -> None:
    allow_numeric(tenant)
    put = call("PUT", "/v1/subjects/1234567", tenant=tenant, body={"name": "Ada"})
    assert put.status == 201, put.body
    assert put.body["subject_id"] == "1234567"
    assert call("GET", "/v1/subjects/1234567", tenant=tenant).body["name"] == "Ada"
    said = {"conversation_id": "c-1", "role": "customer", "text": "hi"}
    assert call("POST", "/v1/subjects/1234567/interactions", tenant=tenant, body=said).status == 201
    assert call("GET", "/v1/subjects/1234567/interactions", tenant=tenant).status == 200
    patched = call("PATCH", "/v1/subjects/1234567", tenant=tenant, body={"name": "Ada King"}, headers=MERGE_PATCH)
    assert patched.status == 200, patched.body
    allow_numeric(tenant, on=False)  # turned off: the id is refused again, the subject is kept
    assert call("GET", "/v1/subjects/1234567", tenant=tenant).status == 422


@pytest.mark.parametrize("subject_id", REFUSED_ALWAYS)
def test_with_the_setting_a_plus_separators_or_an_email_stay_refused(tenant: str, subject_id: str) -> None:
    allow_numeric(tenant)
    r = call("PUT", f"/v1/subjects/{subject_id}", tenant=tenant, body={"name": "Ada"})
    assert r.status == 422, r.body
    assert r.body["errors"][0]["type"] == "personal_identifier", r.body


def test_other_tenants_keep_refusing_digit_only_ids(tenant: str) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant

    allow_numeric(tenant)
    other = create_tenant(wiring().tenants, "Other")[0].tenant_id
    assert call("PUT", "/v1/subjects/1234567", tenant=other, body={"name": "Ada"}).status == 422


def test_only_a_digit_only_id_reads_the_settings(tenant: str, counted: Counter[str]) -> None:
    allow_numeric(tenant)
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada"}).status == 201
    assert call("PUT", "/v1/subjects/1234567", tenant=tenant, body={"name": "Ada"}).status == 201
    counted.clear()
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Bea"}).status == 200
    named = dict(counted)
    counted.clear()
    assert call("PUT", "/v1/subjects/1234567", tenant=tenant, body={"name": "Bea"}).status == 200
    numeric = dict(counted)
    # the same calls, and one settings GetItem more
    assert numeric == {**named, "GetItem": named["GetItem"] + 1}, (named, numeric)
