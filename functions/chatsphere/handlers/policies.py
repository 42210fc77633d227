"""A tenant's privacy policy versions: publish, list (RightsFunction)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import body_response, problem_responses, tenant_id, to_json
from chatsphere.logic import policies
from chatsphere.models.common import utc_now
from chatsphere.models.policies import Policy, PolicyIn, PolicyList

router = Router()  # type: ignore[no-untyped-call]


@router.post(
    "/v1/policies",
    operation_id="publishPolicy",
    tags=["Policies"],
    description="Publishes a new privacy policy version for the tenant; subjects' consents refer to it.",
    summary="Publish a privacy policy version (announced as PolicyVersionPublished)",
    status_code=201,
    responses={
        **body_response(200, "Already published with this content", Policy),
        **body_response(201, "Published", Policy),
        **problem_responses(409, 413, 415, 422),
    },
)
def publish_policy(body: PolicyIn) -> Response[Any]:
    policy, created = policies.publish_policy(wiring().policies, tenant_id(router), body, utc_now())
    return Response(status_code=201 if created else 200, content_type="application/json", body=to_json(policy))


@router.get(
    "/v1/policies",
    operation_id="listPolicies",
    tags=["Policies"],
    description="Every policy version the tenant published, oldest first.",
    summary="List the tenant's policy versions, oldest first",
    responses={**body_response(200, "The versions", PolicyList), **problem_responses()},
)
def list_policies() -> PolicyList:
    return policies.list_policies(wiring().policies, tenant_id(router))
