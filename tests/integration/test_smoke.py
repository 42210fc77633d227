from __future__ import annotations

from typing import Any

from tests.integration.helpers import call


def test_put_then_get_subject(aws: Any) -> None:
    from chatsphere.handlers.wiring import ports
    from chatsphere.logic.tenants import create_tenant

    tenant, _ = create_tenant(ports().tenants, ports().kms, "Acme")
    r = call("PUT", "/v1/subjects/u-1", tenant=tenant.tenant_id, body={"name": "Ada", "email": "Ada@Example.com"})
    assert r.status == 201, r.body
    r = call("GET", "/v1/subjects/u-1", tenant=tenant.tenant_id)
    assert r.status == 200 and r.body["email"] == "Ada@example.com"
    r = call(
        "POST",
        "/v1/subjects/u-1/interactions",
        tenant=tenant.tenant_id,
        body={"conversation_id": "c1", "role": "customer", "text": "x" * 40000},
    )
    assert r.status == 201, r.body
    r = call("GET", "/v1/subjects/u-1/interactions", tenant=tenant.tenant_id)
    assert r.status == 200 and r.body["items"][0]["text"] == "x" * 40000, r.body
    r = call("POST", "/v1/subject-lookups", tenant=tenant.tenant_id, body={"email": "ada@EXAMPLE.com"})
    assert r.body == {"subject_ids": ["u-1"]}, r.body
