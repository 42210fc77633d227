"""AuthorizerFunction: the API's TOKEN authorizer. Allow carries the tenant in the context; anything else is Deny.

API Gateway answers 401 itself when the header is missing or malformed, and 403 on Deny."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerTokenEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatsphere.bootstrap import tenant_store
from chatsphere.dal.tenants import DynamoTenantStore
from chatsphere.errors import Unauthorized
from chatsphere.logic.tenants import authorize
from chatsphere.observability import logger, metrics


@cache
def _store() -> DynamoTenantStore:
    return tenant_store(os.environ["TENANTS_TABLE"])


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
@event_source(data_class=APIGatewayAuthorizerTokenEvent)
def lambda_handler(event: APIGatewayAuthorizerTokenEvent, context: LambdaContext) -> dict[str, Any]:
    try:
        tenant = authorize(_store(), event.authorization_token or "")
    except Unauthorized:
        metrics.add_metric(name="AuthorizationDenied", unit="Count", value=1)
        logger.info("denied")
        return _policy("Deny", event.method_arn, None)
    logger.append_keys(tenant_id=tenant)
    logger.info("allowed")
    return _policy("Allow", event.method_arn, tenant)
