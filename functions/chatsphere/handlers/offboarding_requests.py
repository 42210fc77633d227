"""A tenant's offboarding (RightsFunction; the job runs in DeletionFunction, logic/offboarding.py): request it,
read its manifest, confirm the delete phase."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import (
    CURSOR_EXAMPLE,
    CURSOR_RULES,
    accepted,
    accepted_response,
    body_response,
    problem_responses,
    tenant_id,
    to_json,
)
from chatsphere.handlers.requests import RequestId
from chatsphere.models.common import utc_now
from chatsphere.models.offboarding import ManifestView, OffboardingIn
from chatsphere.models.requests import RequestRecord
from chatsphere.observability import metrics

router = Router()  # type: ignore[no-untyped-call]


@router.post(
    "/v1/offboarding",
    operation_id="requestOffboarding",
    tags=["Offboarding"],
    summary="Offboard the tenant: return all its data (phase 1), then, once confirmed, delete every copy (phase 2)",
    description="202 with a new record of type offboarding; 200 with the tenant's offboarding if it has one open "
    "or finished (asking twice returns it). The record stands awaiting_confirmation once every subject's package and "
    "the manifest are written; nothing is deleted before POST /v1/offboarding/{request_id}/confirmation.",
    status_code=202,
    responses={
        **accepted_response("Accepted; poll the record", RequestRecord),
        **body_response(200, "The tenant's offboarding, already requested", RequestRecord),
        **problem_responses(413, 415, 422),
    },
)
def request_offboarding(body: OffboardingIn) -> Response[Any]:
    from chatsphere.logic import offboarding

    record, new = offboarding.request_offboarding(wiring().offboarding, tenant_id(router), body, utc_now())
    if not new:
        return Response(status_code=200, content_type="application/json", body=to_json(record))
    metrics.add_metric(name="OffboardingsRequested", unit="Count", value=1)
    return accepted(router, record)


@router.get(
    "/v1/offboarding/<request_id>/manifest",
    operation_id="getOffboardingManifest",
    tags=["Offboarding"],
    description="The manifest of an offboarding's return: its SHA-256 and a page of the packages, each with a fresh "
    "download link and its counts.",
    summary="The offboarding's manifest: its SHA-256, and a page of the packages, each with a fresh download link",
    responses={**body_response(200, "A page of the manifest", ManifestView), **problem_responses(404, 409, 422)},
)
def get_manifest(
    request_id: RequestId,
    limit: Annotated[int, Query(ge=1, le=1000, examples=[100])] = 100,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=1024, description=CURSOR_RULES, examples=[CURSOR_EXAMPLE])
    ] = None,
) -> ManifestView:
    from chatsphere.logic import offboarding

    return offboarding.manifest(wiring().offboarding, tenant_id(router), request_id, utc_now(), limit, cursor)


@router.post(
    "/v1/offboarding/<request_id>/confirmation",
    operation_id="confirmOffboarding",
    tags=["Offboarding"],
    summary="Confirm the delete phase of an offboarding whose data is returned (awaiting_confirmation)",
    description="202: every subject is erased through the deletion path, then the returned packages and everything "
    "else the tenant holds; the tenant's keys stop working when it completes. Confirming again returns the record "
    "(200); before the data is returned, 409.",
    status_code=202,
    responses={
        **accepted_response("Accepted; poll the record", RequestRecord),
        **body_response(200, "Already confirmed", RequestRecord),
        **problem_responses(404, 409, 422),
    },
)
def confirm_offboarding(request_id: RequestId) -> Response[Any]:
    from chatsphere.logic import offboarding

    record, started = offboarding.confirm_offboarding(wiring().offboarding, tenant_id(router), request_id, utc_now())
    if not started:
        return Response(status_code=200, content_type="application/json", body=to_json(record))
    return accepted(router, record)
