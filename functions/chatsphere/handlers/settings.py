"""A tenant's settings: read, replace, merge-patch (RightsFunction)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import (
    MERGE_PATCH_JSON,
    IfMatchHeader,
    merged_body,
    problem_responses,
    tenant_id,
    versioned_response,
    with_etag,
)
from chatsphere.logic import settings
from chatsphere.logic.preconditions import parse_if_match
from chatsphere.models.common import utc_now
from chatsphere.models.settings import SettingsPatch, TenantSettings

router = Router()  # type: ignore[no-untyped-call]


@router.get(
    "/v1/settings",
    operation_id="getSettings",
    tags=["Settings"],
    description="The tenant's settings document, with its version as ETag.",
    summary="Read the tenant's settings",
    responses={**versioned_response(200, "The settings", TenantSettings), **problem_responses()},
)
def get_settings() -> Response[Any]:
    return with_etag(*settings.read_settings(wiring().settings, tenant_id(router)))


@router.put(
    "/v1/settings",
    operation_id="putSettings",
    tags=["Settings"],
    description="Replaces the whole settings document. Send If-Match with the ETag you read to guard against a "
    "concurrent writer.",
    summary="Replace the tenant's settings (the whole document GET returns; PATCH changes some of it)",
    responses={
        **versioned_response(200, "The settings", TenantSettings),
        **problem_responses(412, 413, 415, 422),
    },
)
def put_settings(body: TenantSettings, if_match: IfMatchHeader = None) -> Response[Any]:
    stored, version = settings.replace_settings(
        wiring().settings, tenant_id(router), body, utc_now(), if_match=parse_if_match(if_match)
    )
    return with_etag(stored, version)


@router.patch(
    "/v1/settings",
    operation_id="patchSettings",
    tags=["Settings"],
    description="Changes some settings with a JSON merge patch (RFC 7396); fields left out keep their values.",
    summary="Change some of the tenant's settings: a JSON merge patch (RFC 7396); the rest, processors included, stay",
    responses={
        **versioned_response(200, "The settings", TenantSettings),
        **problem_responses(412, 413, 415, 422),
    },
)
def patch_settings(
    body: Annotated[SettingsPatch, Body(media_type=MERGE_PATCH_JSON)], if_match: IfMatchHeader = None
) -> Response[Any]:
    with merged_body():
        stored, version = settings.patch_settings(
            wiring().settings,
            tenant_id(router),
            body.model_dump(exclude_unset=True),
            utc_now(),
            if_match=parse_if_match(if_match),
        )
    return with_etag(stored, version)
