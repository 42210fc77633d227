"""AnalyticsFunction (daily schedule): each tenant's anonymous aggregates of the days since its last run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatsphere.bootstrap import wiring
from chatsphere.logic.analytics import run_tenant
from chatsphere.models.common import utc_now
from chatsphere.models.retention import RetentionEvent
from chatsphere.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = utc_now()
    as_of = parse(event=event, model=RetentionEvent).as_of or now  # the schedule's Input
    w = wiring()
    days = 0
    for tenant_id in w.adapters.tenants.tenant_ids():
        days += len(run_tenant(w.analytics, tenant_id, as_of, now))
    metrics.add_metric(name="AnalyticsDaysComputed", unit="Count", value=days)
    logger.info("daily aggregates computed", extra={"days": days})
    return {"days_computed": days}
