"""The template's non-HTTP event sources, run beside the local gateway: SQS and DynamoDB stream event source
mappings, and EventBridge schedules. Each reads its settings from template.yaml's function events.

They mimic Lambda closely where a developer would notice (batching, partial batch failures, the
queue's redrive to its DLQ) and differ where waiting would only slow a developer down: a failed
message is retried after RETRY_DELAY_S, not after the queue's full visibility timeout, and every
schedule, rate() or cron(), fires every CHATSPHERE_SCHEDULE_SECONDS (see schedule_seconds). The queue
pollers of the functions named in CHATSPHERE_PAUSE_WORKERS do not run (see paused_functions), so that their
requests stay open: a developer can extend one, or let it become overdue."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from infra import template
from infra.events import schedule_event, sqs_event, stream_event
from infra.local import Functions
from infra.template import Resolver

log = logging.getLogger("infra.local.workers")
RETRY_DELAY_S = 5
POLL_WAIT_S = 1  # long-poll briefly, so stop() is prompt
SCHEDULE_SECONDS_VAR = "CHATSPHERE_SCHEDULE_SECONDS"
DEFAULT_SCHEDULE_S = 60  # short enough that a developer sees the daily jobs run during `make run`
PAUSE_WORKERS_VAR = "CHATSPHERE_PAUSE_WORKERS"


class _Worker(ABC):
    """A background thread that runs `_run` until stop() (the gateway's Worker protocol)."""

    def __init__(self, functions: Functions, function_id: str, kind: str) -> None:
        self.functions, self.function_id = functions, function_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{kind}:{function_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @abstractmethod
    def _run(self) -> None: ...


class SqsPoller(_Worker):
    """One SQS event source mapping: receive a batch, invoke, delete what succeeded."""

    def __init__(self, functions: Functions, function_id: str, queue_url: str, queue_arn: str, batch_size: int) -> None:
        super().__init__(functions, function_id, "sqs")
        self.queue_url, self.queue_arn, self.batch_size = queue_url, queue_arn, batch_size
        self.delivered = 0
        self.retry_delay_s = RETRY_DELAY_S  # how long a failed message stays invisible before its next attempt

    def _run(self) -> None:
        sqs = boto3.client("sqs")
        while not self._stop.is_set():
            try:
                self.poll_once(sqs, POLL_WAIT_S)
            except Exception as error:  # the poller outlives a failing backend, as Lambda's does
                log.warning("sqs poller %s: %s", self.function_id, type(error).__name__)
                self._stop.wait(RETRY_DELAY_S)

    def poll_once(self, sqs: Any, wait_s: int = 0) -> int:
        """Deliver one batch, if any; returns how many messages it held."""
        messages = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.batch_size, 10),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        try:
            response = self.functions.invoke(self.function_id, sqs_event(messages, self.queue_arn))
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception as error:  # a handler error fails the whole batch
            log.warning("%s failed a batch: %s", self.function_id, type(error).__name__)
            failed = {m["MessageId"] for m in messages}
        for m in messages:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=self.retry_delay_s
                )
            else:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                self.delivered += 1
        return len(messages)


class StreamPoller(_Worker):
    """One DynamoDB stream event source mapping: each shard read from its start (TRIM_HORIZON), the records its
    filter patterns let through handed to the function in order, a batch at a time. A failed batch is retried from
    its first failed record (ReportBatchItemFailures) after RETRY_DELAY_S, so nothing behind it overtakes it."""

    def __init__(
        self, functions: Functions, function_id: str, stream_arn: str, batch_size: int, patterns: list[dict[str, Any]]
    ) -> None:
        super().__init__(functions, function_id, "stream")
        self.stream_arn, self.batch_size, self.patterns = stream_arn, batch_size, patterns
        self.delivered = 0
        self._iterators: dict[str, str | None] = {}
        self._held: list[dict[str, Any]] = []  # read, not yet handled
        self.retry_delay_s = RETRY_DELAY_S

    def _run(self) -> None:
        streams = boto3.client("dynamodbstreams")
        while not self._stop.is_set():
            try:
                if not self.poll_once(streams):
                    self._stop.wait(POLL_WAIT_S)
            except Exception as error:  # the poller outlives a failing backend, as Lambda's does
                log.warning("stream poller %s: %s", self.function_id, type(error).__name__)
                self._stop.wait(RETRY_DELAY_S)

    def poll_once(self, streams: Any) -> int:
        """Deliver one batch, if any; returns how many records it held."""
        if not self._held:
            self._read(streams)
        if not self._held:
            return 0
        batch = self._held[: self.batch_size]
        try:
            response = self.functions.invoke(self.function_id, stream_event(batch, self.stream_arn))
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception as error:  # a handler error fails the whole batch
            log.warning("%s failed a batch: %s", self.function_id, type(error).__name__)
            failed = {batch[0]["dynamodb"]["SequenceNumber"]}
        numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        first_failed = next((i for i, n in enumerate(numbers) if n in failed), None)
        handled = len(batch) if first_failed is None else first_failed
        self._held = self._held[handled:]
        self.delivered += handled
        if first_failed is not None:
            self._stop.wait(self.retry_delay_s)
        return len(batch)

    def _read(self, streams: Any) -> None:
        for shard in streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]:
            if shard["ShardId"] not in self._iterators:
                self._iterators[shard["ShardId"]] = streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        for shard_id, iterator in self._iterators.items():
            if iterator is None:
                continue
            resp = streams.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard_id] = resp.get("NextShardIterator")
            self._held.extend(r for r in resp["Records"] if self._wanted(r))

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self.patterns or any(_matches(record, pattern) for pattern in self.patterns)


def _matches(value: Any, pattern: Any) -> bool:
    """Lambda's event filtering, for the patterns the template uses: a field's list of allowed values, nested."""
    if isinstance(pattern, list):
        return value in pattern
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(value.get(k), p) for k, p in pattern.items())
    return bool(value == pattern)


class Schedule(_Worker):
    """One schedule: invoke the function every period (the first time one period after start); a period of 0
    starts no thread, and fire() runs it on demand. The event is the schedule's Input when it has one, as
    EventBridge Scheduler delivers it, else a "Scheduled Event"."""

    def __init__(
        self, functions: Functions, function_id: str, period_s: float, name: str, input_json: str | None = None
    ) -> None:
        super().__init__(functions, function_id, "schedule")
        self.period_s, self.name, self.input_json = period_s, name, input_json
        if input_json is not None:
            json.loads(input_json)  # a malformed Input fails when the stack starts, not at each run

    def start(self) -> None:
        if self.period_s > 0:
            super().start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.fire()

    def event(self) -> Any:
        if self.input_json is not None:
            return json.loads(self.input_json)  # parsed anew: a handler that changes its event leaves the next alone
        return schedule_event(f"arn:aws:scheduler:::schedule/{self.name}")

    def fire(self) -> Any:
        try:
            return self.functions.invoke(self.function_id, self.event())
        except Exception as error:
            log.warning("schedule %s failed: %s", self.name, type(error).__name__)
            return None


# ------------------------------------------------------------------ the local event log
STATUS_EVENTS = "chatsphere-local-status-events"  # the rule and the queue: made locally, never in template.yaml
# Every event the stack publishes: logic/requests.STATUS_CHANGED and logic/deletion.EVENT_TYPE (tested)
STATUS_PATTERN = {"detail-type": ["RightsRequestStatusChanged", "SubjectDeleted"]}
EVENT_LOG = "events.log"


def subscribe_status_events(resolver: Resolver) -> str:
    """An EventBridge rule on the stack's bus that sends every RightsRequestStatusChanged and SubjectDeleted event
    to a local SQS queue, as a tenant's rule would send it to a webhook; returns the queue's URL. Idempotent."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url: str = sqs.create_queue(QueueName=STATUS_EVENTS)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = resolver.ref("EventBus")
    events.put_rule(Name=STATUS_EVENTS, EventBusName=bus, EventPattern=json.dumps(STATUS_PATTERN), State="ENABLED")
    events.put_targets(Rule=STATUS_EVENTS, EventBusName=bus, Targets=[{"Id": "local-event-log", "Arn": arn}])
    return url


class EventLog:
    """Drains the status events' queue into a file, one JSON line per event (the event as EventBridge delivers it),
    so that a developer can `tail -f .local/events.log`."""

    def __init__(self, queue_url: str, path: Path) -> None:
        self.queue_url, self.path = queue_url, path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-log", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        sqs = boto3.client("sqs")
        while not self._stop.is_set():
            try:
                self.poll_once(sqs, POLL_WAIT_S)
            except Exception as error:
                log.warning("event log: %s", type(error).__name__)
                self._stop.wait(RETRY_DELAY_S)

    def poll_once(self, sqs: Any, wait_s: int = 0) -> int:
        """Append one batch to the file, if any; returns how many events it held."""
        messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s).get(
            "Messages", []
        )
        if messages:
            with self.path.open("a", encoding="utf-8") as out:
                for m in messages:
                    out.write(json.dumps(json.loads(m["Body"]), sort_keys=True) + "\n")
            for m in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)


class BadScheduleSetting(ValueError):
    pass


def schedule_seconds(environ: Mapping[str, str] = os.environ) -> int:
    """The local stack's period for every schedule: $CHATSPHERE_SCHEDULE_SECONDS, DEFAULT_SCHEDULE_S when it is
    unset or empty, 0 for none. The deployed periods (an hour, a day) would mean a schedule never runs locally."""
    value = environ.get(SCHEDULE_SECONDS_VAR, "").strip()
    if not value:
        return DEFAULT_SCHEDULE_S
    if not re.fullmatch(r"[0-9]+", value):
        raise BadScheduleSetting(
            f"{SCHEDULE_SECONDS_VAR} is {value!r}; give a whole number of seconds (0 turns the schedules off)"
        )
    return int(value)


class BadPauseSetting(ValueError):
    pass


def queue_consumers() -> list[str]:
    """The functions of template.yaml with an SQS event, in template order."""
    return [
        fn.logical_id
        for fn in template.functions().values()
        if any(event["Type"] == "SQS" for event in fn.events.values())
    ]


def paused_functions(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The functions whose queue pollers the local stack does not run: $CHATSPHERE_PAUSE_WORKERS, a comma-separated
    list of template.yaml functions that have an SQS event (none when it is unset or empty). Their messages wait on
    the queue, and their requests stay `received`."""
    names = [name.strip() for name in environ.get(PAUSE_WORKERS_VAR, "").split(",") if name.strip()]
    consumers = queue_consumers()
    unknown = [name for name in names if name not in consumers]
    if unknown:
        raise BadPauseSetting(
            f"{PAUSE_WORKERS_VAR} names {', '.join(unknown)}; "
            f"give a comma-separated list of functions with a queue: {', '.join(consumers)}"
        )
    return frozenset(names)


def from_template(
    functions: Functions, resolver: Resolver, schedule_s: float, paused: frozenset[str] = frozenset()
) -> list[SqsPoller | StreamPoller | Schedule]:
    """A worker for every SQS, DynamoDB stream and schedule event of every function in template.yaml, but no queue
    poller for a function in `paused`; each schedule, whatever its expression, fires every schedule_s seconds (0:
    only when fire() is called)."""
    workers: list[SqsPoller | StreamPoller | Schedule] = []
    for fn in template.functions().values():
        for name, event in fn.events.items():
            props = event.get("Properties", {})
            if event["Type"] == "SQS" and fn.logical_id in paused:
                log.info("%s: paused (%s), its messages wait on the queue", fn.logical_id, PAUSE_WORKERS_VAR)
            elif event["Type"] == "SQS":
                queue_id = props["Queue"]["Fn::GetAtt"][0]
                workers.append(
                    SqsPoller(
                        functions,
                        fn.logical_id,
                        resolver.ref(queue_id),
                        resolver.attrs[(queue_id, "Arn")],
                        int(props.get("BatchSize", 10)),
                    )
                )
            elif event["Type"] == "DynamoDB":
                table_id = props["Stream"]["Fn::GetAtt"][0]
                stream_arn = resolver.attrs.get((table_id, "StreamArn"))
                if stream_arn is None:  # a resolver of the queues alone (the workers' own tests)
                    log.warning("%s.%s: %s has no stream here; not polled", fn.logical_id, name, table_id)
                    continue
                patterns = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
                batch = int(props.get("BatchSize", 100))
                workers.append(StreamPoller(functions, fn.logical_id, stream_arn, batch, patterns))
            elif event["Type"] in ("Schedule", "ScheduleV2"):
                if not props["ScheduleExpression"].strip().startswith(("rate(", "cron(")):
                    log.warning(
                        "%s.%s: only rate() and cron() schedules run locally; use make invoke", fn.logical_id, name
                    )
                    continue
                workers.append(
                    Schedule(functions, fn.logical_id, schedule_s, f"{fn.logical_id}-{name}", props.get("Input"))
                )
    return workers
