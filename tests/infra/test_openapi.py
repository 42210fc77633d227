"""infra/openapi.json is generated from the code, and names every route template.yaml declares."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

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


def _examples_and_schema(doc: dict[str, Any], where: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """A parameter's or a body's examples (OpenAPI's own or its schema's) and the schema they must meet, with the
    document's components beside it so that its $refs resolve."""
    schema = where["schema"]
    target = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
    examples = [*target.get("examples", []), *([where["example"]] if "example" in where else [])]
    examples += [e["value"] for e in where.get("examples", {}).values()]
    return examples, {**schema, "components": doc["components"]}


def test_every_parameter_and_body_has_an_example_its_schema_accepts() -> None:
    """Try it out and generated clients start from these; tests/local_stack/test_examples.py sends them all."""
    doc = json.loads(openapi.OUT.read_text())
    checked = 0
    for method, path, op in _operations(doc):
        places = [(f"{p['in']} {p['name']}", p) for p in op.get("parameters", [])]
        places += [(media, body) for media, body in op.get("requestBody", {}).get("content", {}).items()]
        for name, where in places:
            examples, schema = _examples_and_schema(doc, where)
            assert examples, (method, path, name)
            validator = Draft202012Validator(schema, format_checker=FormatChecker())
            for example in examples:
                errors = [e.message for e in validator.iter_errors(example)]
                assert not errors, (method, path, name, example, errors)
                checked += 1
    assert checked >= 60  # every operation's parameters and bodies: a filter that found none fails here
