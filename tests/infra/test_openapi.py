"""infra/openapi.json is generated from the code, and names every route template.yaml declares."""

from __future__ import annotations

import json
import re
from typing import Any

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


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_every_operation_reads_as_a_contract_a_client_is_generated_from() -> None:
    doc = json.loads(openapi.OUT.read_text())
    assert doc["info"]["contact"]["email"] and doc["info"]["license"]["name"]
    declared = {tag["name"] for tag in doc["tags"]}
    assert all(tag.get("description") for tag in doc["tags"])
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids))
    for method, path, op in _operations(doc):
        assert re.fullmatch(r"[a-z][A-Za-z]+", op["operationId"]), (method, path, op["operationId"])
        assert len(op["tags"]) == 1 and op["tags"][0] in declared, (method, path)
        assert op.get("summary") and op.get("description"), (method, path)
    assert {"putSubject", "requestExport", "deleteSubject", "getRequest"} <= set(ids)


def test_only_problem_shapes_and_no_header_a_client_would_send_unasked() -> None:
    doc = json.loads(openapi.OUT.read_text())
    assert "ValidationError" not in json.dumps(doc)
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert set(response["content"]) == {"application/problem+json"}, (method, path, status)
        for param in op.get("parameters", []):
            if param["in"] == "header":
                assert "anyOf" not in param["schema"] and "default" not in param["schema"], (method, path, param)
                assert param["schema"]["type"] == "string", (method, path, param["name"])
