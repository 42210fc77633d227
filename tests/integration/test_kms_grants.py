"""The direct KMS grants of template.yaml are exactly the direct KMS calls each function makes.

moto does not enforce IAM, so this records every call the code makes to KMS itself (not through DynamoDB, S3 or
SQS), per function, through one pass over every function of the template, and compares them with what each
function's role allows by the template's own conditions (tests/infra/test_template.py direct_kms_grants): a
call the template does not allow would fail deployed; a grant no call uses is one more key than the role needs."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from chatsphere import bootstrap
from chatsphere.dal.kms import KmsKeyWrapper
from chatsphere.logic.crypto import PURPOSE
from infra import template
from tests.infra.test_template import direct_kms_grants
from tests.integration.helpers import authorize, call, functions, new_tenant
from tests.integration.queues import drain, fire
from tests.integration.test_retention import age_profile, age_tenant, settings, subject

Calls = dict[str, set[tuple[str, str]]]


@pytest.fixture
def kms_calls(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Calls:
    """(action, purpose) of every direct KMS call, by the function that made it. Each invocation gets fresh
    adapters, as a function's own container would: a tenant secret one function unwrapped is not another's."""
    calls: Calls = defaultdict(set)
    running: list[str] = []
    runtime = functions()
    invoke, generate, unwrap = runtime.invoke, KmsKeyWrapper.generate, KmsKeyWrapper.unwrap

    def invoking(logical_id: str, event: dict[str, Any]) -> Any:
        bootstrap.wiring.cache_clear()
        running.append(logical_id)
        try:
            return invoke(logical_id, event)
        finally:
            running.pop()
            bootstrap.wiring.cache_clear()

    def record(action: str, context: dict[str, str]) -> None:
        if running:  # outside a function: the operator's console command (tenant creation), not a role
            calls[running[-1]].add((action, context.get(PURPOSE, "")))

    def generating(self: KmsKeyWrapper, context: dict[str, str]) -> tuple[bytes, bytes]:
        record("kms:GenerateDataKey", context)
        return generate(self, context)

    def unwrapping(self: KmsKeyWrapper, wrapped: bytes, context: dict[str, str]) -> bytes:
        record("kms:Decrypt", context)
        return unwrap(self, wrapped, context)

    monkeypatch.setattr(runtime, "invoke", invoking)
    monkeypatch.setattr(KmsKeyWrapper, "generate", generating)
    monkeypatch.setattr(KmsKeyWrapper, "unwrap", unwrapping)
    return calls


def test_each_role_may_call_kms_directly_for_exactly_the_purposes_its_code_uses(aws: Any, kms_calls: Calls) -> None:
    tenant, api_key = new_tenant("Acme")
    assert authorize(f"Bearer {api_key}")["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    age_tenant(aws, tenant, 200)
    settings(tenant, inactive_profiles={"days": 60, "action": "delete"})
    subject(tenant, "idle")
    age_profile(aws, tenant, "idle", 100)  # retention erases it
    subject(tenant, "u-1", email="pat@example.com")
    text = {"conversation_id": "c-1", "role": "customer", "text": "x" * 40_000}  # over 32 KiB: an S3 object
    assert call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=text).status == 201
    assert call("GET", "/v1/subjects/u-1/interactions", tenant=tenant).status == 200
    found = call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": "pat@example.com"})
    assert found.status == 200, found.body
    export = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    assert export.status == 202, export.body
    assert drain(aws, "ExportQueue") == 1
    assert call("GET", f"/v1/requests/{export.body['request_id']}", tenant=tenant).body["status"] == "completed"
    assert call("DELETE", "/v1/subjects/u-1", tenant=tenant).status == 202
    assert drain(aws, "DeletionQueue") == 1
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).status == 410
    assert fire(aws, "RetentionFunction") == {"runs_started": 1}
    drain(aws, "RetentionQueue", max_batches=500)
    assert drain(aws, "DeletionQueue") == 1
    assert call("GET", "/v1/subjects/idle", tenant=tenant).status == 410
    assert call("GET", "/v1/retention/runs", tenant=tenant).status == 200
    fire(aws, "AnalyticsFunction")
    fire(aws, "MonitorFunction")
    leaving = new_tenant("Leaving")[0]  # an offboarding's return: DeletionFunction packages each subject's data
    subject(leaving, "u-2")
    assert call("POST", "/v1/offboarding", tenant=leaving, body={}).status == 202
    assert drain(aws, "DeletionQueue") == 1

    granted = {logical: grants for logical, grants in direct_kms_grants(template.load()).items() if grants}
    assert dict(kms_calls) == granted
