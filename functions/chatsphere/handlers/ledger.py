"""LedgerFunction: the evidence ledger's sequencer (OutboxTable's stream) and its daily signer (schedule).

A stream batch names the tenants whose outbox grew; each is sequenced once per invocation (one `sequence` drains
everything its outbox holds). A tenant that fails is reported as a partial batch failure, and Lambda retries from
its first record; its stream positions go to LedgerDeadLetterQueue after the last retry (and the alarm rings)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatsphere.bootstrap import wiring
from chatsphere.logic import ledger
from chatsphere.models.common import iso, utc_now
from chatsphere.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
_sequenced: set[str] = set()  # the tenants this invocation has sequenced already


def handle(record: DynamoDBRecord) -> None:
    keys = record.dynamodb.keys if record.dynamodb else None
    pk = str((keys or {}).get("pk", ""))
    tenant_id = pk.removeprefix("T#")
    if not pk.startswith("T#") or tenant_id in _sequenced:
        return
    appended = ledger.sequence(wiring().ledger, tenant_id, iso(utc_now()))
    _sequenced.add(tenant_id)
    metrics.add_metric(name="LedgerEntriesAppended", unit="Count", value=appended)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if "Records" not in event:  # the daily schedule
        signed = ledger.daily(wiring().ledger, iso(utc_now()))
        metrics.add_metric(name="LedgerTreeHeadsSigned", unit="Count", value=len(signed))
        logger.info("ledger checkpoints signed", extra={"tenants": len(signed)})
        return {"signed": len(signed)}
    _sequenced.clear()
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
