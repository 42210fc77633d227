"""infra/openapi.json: generated from the handlers' resolvers, committed, and checked for drift.

python -m infra.openapi write    regenerate
python -m infra.openapi check    fail if the committed document differs from the code"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from infra import template

OUT = Path(__file__).resolve().parent / "openapi.json"


def _resolvers() -> list[Any]:
    """The resolver of every function that serves API routes, in template order."""
    seen: dict[str, Any] = {}
    for route in template.routes():
        fn = template.functions()[route.function]
        if fn.module not in seen:
            seen[fn.module] = importlib.import_module(fn.module).app
    return list(seen.values())


def document() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import Contact, HTTPBearer, License

    from chatsphere.handlers.http import problem_responses

    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"schemas": {}}
    for app in _resolvers():
        spec: dict[str, Any] = json.loads(
            app.get_openapi_json_schema(
                title="ChatSphere privacy-data API",
                version="1.0.0",
                summary="Intake, subject rights and retention for ChatSphere tenants",
                security_schemes={"bearerAuth": HTTPBearer(description="Tenant API key: Authorization: Bearer cs_...")},
                security=[{"bearerAuth": []}],
                description=DESCRIPTION,
                contact=Contact(name="ChatSphere privacy engineering", email="privacy-eng@chatsphere.example"),
                license_info=License(name="Proprietary", url="https://chatsphere.example/legal/api-terms"),
            )
        )
        paths.update(spec.get("paths", {}))
        components["schemas"].update(spec.get("components", {}).get("schemas", {}))
        components["securitySchemes"] = spec["components"]["securitySchemes"]
        base = spec
    _merge_patch_bodies(paths)
    _problem_only_422(paths, problem_responses(422)[422], components["schemas"])
    _optional_headers(paths)
    _optional_bodies(paths)
    base["tags"] = [{"name": name, "description": text} for name, text in TAGS.items()]
    used = {tag for ops in paths.values() for op in ops.values() for tag in op.get("tags", [])}
    if used != set(TAGS):
        raise SystemExit(f"operation tags and infra/openapi.TAGS disagree: {sorted(used ^ set(TAGS))}")
    base["paths"] = dict(sorted(paths.items()))
    base["components"] = components
    declared = {(r.method.lower(), r.path) for r in template.routes()}
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    if declared != documented:
        raise SystemExit(f"template.yaml and the code disagree on routes: {sorted(declared ^ documented)}")
    return base


MERGE_PATCH = "application/merge-patch+json"

DESCRIPTION = (
    "Stores a tenant's chat subjects and their interactions, each subject encrypted under its own key, and answers "
    "the subjects' rights (access, portability, rectification, erasure, objection) with records a client polls. "
    "Every error is an RFC 9457 problem (application/problem+json)."
)

# One tag per capability; every operation carries exactly one of them.
TAGS = {
    "Subjects": "A subject's profile and its lifecycle: create, read, correct, erase, object, deactivate, look up",
    "Interactions": "The inquiries, responses and messages stored for a subject",
    "Rights requests": "Exports and the request records every asynchronous right leaves: poll, list, extend",
    "Legal holds": "Holds that keep a subject's data through any deletion until lifted",
    "Settings": "The tenant's settings and the record of processing built from them",
    "Policies": "The tenant's privacy policy versions",
    "Analytics": "Anonymous daily aggregates",
    "Reports": "How the tenant answered rights requests",
    "Retention": "The retention runs and what each removed",
    "Ledger": "The signed, append-only ledger: entries, receipts and proofs",
    "Offboarding": "Returning all of a tenant's data, then deleting every copy",
}


def _problem_only_422(paths: dict[str, Any], problem: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Powertools declares its own 422 (HTTPValidationError, application/json) on every operation that has none;
    the service answers a validation failure with a problem (handlers/http.py), so that shape is the one declared."""
    for operations in paths.values():
        for operation in operations.values():
            content = operation.get("responses", {}).get("422", {}).get("content", {})
            if "application/json" in content:
                schema = {"$ref": "#/components/schemas/Problem"}
                operation["responses"]["422"] = {
                    "description": problem["description"],
                    "content": {"application/problem+json": {"schema": schema}},
                }
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    text = json.dumps([paths, schemas])
    if "ValidationError" in text:
        raise SystemExit("a Powertools validation error schema is still referenced")


def _optional_headers(paths: dict[str, Any]) -> None:
    """An optional header is declared as its string type alone, with no default: a generated client then leaves it
    out when unset (an `anyOf [string, null]` lets it send None, a default makes it send the value unasked)."""
    for operations in paths.values():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param.get("in") != "header":
                    continue
                schema = param["schema"]
                variants = [v for v in schema.pop("anyOf", []) if v.get("type") != "null"]
                if len(variants) == 1:
                    schema.update(variants[0])
                schema.pop("default", None)


def _optional_bodies(paths: dict[str, Any]) -> None:
    """An optional body (every field has a default) is declared as its model alone, not required: a generated client
    then leaves it out when unset (an `anyOf [model, null]` lets it send `null`)."""
    for operations in paths.values():
        for operation in operations.values():
            body = operation.get("requestBody")
            if body is None or body.get("required"):
                continue
            for content in body["content"].values():
                variants = [v for v in content["schema"].get("anyOf", []) if v.get("type") != "null"]
                if len(variants) == 1:
                    content["schema"] = variants[0]


def _merge_patch_bodies(paths: dict[str, Any]) -> None:
    """A PATCH body is a JSON merge patch (RFC 7396), taken as application/merge-patch+json or application/json
    (handlers/http.precheck); Powertools declares one media type per body, so the other is added here."""
    for operations in paths.values():
        content = operations.get("patch", {}).get("requestBody", {}).get("content")
        if content:
            schema = next(iter(content.values()))
            operations["patch"]["requestBody"]["content"] = {MERGE_PATCH: schema, "application/json": schema}


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["write"]:
        OUT.write_text(text)
        return 0
    if argv[1:] == ["check"]:
        if not OUT.exists() or OUT.read_text() != text:
            print("infra/openapi.json is out of date: run `make openapi` and commit it", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
