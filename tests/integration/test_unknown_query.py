"""A query parameter a route does not declare is a 400 problem (unknown-query-parameter) on every route of the
template, before anything is read or written: a misspelt filter must not be answered as if it were absent."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chatsphere.handlers.http import REQUEST_ID_EXAMPLE
from infra import openapi, template
from tests.integration.helpers import aws_calls, call, new_tenant

# Path parameters of the template's routes, each a valid value (a request id of the issued shape that names none).
PATH_VALUES = {"subject_id": "u-1", "request_id": REQUEST_ID_EXAMPLE, "purpose": "analytics"}
ROUTES = [(r.method, r.path) for r in template.routes()]


def documented_example(method: str, route: str) -> tuple[Any, str]:
    """The documented example of the route's body (None if it takes none) and its required query parameters: the
    request is otherwise valid, so that only the unknown parameter is at fault (with a fault of its own as well, a
    request may get that fault's 422 instead: Powertools validates before the route's middlewares run)."""
    doc = openapi.document()
    operation = doc["paths"][route][method.lower()]
    required = [p for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")]
    query = "".join(f"{p['name']}={p['schema']['examples'][0]}&" for p in required)
    body = operation.get("requestBody")
    if body is None:
        return None, query
    ref = body["content"]["application/json"]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["examples"][0], query


@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant()[0]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_an_unknown_query_parameter_is_400_on_every_route(tenant: str, method: str, route: str) -> None:
    path = re.sub(r"\{([a-z_]+)\}", lambda m: PATH_VALUES[m.group(1)], route)
    # When a tenant sends a parameter the route does not take (a misspelt filter, here with a personal value)
    body, query = documented_example(method, route)
    with aws_calls() as calls:
        r = call(method, path, tenant=tenant, body=body, query=query + "subjectid=ada%40example.com")
    # Then it is told so, without an echo of what it sent, and nothing was read or written
    assert r.status == 400, (route, r.body)
    assert r.headers["content-type"] == "application/problem+json"
    assert r.body["type"].endswith("/unknown-query-parameter")
    assert "subjectid" not in r.text and "example" not in r.text
    assert not calls, calls


def test_a_declared_parameter_is_still_taken(tenant: str) -> None:
    assert call("GET", "/v1/requests", tenant=tenant, query="limit=5").status == 200
