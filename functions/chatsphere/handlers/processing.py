"""The record of processing activities (GDPR art. 30) in RightsFunction: GET /v1/records-of-processing, built at
each request from the tenant's live settings and the deployment (logic/processing.py), as JSON, CSV or HTML.

Its AWS calls: the settings and the tenant (2 GetItem), and Select=COUNT Queries of indexes for its counts: 4 of
MemberIndex (subjects), 1 of OpenRequestsIndex (open requests), 32 of the day index (the last 7 days' interactions):
39 in all, whatever the tenant's size (one more per 1 MB of index keys a count passes), never a Scan."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import problem_responses, tenant_id, to_json
from chatsphere.logic import pages, processing
from chatsphere.models.common import utc_now
from chatsphere.models.processing import RecordOfProcessing

router = Router()  # type: ignore[no-untyped-call]
CSV = "text/csv; charset=utf-8"
HTML = "text/html; charset=utf-8"
TEXT: Any = {"schema": {"type": "string"}}


@router.get(
    "/v1/records-of-processing",
    operation_id="getRecordOfProcessing",
    tags=["Settings"],
    description="The record of processing activities (GDPR art. 30), built from the live settings and the deployment, "
    "as JSON, CSV or HTML.",
    summary="The record of processing activities (GDPR art. 30), from the live settings: JSON, CSV or HTML",
    responses={
        200: {
            "description": "The record: JSON; CSV (one row per purpose, in the column order of the CNIL's art. 30 "
            "template); or a self-contained HTML page (no external resource, a strict Content-Security-Policy)",
            "content": {"application/json": {"model": RecordOfProcessing}, CSV: TEXT, HTML: TEXT},
        },
        **problem_responses(422),
    },
)
def get_record_of_processing(
    format: Annotated[
        Literal["json", "csv", "html"],
        Query(description="json (default), csv or html; anything else is a 422", examples=["csv"]),
    ] = "json",
) -> Response[Any]:
    record = processing.record_of_processing(wiring().processing, tenant_id(router), utc_now())
    if format == "csv":
        return Response(status_code=200, content_type=CSV, body=processing.to_csv(record))
    if format == "html":
        headers = {"Content-Security-Policy": pages.CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}
        return Response(status_code=200, content_type=HTML, body=processing.to_html(record), headers=headers)
    return Response(status_code=200, content_type="application/json", body=to_json(record))
