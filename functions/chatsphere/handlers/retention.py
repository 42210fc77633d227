"""RetentionFunction: on its daily schedule, one run per tenant onto RetentionQueue; from the queue, a run's next
chunk (partial batch failures go back to the queue, then to its DLQ, which is alarmed). A run that has more left
continues through a new message, well inside the Lambda timeout."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from chatsphere.bootstrap import wiring
from chatsphere.config import get_config
from chatsphere.logic import retention
from chatsphere.models.common import utc_now
from chatsphere.models.retention import RetentionEvent, RetentionJob
from chatsphere.observability import logger, metrics, tracer


class RetentionRecord(SqsRecordModel):
    body: Json[RetentionJob]


processor = BatchProcessor(event_type=EventType.SQS, model=RetentionRecord)


def handle(record: RetentionRecord) -> None:
    job = record.body
    logger.append_keys(tenant_id=job.tenant_id, run_id=job.run_id)
    result = retention.run_chunk(wiring().retention, job, utc_now(), get_config().retention_chunk)
    if result.outcome == "continue":
        wiring().retention.jobs.send(job.model_copy(update={"acted": result.acted}))
    for category, count in sorted(result.removed.items()):
        metrics.add_metric(name=f"RetentionRemoved_{category}", unit="Count", value=count)
    logger.info("retention chunk handled", extra={"outcome": result.outcome, "removed": result.removed})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if "Records" in event:
        return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    now = utc_now()
    as_of = parse(event=event, model=RetentionEvent).as_of or now  # the schedule's Input
    started = retention.start_runs(wiring().adapters.tenants, wiring().retention.jobs, now, as_of)
    metrics.add_metric(name="RetentionRunsStarted", unit="Count", value=len(started))
    logger.info("retention runs started", extra={"tenants": len(started)})
    return {"runs_started": len(started)}
