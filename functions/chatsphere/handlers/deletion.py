"""DeletionFunction: erases subjects, and offboards tenants (logic/offboarding.py), from DeletionQueue (partial
batch failures go back to the queue; the last attempt marks the request failed, and the message goes to the alarmed
DLQ). A long erasure or offboarding continues through a new message."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from chatsphere.bootstrap import wiring
from chatsphere.config import get_config
from chatsphere.logic import deletion
from chatsphere.models.common import utc_now
from chatsphere.models.deletion import DeletionJob
from chatsphere.observability import logger, metrics, tracer


class DeletionRecord(SqsRecordModel):
    body: Json[DeletionJob]


processor = BatchProcessor(event_type=EventType.SQS, model=DeletionRecord)


def handle(record: DeletionRecord) -> None:
    job = record.body
    logger.append_keys(tenant_id=job.tenant_id, request_id=job.request_id)
    ports = wiring().deletion
    attempt = int(record.attributes.ApproximateReceiveCount)
    if job.scope == "tenant":
        from chatsphere.logic import offboarding

        outcome = offboarding.run_offboarding(wiring().offboarding, job, utc_now(), attempt)
    else:
        outcome = deletion.run_deletion(ports, job, utc_now(), get_config().deletion_chunk, attempt)
    if outcome == "continue":
        ports.jobs.send(job)  # the rest in a fresh invocation, well inside the Lambda timeout
    logger.info("deletion handled", extra={"outcome": outcome})
    if outcome == "done":
        metrics.add_metric(name="SubjectsErased", unit="Count", value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
