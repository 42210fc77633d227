"""The TOKEN authorizer template.yaml declares, and the handlers' trust in its context alone."""

from __future__ import annotations

import re
import secrets
from fnmatch import fnmatchcase
from typing import Any, TypedDict

import boto3
import pytest

from infra import template
from infra.events import method_arn
from tests.integration.helpers import authorize, call, call_with_key, new_tenant, render, scan, snapshot, table_names


@pytest.fixture
def acme(aws: Any) -> tuple[str, str]:
    return new_tenant("Acme")


@pytest.fixture
def globex(aws: Any) -> tuple[str, str]:
    return new_tenant("Globex")


def effect(answer: dict[str, Any]) -> str:
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    return str(statement["Effect"])


def concrete(path: str) -> str:
    """A route's path with each {parameter} filled in."""
    return re.sub(r"\{[^}]+\}", "x-1", path)


# ------------------------------------------------------------------ Allow
def test_a_valid_key_is_allowed_with_its_tenant_in_the_context(acme: tuple[str, str]) -> None:
    tenant, api_key = acme
    answer = authorize(f"Bearer {api_key}")
    assert effect(answer) == "Allow"
    assert answer["context"] == {"tenant_id": tenant}
    assert answer["principalId"] == tenant


def test_an_allow_covers_every_route_of_the_stage_and_nothing_else(acme: tuple[str, str]) -> None:
    # API Gateway caches the answer per token (ReauthorizeEvery); a policy for one route would deny the next.
    _, api_key = acme
    answer = authorize(f"Bearer {api_key}", "GET", "/v1/subjects/u-1", stage="dev")
    resources = [s["Resource"] for s in answer["policyDocument"]["Statement"]]

    def allowed(arn: str) -> bool:
        # IAM resource wildcards: * matches any run of characters, "/" included
        return any(fnmatchcase(arn, r) for r in resources)

    routes = template.routes()
    assert routes
    for route in routes:
        assert allowed(method_arn("dev", route.method, concrete(route.path))), route
    assert not allowed(method_arn("prod", "GET", "/v1/subjects/u-1"))
    assert not allowed(method_arn("dev", "GET", "/v1/subjects/u-1").replace(":local/", ":otherapi/"))
    assert not allowed(method_arn("dev", "GET", "/v1/subjects/u-1", region="eu-west-1"))


def test_each_tenants_key_names_its_own_tenant(acme: tuple[str, str], globex: tuple[str, str]) -> None:
    assert authorize(f"Bearer {acme[1]}")["context"]["tenant_id"] == acme[0]
    assert authorize(f"Bearer {globex[1]}")["context"]["tenant_id"] == globex[0]


# ------------------------------------------------------------------ Deny
def denied_tokens(tenant: str, api_key: str, other: str) -> dict[str, str]:
    secret = api_key.split(".", 1)[1]
    return {
        "unknown-key": f"Bearer cs_{tenant}.{secrets.token_urlsafe(32)}",
        "secret-under-another-tenant": f"Bearer cs_{other}.{secret}",
        "secret-under-unknown-tenant": f"Bearer cs_t{'0' * 16}.{secret}",
        "truncated": f"Bearer {api_key[:-1]}",
        "extended": f"Bearer {api_key}A",
        "secret-alone": f"Bearer {secret}",
        "tenant-alone": f"Bearer {tenant}",
        "lower-case-scheme": f"bearer {api_key}",
        "basic-scheme": f"Basic {api_key}",
        "no-scheme": api_key,
        "two-spaces": f"Bearer  {api_key}",
        "empty": "",
    }


def test_anything_but_an_issued_key_is_denied_without_a_tenant(
    acme: tuple[str, str], globex: tuple[str, str], subtests: pytest.Subtests
) -> None:
    for case, token in denied_tokens(acme[0], acme[1], globex[0]).items():
        with subtests.test(case):
            answer = authorize(token)
            assert effect(answer) == "Deny"
            assert not (answer.get("context") or {}).get("tenant_id")
            assert answer["principalId"] not in (acme[0], globex[0])


def test_a_revoked_key_is_denied(acme: tuple[str, str], aws: Any) -> None:
    _tenant, api_key = acme
    table = aws.refs["TenantsTable"]
    (key_item,) = [i for i in scan(table) if i["sk"]["S"].startswith("APIKEY#")]
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key={"pk": key_item["pk"], "sk": key_item["sk"]},
        UpdateExpression="SET #s = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": {"S": "revoked"}},
    )
    assert effect(authorize(f"Bearer {api_key}")) == "Deny"


def test_api_keys_are_stored_only_as_hashes(acme: tuple[str, str], globex: tuple[str, str]) -> None:
    # Given two tenants, each shown its API key once
    # When we read every item of every table
    stored = b"\x00".join(render(item) for name in table_names() for item in scan(name))
    # Then no key, and no part of a key's secret, is stored anywhere
    for _, api_key in (acme, globex):
        secret = api_key.split(".", 1)[1]
        for fragment in (api_key, secret, secret[:12], secret[-12:]):
            assert fragment.encode() not in stored, fragment
    # while the tenant's key is still recognised
    assert effect(authorize(f"Bearer {acme[1]}")) == "Allow"


# ------------------------------------------------------------------ handlers trust the context only
ROUTES_WITHOUT_TENANT = [
    ("GET", "/v1/subjects/u-1", None),
    ("PUT", "/v1/subjects/u-1", {"name": "Ada"}),
    ("GET", "/v1/subjects/u-1/interactions", None),
    ("POST", "/v1/subjects/u-1/interactions", {"conversation_id": "c", "role": "bot", "text": "hi"}),
    ("POST", "/v1/subject-lookups", {"email": "ada@example.org"}),
]
CONTEXTS_WITHOUT_TENANT = {"no-authorizer": None, "no-tenant": {"principalId": "x"}, "empty-tenant": {"tenant_id": ""}}


def test_a_request_without_a_tenant_from_the_authorizer_is_401_and_writes_nothing(
    acme: tuple[str, str], subtests: pytest.Subtests
) -> None:
    # Given a request that names the tenant everywhere except in the authorizer's context
    tenant = acme[0]
    call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada"})
    headers = {"X-Tenant-Id": tenant, "Authorization": f"Bearer {acme[1]}"}
    before = snapshot()
    for method, path, body in ROUTES_WITHOUT_TENANT:
        for name, context in CONTEXTS_WITHOUT_TENANT.items():
            with subtests.test(f"{method} {path} {name}"):
                r = call(
                    method,
                    path,
                    tenant=None,
                    body=body,
                    headers=headers,
                    authorizer=context,
                    query=f"tenant_id={tenant}",
                )
                # Then it is a 401 problem, and nothing is written
                assert r.status == 401, r.body
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.body["status"] == 401
                assert snapshot() == before


class Claims(TypedDict):
    """What a request names besides its API key: `call`'s headers (no route takes a tenant in its query: 400)."""

    headers: dict[str, str]


def test_a_header_query_or_body_naming_another_tenant_changes_nothing(
    acme: tuple[str, str], globex: tuple[str, str]
) -> None:
    # Given Acme's subject u-1
    acme_id, globex_id = acme[0], globex[0]
    assert call("PUT", "/v1/subjects/u-1", tenant=acme_id, body={"email": "ada@example.org"}).status == 201
    claims: Claims = {"headers": {"X-Tenant-Id": acme_id, "X-Amzn-Tenant": acme_id}}
    # When Globex names Acme in the query, it is refused (no route takes a tenant parameter), and nothing is written
    before = snapshot()
    for method, path in (("GET", "/v1/subjects/u-1"), ("PUT", "/v1/subjects/u-1")):
        r = call(method, path, tenant=globex_id, body={"name": "Mallory"}, query=f"tenant_id={acme_id}")
        assert r.status == 400 and r.body["type"].endswith("/unknown-query-parameter"), r.body
    assert snapshot() == before
    # When Globex names Acme in headers
    # Then Globex still sees only its own (empty) data
    assert call("GET", "/v1/subjects/u-1", tenant=globex_id, **claims).status == 404
    assert call("GET", "/v1/subjects/u-1/interactions", tenant=globex_id, **claims).status == 404
    found = call("POST", "/v1/subject-lookups", tenant=globex_id, body={"email": "ada@example.org"}, **claims)
    assert found.body == {"subject_ids": []}
    # and a body naming Acme is refused, not obeyed
    before = snapshot()
    r = call("PUT", "/v1/subjects/u-1", tenant=globex_id, body={"name": "Mallory", "tenant_id": acme_id}, **claims)
    assert r.status == 422
    assert snapshot() == before
    # and what Globex writes lands with Globex: Acme's subject is untouched
    assert call("PUT", "/v1/subjects/u-1", tenant=globex_id, body={"name": "Mallory"}, **claims).status == 201
    assert call("GET", "/v1/subjects/u-1", tenant=acme_id).body["name"] is None
    assert call("GET", "/v1/subjects/u-1", tenant=globex_id).body["name"] == "Mallory"


def test_the_tenant_comes_from_the_authorizer_not_from_the_principal(
    acme: tuple[str, str], globex: tuple[str, str]
) -> None:
    call("PUT", "/v1/subjects/u-1", tenant=acme[0], body={"name": "Ada"})
    r = call("GET", "/v1/subjects/u-1", tenant=None, authorizer={"tenant_id": globex[0], "principalId": acme[0]})
    assert r.status == 404


def test_end_to_end_a_key_reaches_its_own_tenants_data_only(acme: tuple[str, str], globex: tuple[str, str]) -> None:
    assert call_with_key(acme[1], "PUT", "/v1/subjects/u-1", body={"name": "Ada"}).status == 201
    assert call_with_key(acme[1], "GET", "/v1/subjects/u-1").body["name"] == "Ada"
    assert call_with_key(globex[1], "GET", "/v1/subjects/u-1").status == 404
    forged = f"cs_{acme[0]}.{globex[1].split('.', 1)[1]}"
    assert call_with_key(forged, "GET", "/v1/subjects/u-1").status == 403
