"""CHATSPHERE_PAUSE_WORKERS: with the export worker paused, the local stack leaves an export request open."""

from __future__ import annotations

from typing import Any

import boto3

from infra.local import workers
from infra.local.workers import SqsPoller
from tests.integration.helpers import call, functions, new_tenant


def test_with_the_export_worker_paused_an_export_stays_received_and_its_message_waits(aws: Any) -> None:
    tenant, _ = new_tenant()
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada"}).status == 201
    asked = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    assert asked.status == 202, asked.body
    request_id = asked.body["request_id"]
    sqs = boto3.client("sqs")

    # Every poller the local stack would run with ExportFunction paused, each given its chance.
    paused = workers.paused_functions({"CHATSPHERE_PAUSE_WORKERS": "ExportFunction"})
    pollers = [w for w in workers.from_template(functions(), aws, 0, paused) if isinstance(w, SqsPoller)]
    assert pollers
    for poller in pollers:
        poller.poll_once(sqs)

    assert call("GET", f"/v1/requests/{request_id}", tenant=tenant).body["status"] == "received"
    waiting = sqs.get_queue_attributes(QueueUrl=aws.ref("ExportQueue"), AttributeNames=["ApproximateNumberOfMessages"])
    assert waiting["Attributes"]["ApproximateNumberOfMessages"] == "1"
    extended = call("POST", f"/v1/requests/{request_id}/extension", tenant=tenant, body={"days": 30, "reason": "x"})
    assert extended.status == 200, extended.body

    # Unpaused, the same stack completes it.
    for worker in workers.from_template(functions(), aws, 0):
        if isinstance(worker, SqsPoller) and worker.function_id == "ExportFunction":
            worker.poll_once(sqs)
    assert call("GET", f"/v1/requests/{request_id}", tenant=tenant).body["status"] == "completed"
