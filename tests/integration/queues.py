"""Runs a queue's consumer the way Lambda's SQS event source mapping does, against moto."""

from __future__ import annotations

import importlib
from typing import Any

import boto3

from infra import template
from infra.events import sqs_event
from infra.template import Resolver
from tests.integration.helpers import FakeContext


def consumers(queue_logical_id: str) -> list[str]:
    """The functions whose SQS event reads this queue, by template.yaml."""
    found = []
    for fn in template.functions().values():
        for event in fn.events.values():
            queue = event.get("Properties", {}).get("Queue", {})
            if event["Type"] == "SQS" and queue.get("Fn::GetAtt", [None])[0] == queue_logical_id:
                found.append(fn.logical_id)
    return found


def drain(resolver: Resolver, queue_logical_id: str, max_batches: int = 50) -> list[dict[str, Any]]:
    """Deliver every message to the consumer until the queue is empty; delete what succeeded.
    Returns the batch responses (their batchItemFailures stay on the queue, as with Lambda)."""
    (consumer,) = consumers(queue_logical_id)
    fn = template.functions()[consumer]
    handler = getattr(importlib.import_module(fn.module), fn.attribute)
    sqs = boto3.client("sqs")
    url, arn = resolver.refs[queue_logical_id], resolver.attrs[(queue_logical_id, "Arn")]
    responses = []
    for _ in range(max_batches):
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,
        ).get("Messages", [])
        if not got:
            break
        response = handler(sqs_event(got, arn), FakeContext())
        responses.append(response)
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for m in got:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return responses
