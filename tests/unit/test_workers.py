"""The local stack's SQS poller and schedules, against moto's SQS and stub handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local import Functions, FunctionSpec
from infra.local.workers import Schedule, SqsPoller, from_template, rate_seconds


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def queue(sqs: Any, name: str = "jobs", **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def functions(handler: Any) -> Functions:
    return Functions({"Fn": FunctionSpec("Fn", "stub.handler")}, {"Fn": handler})


def test_poller_delivers_sqs_events_and_deletes_what_succeeded(sqs: Any) -> None:
    url, arn = queue(sqs)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}))
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(event["Records"])
        bad = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["n"] == 1]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in bad]}

    poller = SqsPoller(functions(handler), "Fn", url, arn, batch_size=10)
    while poller.poll_once(sqs):
        pass
    assert sorted(json.loads(r["body"])["n"] for r in seen) == [0, 1, 2]
    record = seen[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert poller.delivered == 2
    # The failed one stays on the queue (invisible for the retry delay), as with ReportBatchItemFailures.
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_a_raising_handler_fails_the_whole_batch(sqs: Any) -> None:
    url, arn = queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="{}")

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    poller = SqsPoller(functions(handler), "Fn", url, arn, batch_size=1)
    assert poller.poll_once(sqs) == 1
    assert poller.delivered == 0
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_schedule_fires_a_scheduled_event() -> None:
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, bool]:
        events.append(event)
        return {"ok": True}

    schedule = Schedule(functions(handler), "Fn", 3600, "Fn-Hourly")
    assert schedule.fire() == {"ok": True}
    assert events[0]["detail-type"] == "Scheduled Event" and events[0]["resources"] == [
        "arn:aws:scheduler:::schedule/Fn-Hourly"
    ]


def test_a_schedule_with_an_input_delivers_that_input_as_the_event() -> None:
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        events.append(dict(event))
        event["changed"] = True  # the next run still gets the Input as written

    schedule = Schedule(functions(handler), "Fn", 0, "Fn-Daily", '{"as_of": "2024-05-01T00:00:00Z"}')
    schedule.fire()
    schedule.fire()
    assert events == [{"as_of": "2024-05-01T00:00:00Z"}] * 2


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 hour)", 3600), ("rate(5 minutes)", 300), ("rate(2 days)", 172800), ("cron(0 * * * ? *)", None)],
)
def test_rate_expressions(expression: str, seconds: float | None) -> None:
    assert rate_seconds(expression) == seconds


def test_workers_come_from_the_template(sqs: Any) -> None:
    from infra import template
    from infra.template import Resolver

    resolver = Resolver()
    for logical in template.resources("AWS::SQS::Queue"):
        resolver.refs[logical], resolver.attrs[(logical, "Arn")] = queue(sqs, logical)
    stub = Functions({}, {})
    workers = from_template(stub, resolver)
    pollers = {w.function_id: w for w in workers if isinstance(w, SqsPoller)}
    schedules = {w.function_id: w for w in workers if isinstance(w, Schedule)}
    assert pollers["ExportFunction"].queue_url == resolver.refs["ExportQueue"]
    assert pollers["ExportFunction"].batch_size == 1
    assert schedules["MonitorFunction"].period_s == 3600
