"""Calls handlers the way API Gateway would: a REST proxy event per route declared in template.yaml.

Also the few views of the backing store that the integration tests assert on: every DynamoDB item and
every S3 object version, read with boto3 exactly as they are stored."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3

from infra import template
from infra.events import rest_event, token_event


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
    text: str = ""  # the body exactly as sent, for "nothing is echoed" checks
    request_id: str = ""  # API Gateway's request id: the correlation id of the call's log lines


def _headers(out: dict[str, Any]) -> dict[str, str]:
    """REST proxy responses may carry headers or multiValueHeaders (Powertools uses the latter)."""
    merged = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
    for name, values in (out.get("multiValueHeaders") or {}).items():
        merged.setdefault(name.lower(), ", ".join(values))
    return merged


def call(
    method: str,
    path: str,
    *,
    tenant: str | None,
    body: Any = None,
    raw_body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    authorizer: dict[str, Any] | None = None,
    mutate: Callable[[dict[str, Any]], None] | None = None,
) -> Reply:
    """Route by template.yaml, build the event, run the declared handler. `tenant` is the authorizer's answer.

    `authorizer` replaces the authorizer context outright; `mutate` edits the finished event (odd encodings)."""
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
    context = (
        authorizer if authorizer is not None else ({"tenant_id": tenant, "principalId": tenant} if tenant else None)
    )
    event = rest_event(
        method,
        route.path,
        path,
        path_parameters=match.groupdict(),
        query=query,
        headers=sent_headers,
        body=payload,
        authorizer=context,
    )
    if mutate is not None:
        mutate(event)
    out = handler(event, FakeContext())
    text = out.get("body") or ""
    parsed = json.loads(text) if text else None
    return Reply(out["statusCode"], _headers(out), parsed, text, event["requestContext"]["requestId"])


# ------------------------------------------------------------------ tenants and the authorizer
def new_tenant(name: str = "Acme") -> tuple[str, str]:
    """A tenant made the way the operator CLI makes one: (tenant_id, api_key)."""
    from chatsphere.bootstrap import adapters
    from chatsphere.logic.tenants import create_tenant

    tenant, api_key = create_tenant(adapters().tenants, adapters().kms, name)
    return tenant.tenant_id, api_key


def authorize(token: str, method: str = "GET", path: str = "/v1/subjects/u-1", stage: str = "dev") -> dict[str, Any]:
    """Run the API's TOKEN authorizer, as template.yaml declares it, on one Authorization header value."""
    logical_id, _ = template.authorizer()
    fn = template.functions()[logical_id]
    handler = getattr(importlib.import_module(fn.module), fn.attribute)
    result: dict[str, Any] = handler(token_event(token, stage, method, path), FakeContext())
    return result


def call_with_key(api_key: str, method: str, path: str, **kwargs: Any) -> Reply:
    """What a client sees: the authorizer first (403 on Deny, as API Gateway answers), then the route."""
    answer = authorize(f"Bearer {api_key}", method, path)
    effect = answer["policyDocument"]["Statement"][0]["Effect"]
    if effect != "Allow":
        return Reply(403, {"content-type": "application/problem+json"}, {"status": 403}, "")
    return call(
        method, path, tenant=None, authorizer={**answer["context"], "principalId": answer["principalId"]}, **kwargs
    )


# ------------------------------------------------------------------ the backing store, as stored
def table_names() -> list[str]:
    return sorted(boto3.client("dynamodb").list_tables()["TableNames"])


def scan(table: str) -> list[dict[str, Any]]:
    """Every item of a table in DynamoDB's wire form ({"S": ...}, {"B": bytes}, ...)."""
    ddb = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def object_versions(bucket: str) -> Iterator[tuple[str, str, bytes]]:
    """(key, version id, body) of every version of every object in a bucket."""
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            yield version["Key"], version["VersionId"], body


def bucket_names() -> list[str]:
    return sorted(b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"])


def render(value: Any) -> bytes:
    """A stored value flattened to bytes (strings as UTF-8, binaries as they are), for substring search."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict):
        return b"\x00".join(render(k) + b"\x00" + render(v) for k, v in sorted(value.items()))
    if isinstance(value, list | tuple | set):
        return b"\x00".join(render(v) for v in value)
    return str(value).encode()


def snapshot() -> dict[str, Any]:
    """Everything stored: each table's items and each bucket's object versions, comparable with ==."""
    state: dict[str, Any] = {}
    for name in table_names():
        state[f"table:{name}"] = sorted(render(item) for item in scan(name))
    for bucket in bucket_names():
        state[f"bucket:{bucket}"] = sorted(object_versions(bucket))
    return state


def stored_bytes() -> list[tuple[str, bytes]]:
    """(where, bytes) for every item of every table and every version of every object, keys and metadata included."""
    out: list[tuple[str, bytes]] = []
    for name in table_names():
        for item in scan(name):
            where = f"{name} " + "/".join(str(v.get("S", "?")) for k, v in item.items() if k in ("pk", "sk", "id"))
            out.append((where, render(item)))
    s3 = boto3.client("s3")
    for bucket in bucket_names():
        for key, version, body in object_versions(bucket):
            head = s3.head_object(Bucket=bucket, Key=key, VersionId=version)
            out.append((f"s3://{bucket}/{key}?versionId={version}", render([key, head.get("Metadata", {})]) + body))
    return out


def interaction_items(table: str = "SubjectsTable") -> list[dict[str, Any]]:
    return [i for i in scan(table) if i["sk"]["S"].startswith("I#")]
