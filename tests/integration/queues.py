"""The template's queue consumers and schedules, run by the local stack's own workers (infra/local/workers.py)
against moto: one batch at a time on demand, instead of in their background threads."""

from __future__ import annotations

from typing import Any

import boto3

from infra.local import workers
from infra.local.workers import Schedule, SqsPoller, StreamPoller
from infra.template import Resolver
from tests.integration.helpers import functions


def poller(resolver: Resolver, queue_logical_id: str) -> SqsPoller:
    """The event source mapping template.yaml declares for this queue (exactly one consumer)."""
    arn = resolver.attrs[(queue_logical_id, "Arn")]
    (found,) = [
        w
        for w in workers.from_template(functions(), resolver, schedule_s=0)
        if isinstance(w, SqsPoller) and w.queue_arn == arn
    ]
    return found


def drain(resolver: Resolver, queue_logical_id: str, max_batches: int = 50) -> int:
    """Deliver batches to the queue's consumer, as `make run`'s poller does, until the queue has none visible.
    A failed message comes back at once, until the queue's redrive policy moves it to its DLQ, so every
    attempt the template allows happens here. Returns how many messages were consumed (deleted)."""
    sqs, mapping = boto3.client("sqs"), poller(resolver, queue_logical_id)
    mapping.retry_delay_s = 0
    for _ in range(max_batches):
        if not mapping.poll_once(sqs):
            break
    return mapping.delivered


def fire(resolver: Resolver, function_logical_id: str) -> Any:
    """Run a function's schedule once, as `make run`'s schedule does; its answer (None if it failed)."""
    (schedule,) = [
        w
        for w in workers.from_template(functions(), resolver, schedule_s=0)
        if isinstance(w, Schedule) and w.function_id == function_logical_id
    ]
    return schedule.fire()


def sequence(resolver: Resolver, max_batches: int = 50) -> int:
    """Hand the outbox's stream to LedgerFunction, as `make run`'s stream poller does, until it holds no record
    not yet handled: every entry written so far is then in its tenant's tree. Returns how many records it read."""
    (mapping,) = [w for w in workers.from_template(functions(), resolver, schedule_s=0) if isinstance(w, StreamPoller)]
    mapping.retry_delay_s = 0
    streams = boto3.client("dynamodbstreams")
    for _ in range(max_batches):
        if not mapping.poll_once(streams):
            break
    return mapping.delivered
