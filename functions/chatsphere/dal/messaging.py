"""SQS job queues and the EventBridge bus. Messages carry ids only, never personal values."""

from __future__ import annotations

import json
from typing import Generic, TypeVar

from pydantic import BaseModel

from chatsphere.dal.clients import client

Job = TypeVar("Job", bound=BaseModel)


class SqsJobQueue(Generic[Job]):
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, job: Job) -> None:
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=job.model_dump_json())


class EventBridgePublisher:
    def __init__(self, bus_name: str, source: str = "chatsphere.privacy") -> None:
        self.bus_name = bus_name
        self.source = source

    def publish(self, detail_type: str, detail: dict[str, str]) -> None:
        resp = client("events").put_events(
            Entries=[
                {
                    "EventBusName": self.bus_name,
                    "Source": self.source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, sort_keys=True),
                }
            ]
        )
        if resp.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the {detail_type} event")
