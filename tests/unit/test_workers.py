"""The local stack's SQS poller and schedules, against moto's SQS and stub handlers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import template
from infra.local import Functions, FunctionSpec
from infra.local.workers import (
    BadPauseSetting,
    BadScheduleSetting,
    Schedule,
    SqsPoller,
    StreamPoller,
    from_template,
    paused_functions,
    queue_consumers,
    schedule_seconds,
)
from infra.template import Resolver


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


def schedule_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("schedule:")]


def test_a_schedule_of_period_0_starts_no_thread_and_still_fires_on_demand() -> None:
    events: list[dict[str, Any]] = []
    schedule = Schedule(functions(lambda event, context: events.append(event)), "Fn", 0, "Fn-Daily", "{}")
    schedule.start()
    try:
        assert schedule_threads() == []
        schedule.fire()
        assert events == [{}]
    finally:
        schedule.stop()


def test_a_schedule_with_a_period_fires_by_itself() -> None:
    ran = threading.Event()
    schedule = Schedule(functions(lambda event, context: ran.set()), "Fn", 0.01, "Fn-Daily", "{}")
    schedule.start()
    try:
        assert ran.wait(10)
    finally:
        schedule.stop()
    assert schedule_threads() == []


@pytest.mark.parametrize(("value", "seconds"), [(None, 60), ("", 60), (" ", 60), ("0", 0), ("5", 5), (" 30 ", 30)])
def test_the_schedule_period_comes_from_the_environment(value: str | None, seconds: int) -> None:
    environ = {} if value is None else {"CHATSPHERE_SCHEDULE_SECONDS": value}
    assert schedule_seconds(environ) == seconds


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "5s", "+5", "1e3"])
def test_a_malformed_schedule_period_is_refused(value: str) -> None:
    with pytest.raises(BadScheduleSetting, match="CHATSPHERE_SCHEDULE_SECONDS"):
        schedule_seconds({"CHATSPHERE_SCHEDULE_SECONDS": value})


def test_every_schedule_cron_included_gets_the_period_and_its_input(monkeypatch: pytest.MonkeyPatch) -> None:
    def schedule(expression: str, **props: Any) -> dict[str, Any]:
        return {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": expression, **props}}

    events = {
        "Hourly": schedule("rate(1 hour)"),
        "Nightly": schedule("cron(0 3 * * ? *)", Input="{}"),
        "Once": schedule("at(2030-01-01T00:00:00)"),  # a one-time schedule: not repeated locally
    }
    fn = template.Function("Fn", "stub.handler", {}, events, {})
    monkeypatch.setattr(template, "functions", lambda: {"Fn": fn})

    workers = from_template(functions(lambda event, context: event), Resolver(), schedule_s=7)

    assert {w.name: (w.period_s, w.input_json) for w in workers if isinstance(w, Schedule)} == {
        "Fn-Hourly": (7, None),
        "Fn-Nightly": (7, "{}"),
    }


def test_workers_come_from_the_template(sqs: Any) -> None:
    resolver = Resolver()
    for logical in template.resources("AWS::SQS::Queue"):
        resolver.refs[logical], resolver.attrs[(logical, "Arn")] = queue(sqs, logical)
    resolver.attrs[("OutboxTable", "StreamArn")] = "arn:aws:dynamodb:us-east-1:123456789012:table/OutboxTable/stream/x"
    stub = Functions({}, {})
    workers = from_template(stub, resolver, schedule_s=60)
    pollers = {w.function_id: w for w in workers if isinstance(w, SqsPoller)}
    schedules = {w.function_id: w for w in workers if isinstance(w, Schedule)}
    assert pollers["ExportFunction"].queue_url == resolver.refs["ExportQueue"]
    assert pollers["ExportFunction"].batch_size == 1
    (stream,) = [w for w in workers if isinstance(w, StreamPoller)]
    assert (stream.function_id, stream.stream_arn) == ("LedgerFunction", resolver.attrs[("OutboxTable", "StreamArn")])
    assert stream.patterns == [{"eventName": ["INSERT"]}]  # the template's FilterCriteria
    assert schedules["MonitorFunction"].period_s == 60
    assert all(w.period_s == 60 for w in schedules.values())


def test_with_period_0_the_templates_schedules_start_no_thread(sqs: Any) -> None:
    resolver = Resolver()
    for logical in template.resources("AWS::SQS::Queue"):
        resolver.refs[logical], resolver.attrs[(logical, "Arn")] = queue(sqs, logical)
    resolver.attrs[("OutboxTable", "StreamArn")] = "arn:aws:dynamodb:us-east-1:123456789012:table/OutboxTable/stream/x"
    schedules = [w for w in from_template(Functions({}, {}), resolver, schedule_s=0) if isinstance(w, Schedule)]
    assert schedules
    for schedule in schedules:
        schedule.start()
    try:
        assert schedule_threads() == []
    finally:
        for schedule in schedules:
            schedule.stop()


# ------------------------------------------------------------------ CHATSPHERE_PAUSE_WORKERS
@pytest.mark.parametrize(
    ("value", "paused"),
    [
        (None, set()),
        ("", set()),
        ("ExportFunction", {"ExportFunction"}),
        (" ExportFunction , DeletionFunction,", {"ExportFunction", "DeletionFunction"}),
    ],
)
def test_the_paused_functions_come_from_the_environment(value: str | None, paused: set[str]) -> None:
    environ = {} if value is None else {"CHATSPHERE_PAUSE_WORKERS": value}
    assert paused_functions(environ) == paused


@pytest.mark.parametrize("value", ["Export", "exportfunction", "IntakeFunction", "ExportFunction,ExportQueue"])
def test_a_pause_of_anything_but_a_queue_consumer_of_the_template_is_refused_in_one_line(value: str) -> None:
    # IntakeFunction is a function of the template, but has no queue to leave unpolled.
    with pytest.raises(BadPauseSetting) as refused:
        paused_functions({"CHATSPHERE_PAUSE_WORKERS": value})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("CHATSPHERE_PAUSE_WORKERS names ")
    assert "ExportFunction, DeletionFunction" in message  # what it may name
    assert set(queue_consumers()) >= {"ExportFunction", "DeletionFunction"}


def test_a_paused_function_gets_no_poller_and_the_rest_are_unchanged(sqs: Any) -> None:
    resolver = Resolver()
    for logical in template.resources("AWS::SQS::Queue"):
        resolver.refs[logical], resolver.attrs[(logical, "Arn")] = queue(sqs, logical)
    stub = Functions({}, {})

    def pollers(paused: frozenset[str]) -> list[str]:
        return sorted(w.function_id for w in from_template(stub, resolver, 0, paused) if isinstance(w, SqsPoller))

    everything = pollers(frozenset())
    assert "ExportFunction" in everything
    assert pollers(frozenset({"ExportFunction"})) == [f for f in everything if f != "ExportFunction"]
    assert pollers(frozenset(queue_consumers())) == []
    schedules = [w for w in from_template(stub, resolver, 0, frozenset(queue_consumers())) if isinstance(w, Schedule)]
    assert {w.function_id for w in schedules} >= {"MonitorFunction"}  # the monitor still runs: overdue shows


def test_make_run_refuses_a_bad_pause_in_one_line_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.local import run

    monkeypatch.setenv("CHATSPHERE_PAUSE_WORKERS", "ExportFunctoin")
    monkeypatch.setattr(run, "MotoServer", None)  # reaching it would fail the test with a TypeError

    assert run.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("run: CHATSPHERE_PAUSE_WORKERS names ExportFunctoin;")


def test_the_local_event_log_subscribes_to_every_event_type_the_logic_publishes() -> None:
    from chatsphere.logic.deletion import EVENT_TYPE
    from chatsphere.logic.requests import STATUS_CHANGED
    from infra.local.workers import STATUS_PATTERN

    assert STATUS_PATTERN == {"detail-type": [STATUS_CHANGED, EVENT_TYPE]}
