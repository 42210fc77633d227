"""MonitorFunction (hourly schedule): publishes OverdueRightsRequests, which template.yaml alarms on."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from chatsphere.bootstrap import wiring
from chatsphere.logic.monitor import watch_requests
from chatsphere.models.common import utc_now
from chatsphere.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = watch_requests(wiring().monitor, utc_now())
    metrics.add_metric(name="OverdueRightsRequests", unit="Count", value=report.overdue)
    metrics.add_metric(name="OpenRightsRequests", unit="Count", value=report.open)
    metrics.add_metric(name="JobsRequeued", unit="Count", value=report.requeued)
    summary = {"open": report.open, "overdue": report.overdue, "requeued": report.requeued}
    logger.info("rights requests watched", extra={**summary, "overdue_by_type": dict(report.overdue_by_type)})
    return summary
