"""SQS job queues and the EventBridge bus. Messages carry ids only, never personal values."""

from __future__ import annotations

import json
from typing import Any

from chatsphere.dal.clients import client


class SqsJobQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, message: dict[str, Any]) -> None:
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message, sort_keys=True))


class EventBridgePublisher:
    def __init__(self, bus_name: str, source: str = "chatsphere.privacy") -> None:
        self.bus_name = bus_name
        self.source = source

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
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
