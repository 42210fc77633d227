"""Calls handlers the way API Gateway would: a REST proxy event per route declared in template.yaml."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

from infra import template
from infra.events import rest_event


class FakeContext:
    function_name = "IntakeFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IntakeFunction"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    method: str,
    path: str,
    *,
    tenant: str | None,
    body: Any = None,
    raw_body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Reply:
    """Route by template.yaml, build the event, run the declared handler. `tenant` is the authorizer's answer."""
    for route in template.routes():
        match = route.pattern.match(path)
        if route.method == method and match:
            break
    else:
        raise AssertionError(f"no route in template.yaml for {method} {path}")
    fn = template.functions()[route.function]
    handler = getattr(importlib.import_module(fn.module), fn.attribute)
    sent_headers = {"Content-Type": "application/json", **(headers or {})}
    payload = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    event = rest_event(
        method,
        route.path,
        path,
        path_parameters=match.groupdict(),
        query=query,
        headers=sent_headers,
        body=payload,
        authorizer={"tenant_id": tenant, "principalId": tenant} if tenant else None,
    )
    out = handler(event, FakeContext())
    text = out.get("body") or ""
    parsed = json.loads(text) if text else None
    return Reply(out["statusCode"], {k.lower(): v for k, v in (out.get("headers") or {}).items()}, parsed)
