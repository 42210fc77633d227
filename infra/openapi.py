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
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

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
            )
        )
        paths.update(spec.get("paths", {}))
        components["schemas"].update(spec.get("components", {}).get("schemas", {}))
        components["securitySchemes"] = spec["components"]["securitySchemes"]
        base = spec
    _merge_patch_bodies(paths)
    base["paths"] = dict(sorted(paths.items()))
    base["components"] = components
    declared = {(r.method.lower(), r.path) for r in template.routes()}
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    if declared != documented:
        raise SystemExit(f"template.yaml and the code disagree on routes: {sorted(declared ^ documented)}")
    return base


MERGE_PATCH = "application/merge-patch+json"


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
