"""Request metrics for the controller's reporting (RightsFunction): GET /v1/reports/requests."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import body_response, problem_responses, tenant_id
from chatsphere.logic import reports
from chatsphere.models.common import DateText, utc_now
from chatsphere.models.reports import RequestReport

router = Router()  # type: ignore[no-untyped-call]
DAY = "A date, YYYY-MM-DD (UTC)"
RANGE = f"`from` not after `to`, and at most {reports.MAX_DAYS} days from one to the other (422 otherwise)"


@router.get(
    "/v1/reports/requests",
    operation_id="getRequestReport",
    tags=["Reports"],
    description="Per request type, how many were received, completed, rejected, failed, open and past due, with the "
    "median and mean days to close.",
    summary="How the tenant answered rights requests: per type, the outcomes, open, past due, days to close",
    responses={**body_response(200, "The report", RequestReport), **problem_responses(422)},
)
def get_request_report(
    from_: Annotated[
        DateText | None,
        Query(
            alias="from",
            description=f"{DAY}: the first day of receipt (default: a year before `to`); {RANGE}",
            examples=["2026-01-01"],
        ),
    ] = None,
    to: Annotated[
        DateText | None,
        Query(description=f"{DAY}: the last day of receipt (default: today); {RANGE}", examples=["2026-11-30"]),
    ] = None,
) -> RequestReport:
    return reports.request_report(wiring().reports, tenant_id(router), utc_now().date(), from_, to)
