"""What each retention run removed and kept: the tenant's list (RightsFunction; the runs themselves are
RetentionFunction's, handlers/retention.py)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import CURSOR_EXAMPLE, CURSOR_RULES, body_response, problem_responses, tenant_id
from chatsphere.models.retention import RetentionRunPage

router = Router()  # type: ignore[no-untyped-call]


@router.get(
    "/v1/retention/runs",
    operation_id="listRetentionRuns",
    tags=["Retention"],
    description="A page of the tenant's retention runs, newest first: what each removed and what a legal hold kept.",
    summary="List the tenant's retention runs, newest first: what each removed and what a legal hold kept",
    responses={**body_response(200, "A page of runs", RetentionRunPage), **problem_responses(400, 422)},
)
def list_retention_runs(
    limit: Annotated[int, Query(ge=1, le=100, examples=[10])] = 20,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=1024, description=CURSOR_RULES, examples=[CURSOR_EXAMPLE])
    ] = None,
) -> RetentionRunPage:
    from chatsphere.logic import retention  # the whole pass's logic: this route's alone, not the function's start

    a = wiring().adapters
    return retention.list_runs(a.retention_store, a.secret, tenant_id(router), limit, cursor)
