"""Rights request records: list, read, extend (RightsFunction)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import (
    CURSOR_EXAMPLE,
    CURSOR_RULES,
    REQUEST_ID_EXAMPLE,
    SubjectIdQuery,
    body_response,
    problem_responses,
    tenant_id,
)
from chatsphere.logic import requests
from chatsphere.models.common import utc_now
from chatsphere.models.requests import (
    AnyRecord,
    ExtensionIn,
    RequestPage,
    RequestRecord,
    RequestType,
    StatusFilter,
)

# No pattern to validate: an id that was never issued names no request, whatever its shape, so it is a 404 (and is
# refused before any read), never a 422 about a regular expression.
RequestId = Annotated[
    str,
    Path(
        description="As returned when the request was made (r and 28 lowercase hex digits); any other id names no"
        " request: 404",
        examples=[REQUEST_ID_EXAMPLE],
    ),
]

router = Router()  # type: ignore[no-untyped-call]


@router.get(
    "/v1/requests",
    operation_id="listRequests",
    tags=["Rights requests"],
    description="A page of the tenant's rights request records, newest first.",
    summary="List the tenant's rights requests, newest first (overdue=true: open past due, most overdue first)",
    responses={
        **body_response(200, "A page", RequestPage),
        **problem_responses(422),
    },
)
def list_requests(
    subject_id: SubjectIdQuery = None,
    status: Annotated[
        StatusFilter | None,
        Query(
            description="Only records in this status; `open` for any open one (received, in_progress,"
            " awaiting_confirmation)",
            examples=["open"],
        ),
    ] = None,
    type: Annotated[RequestType | None, Query(description="Only records of this type", examples=["export"])] = None,
    overdue: Annotated[bool, Query(examples=[False])] = False,
    limit: Annotated[int, Query(ge=1, le=100, examples=[20])] = 50,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=1024,
            description=f"{CURSOR_RULES} (overdue=true is a listing of its own)",
            examples=[CURSOR_EXAMPLE],
        ),
    ] = None,
) -> RequestPage:
    wanted = requests.RequestFilter(status=status, type_=type, subject_id=subject_id, overdue=overdue)
    return requests.list_requests(wiring().requests, tenant_id(router), utc_now(), wanted, limit=limit, cursor=cursor)


@router.get(
    "/v1/requests/<request_id>",
    operation_id="getRequest",
    tags=["Rights requests"],
    description="One rights request record: its type, status, due date, and its result once completed.",
    summary="Read one rights request record",
    responses={**body_response(200, "The record", RequestRecord), **problem_responses(404, 422)},
)
def get_request(request_id: RequestId) -> AnyRecord:
    return requests.get_request(wiring().requests, tenant_id(router), request_id, utc_now())


@router.post(
    "/v1/requests/<request_id>/extension",
    operation_id="extendRequest",
    tags=["Rights requests"],
    description="Extends an open request's due date once, with the reason the subject is told.",
    summary="Extend an open request's deadline once, with a reason",
    responses={
        **body_response(200, "The extended record", RequestRecord),
        **problem_responses(404, 409, 413, 415, 422),
    },
)
def extend_request(request_id: RequestId, body: ExtensionIn) -> AnyRecord:
    return requests.extend_request(wiring().requests, tenant_id(router), request_id, body, utc_now())
