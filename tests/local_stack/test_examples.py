"""Every example of infra/openapi.json, sent to `make run`'s stack as Swagger's "Try it out" or a generated client
would send it: none gets a 422, so an integrator's first try is never refused for its shape.

Each operation is sent twice: with what it requires (path parameters, required query parameters, the body), then
with every optional parameter too. The operations run in ORDER, on a tenant of their own, so that the example
subject exists before anything is done to it and is erased only near the end. Where state forbids an example's
request (the example request id names no request; If-Match names a version already replaced; the subject is
erased), 404, 409, 410 or 412 is the answer, never 422. A cursor is valid only if the API issued it: the example
shows the shape, and gets the documented 400."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from infra import openapi
from tests.local_stack.conftest import Answer, RunningStack, http
from tests.local_stack.test_ledger_flow import new_tenant

pytestmark = pytest.mark.local_stack

# Settings and a policy first, then the subject's life: created, read, corrected, talked to, looked up, objecting,
# deactivated and back, exported, held, erased; the tenant's reads; the offboarding last (its confirmation names the
# example request id, which no request has: the tenant is never ended here).
ORDER = [
    "putSettings",
    "patchSettings",
    "getSettings",
    "publishPolicy",
    "listPolicies",
    "putSubject",
    "getSubject",
    "correctSubject",
    "createInteraction",
    "listInteractions",
    "lookupSubjects",
    "objectToPurpose",
    "withdrawObjection",
    "deactivateSubject",
    "reactivateSubject",
    "requestExport",
    "listRequests",
    "getRequest",
    "extendRequest",
    "placeLegalHold",
    "liftLegalHold",
    "deleteSubject",
    "getReceipt",
    "listAudit",
    "getLedgerConsistency",
    "getLedgerPublicKey",
    "getDailyAnalytics",
    "getRequestReport",
    "getRecordOfProcessing",
    "listRetentionRuns",
    "requestOffboarding",
    "getOffboardingManifest",
    "confirmOffboarding",
]
# The examples' subject exists from putSubject on: these must then succeed, or the run proved little.
MUST_SUCCEED = {"putSubject": 201, "createInteraction": 201, "lookupSubjects": 200, "requestExport": 202}
STATE_ANSWERS = {404, 409, 410, 412}


def _example(where: dict[str, Any], doc: dict[str, Any]) -> Any:
    schema = where["schema"]
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "example" in where:
        return where["example"]
    examples = schema.get("examples") or [e["value"] for e in where.get("examples", {}).values()]
    assert examples, f"no example for {where.get('name', 'the body')}"
    return examples[0]


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _request(
    doc: dict[str, Any], path: str, op: dict[str, Any], *, optional: bool, media: str
) -> tuple[str, dict[str, str], Any]:
    """The URL (path and query), headers and body of the operation, all from its examples."""
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    for param in op.get("parameters", []):
        if not (param.get("required") or optional):
            continue
        value = _text(_example(param, doc))
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", urllib.parse.quote(value, safe=""))
        elif param["in"] == "query":
            query[param["name"]] = value
        elif param["in"] == "header":
            headers[param["name"]] = value
    body = None
    if "requestBody" in op:
        body = _example(op["requestBody"]["content"][media], doc)
        headers["Content-Type"] = media
    return path + ("?" + urllib.parse.urlencode(query) if query else ""), headers, body


def _cursor_refused(answer: Answer, url: str) -> bool:
    """The documented answer to a cursor the API did not issue."""
    detail = answer.body.get("detail", "") if isinstance(answer.body, dict) else ""
    return answer.status == 400 and "cursor=" in url and "cursor" in str(detail)


def test_every_example_is_accepted_by_the_stack(stack: RunningStack) -> None:
    doc = json.loads(openapi.OUT.read_text())
    operations = {
        op["operationId"]: (method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()
    }
    assert set(ORDER) == set(operations), f"place each operation in ORDER: {sorted(set(ORDER) ^ set(operations))}"
    _, key = new_tenant(stack)
    answers: dict[tuple[str, bool], int] = {}
    for operation_id in ORDER:
        method, path, op = operations[operation_id]
        media_types = list(op.get("requestBody", {}).get("content", {})) or ["application/json"]
        # The required part with the first media type, then everything with the last one (both, if a PATCH has two).
        for optional, media in ((False, media_types[0]), (True, media_types[-1])):
            url, headers, body = _request(doc, path, op, optional=optional, media=media)
            data = None if body is None else json.dumps(body).encode()
            answer = http(method.upper(), stack.api_url + url, key=key, data=data, headers=headers)
            where = (operation_id, "with every optional parameter" if optional else "as required", url)
            assert answer.status != 422, (*where, answer.body)
            assert answer.status < 300 or answer.status in STATE_ANSWERS or _cursor_refused(answer, url), (
                *where,
                answer.status,
                answer.body,
            )
            answers[(operation_id, optional)] = answer.status
    for operation_id, status in MUST_SUCCEED.items():
        assert answers[(operation_id, False)] == status, (operation_id, answers[(operation_id, False)])
