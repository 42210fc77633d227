"""Calls the API through the local stack's own gateway (infra/local), in-process: routing by template.yaml,
the proxy event, the TOKEN authorizer and the reply are the ones `make run` serves.

Also the few views of the backing store that the integration tests assert on: every DynamoDB item and
every S3 object version, read with boto3 exactly as they are stored."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3

from infra.local import Functions, function_specs
from infra.local.gateway import Authorized, Gateway, Request

STAGE = "dev"


@cache
def functions() -> Functions:
    """The local stack's Lambda runtime, every function of template.yaml: one per test process, like `make run`."""
    return Functions(function_specs())


@cache
def gateway(stage: str = STAGE) -> Gateway:
    """The local stack's API Gateway, configured from template.yaml, over `functions()`."""
    return Gateway.from_template(functions(), stage)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any
    text: str = ""  # the body exactly as sent, for "nothing is echoed" checks
    request_id: str = ""  # API Gateway's request id: the correlation id of the call's log lines


def _binary(raw: bytes) -> Callable[[dict[str, Any]], None]:
    """The body base64-encoded in the event, as API Gateway sends a binary media type (the gateway itself only
    does so for bodies that are not UTF-8)."""

    def encode(event: dict[str, Any]) -> None:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True

    return encode


def _send(
    method: str,
    path: str,
    *,
    authorized: Authorized | None,
    body: Any = None,
    raw_body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    mutate: Callable[[dict[str, Any]], None] | None = None,
) -> Reply:
    sent = {"Content-Type": "application/json"}
    for name, value in (headers or {}).items():  # a caller's header replaces ours in any case, as a client's would
        sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
        sent[name] = value
    payload = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    hooks = [_binary(payload)] if isinstance(payload, bytes) else []
    hooks += [mutate] if mutate is not None else []

    def before_invoke(event: dict[str, Any]) -> None:
        for hook in hooks:
            hook(event)

    request = Request(
        method,
        f"{path}?{query}" if query else path,
        list(sent.items()),
        payload.encode() if isinstance(payload, str) else (payload or b""),
    )
    out = gateway().handle(request, authorized=authorized, before_invoke=before_invoke if hooks else None)
    text = out.body.decode()
    headers_out: dict[str, str] = {}
    for name, value in out.headers:
        key = name.lower()
        headers_out[key] = f"{headers_out[key]}, {value}" if key in headers_out else value
    parsed = json.loads(text) if text and "json" in (out.header("Content-Type") or "json") else None
    return Reply(out.status, headers_out, parsed, text, out.header("x-amzn-RequestId") or "")


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
    """A request through the local gateway, whose authorizer answered with `tenant` (its own authorizer not run).

    `authorizer` replaces the authorizer context outright (None with no tenant: no context at all); `mutate`
    edits the finished event just before the function gets it (odd encodings); bytes in `raw_body` reach the
    function base64-encoded."""
    context = (
        authorizer if authorizer is not None else ({"tenant_id": tenant, "principalId": tenant} if tenant else None)
    )
    return _send(
        method,
        path,
        authorized=Authorized(context),
        body=body,
        raw_body=raw_body,
        headers=headers,
        query=query,
        mutate=mutate,
    )


# ------------------------------------------------------------------ the AWS calls a request makes
SERVICES = ("dynamodb", "s3", "sqs", "events", "kms")


@contextmanager
def aws_calls() -> Iterator[Counter[str]]:
    """Counts, by operation name, the AWS calls the shared clients make inside the block (clear() it to start over)."""
    from chatsphere.dal.clients import client

    seen: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    for service in SERVICES:
        client(service).meta.events.register("before-call", record)
    try:
        yield seen
    finally:
        for service in SERVICES:
            client(service).meta.events.unregister("before-call", record)


# ------------------------------------------------------------------ tenants and the authorizer
def new_tenant(name: str = "Acme") -> tuple[str, str]:
    """A tenant made the way the operator CLI makes one: (tenant_id, api_key)."""
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant

    tenant, api_key = create_tenant(wiring().tenants, name)
    return tenant.tenant_id, api_key


def authorize(token: str, method: str = "GET", path: str = "/v1/subjects/u-1", stage: str = STAGE) -> dict[str, Any]:
    """The answer of the API's TOKEN authorizer, as the local gateway asks it, for one Authorization header value."""
    result: dict[str, Any] = gateway(stage).authorizer_answer(token, method, path)
    return result


def call_with_key(api_key: str, method: str, path: str, **kwargs: Any) -> Reply:
    """What a client sees: the gateway's TOKEN authorizer first (its 401 or 403 replies), then the route."""
    headers = {**(kwargs.pop("headers", None) or {}), "Authorization": f"Bearer {api_key}"}
    return _send(method, path, authorized=None, headers=headers, **kwargs)


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
