"""Full API Gateway REST proxy events and authorizer events, as API Gateway builds them.

The local gateway sends these to the handlers, and the integration tests use the same builder, so
the handlers meet one shape of event everywhere."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT = "123456789012"
API_ID = "local"


def method_arn(stage: str, method: str, path: str, region: str = "us-east-1") -> str:
    return f"arn:aws:execute-api:{region}:{ACCOUNT}:{API_ID}/{stage}/{method}{path}"


def token_event(token: str, stage: str, method: str, path: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn(stage, method, path)}


def rest_event(
    method: str,
    resource: str,
    path: str,
    *,
    path_parameters: dict[str, str] | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    authorizer: dict[str, Any] | None = None,
    stage: str = "dev",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """`body` as bytes is sent base64-encoded (as API Gateway does for binary media types)."""
    headers = dict(headers or {})
    pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        multi_query.setdefault(key, []).append(value)
    encoded = isinstance(body, bytes)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "domainName": "localhost",
            "apiId": API_ID,
            "authorizer": authorizer,
        },
        "body": base64.b64encode(body).decode() if isinstance(body, bytes) else body,
        "isBase64Encoded": encoded,
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The event an SQS event source mapping hands a function, from ReceiveMessage's messages
    (received with AttributeNames=["All"] and MessageAttributeNames=["All"])."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": m.get("Attributes", {}).get("SenderId", ACCOUNT),
                    "ApproximateFirstReceiveTimestamp": m.get("Attributes", {}).get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def stream_event(records: list[dict[str, Any]], stream_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The event a DynamoDB stream's event source mapping hands a function, from GetRecords' records (botocore
    gives ApproximateCreationDateTime as a datetime; Lambda gives epoch seconds)."""
    out = []
    for record in records:
        data = dict(record["dynamodb"])
        stamp = data.get("ApproximateCreationDateTime")
        if stamp is not None and not isinstance(stamp, int | float):
            data["ApproximateCreationDateTime"] = int(stamp.timestamp())
        out.append({**record, "dynamodb": data, "eventSourceARN": stream_arn, "awsRegion": region})
    return {"Records": out}


def schedule_event(rule_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """What an EventBridge (Scheduler) schedule delivers to its target function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
