"""ExportFunction: builds export packages from ExportQueue (partial batch failures go back to the queue,
then to its DLQ; the last attempt marks the request failed)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from chatsphere.bootstrap import wiring
from chatsphere.logic.export import run_export
from chatsphere.models.common import utc_now
from chatsphere.models.export import ExportJob
from chatsphere.observability import logger, metrics, tracer


class ExportRecord(SqsRecordModel):
    body: Json[ExportJob]


processor = BatchProcessor(event_type=EventType.SQS, model=ExportRecord)


def handle(record: ExportRecord) -> None:
    job = record.body
    attempt = int(record.attributes.ApproximateReceiveCount)
    logger.append_keys(tenant_id=job.tenant_id, request_id=job.request_id)
    done = run_export(wiring().export, job, utc_now(), attempt=attempt)
    logger.info("export handled", extra={"status": done.status if done else "missing", "attempt": attempt})
    if done is not None and done.status == "completed":
        metrics.add_metric(name="ExportsCompleted", unit="Count", value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
