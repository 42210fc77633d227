"""infra/openapi.json is generated from the code, and names every route template.yaml declares."""

from __future__ import annotations

import json

from infra import openapi, template


def test_committed_document_matches_the_code() -> None:
    assert openapi.OUT.read_text() == openapi.render(), "run `make openapi` and commit infra/openapi.json"


def test_every_declared_route_is_documented_with_problem_bodies() -> None:
    doc = json.loads(openapi.OUT.read_text())
    for route in template.routes():
        operation = doc["paths"][route.path][route.method.lower()]
        for status in ("400", "401", "403", "500"):
            assert "application/problem+json" in operation["responses"][status]["content"], (route, status)
        assert any(code.startswith("2") for code in operation["responses"]), route
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]
