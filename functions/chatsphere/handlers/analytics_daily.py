"""The tenant's anonymous daily aggregates (RightsFunction; AnalyticsFunction computes them,
handlers/analytics.py)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import body_response, problem_responses, tenant_id
from chatsphere.logic import analytics
from chatsphere.logic.analytics import DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS
from chatsphere.models.analytics import DailyAggregatePage
from chatsphere.models.common import DateText, utc_now

router = Router()  # type: ignore[no-untyped-call]


@router.get(
    "/v1/analytics/daily",
    operation_id="getDailyAnalytics",
    tags=["Analytics"],
    description="Anonymous per-day counts for the tenant, computed by the nightly job; the last 30 days (UTC) by "
    "default. No subject identifier appears; a cell counting fewer subjects than the threshold is folded away, and a "
    "day of too few subjects is listed with `suppressed: true`, its `min_count` and null counts.",
    summary="The tenant's anonymous daily aggregates (no identifier; cells of too few subjects are null)",
    responses={**body_response(200, "The days computed in the range", DailyAggregatePage), **problem_responses(422)},
)
def daily_analytics(
    from_: Annotated[
        DateText | None,
        Query(
            alias="from",
            description=f"First day, YYYY-MM-DD (UTC); {DEFAULT_RANGE_DAYS - 1} days before `to` if left out",
            examples=["2026-11-01"],
        ),
    ] = None,
    to: Annotated[
        DateText | None,
        Query(
            description=f"Last day, YYYY-MM-DD (UTC), not before `from`, at most {MAX_RANGE_DAYS - 1} days after it;"
            " today (UTC) if left out",
            examples=["2026-11-30"],
        ),
    ] = None,
) -> DailyAggregatePage:
    return analytics.daily(wiring().analytics, tenant_id(router), from_, to, utc_now().date())
