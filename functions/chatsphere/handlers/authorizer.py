"""AuthorizerFunction: the API's TOKEN authorizer. Allow carries the tenant in the context; anything else is Deny.

API Gateway answers 401 itself when the header is missing or malformed, and 403 on Deny.

It runs before every cold request, so it imports only what checking a key needs: no settings model, no
pydantic, no event-handler resolver, no Tracer (tests/unit/test_authorizer_imports.py keeps it so)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatsphere.bootstrap import api_key_reader
from chatsphere.errors import Unauthorized
from chatsphere.logic.api_keys import authorize
from chatsphere.telemetry import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _policy(effect: str, method_arn: str, tenant: str | None) -> dict[str, Any]:
    # arn:...:api-id/stage/METHOD/path -> the whole stage, so that a cached answer fits every route.
    arn, _, rest = method_arn.partition("/")
    stage = rest.split("/", 1)[0]
    response: dict[str, Any] = {
        "principalId": tenant or "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": f"{arn}/{stage}/*/*"}],
        },
    }
    if tenant:
        response["context"] = {"tenant_id": tenant}
    return response


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A TOKEN event: {"type": "TOKEN", "authorizationToken": ..., "methodArn": ...}
    try:
        tenant = authorize(api_key_reader(), event["authorizationToken"] or "")
    except Unauthorized:
        metrics.add_metric(name="AuthorizationDenied", unit="Count", value=1)
        logger.info("denied")
        return _policy("Deny", event["methodArn"], None)
    logger.append_keys(tenant_id=tenant)
    logger.info("allowed")
    return _policy("Allow", event["methodArn"], tenant)
