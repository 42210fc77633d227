"""boto3 clients, created lazily and cached per cold start.

Nothing is built at import time, so tests and the local stack redirect every call with
AWS_ENDPOINT_URL alone (boto3 reads it itself)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)


def client_as(service: str, role_arn: str, session_name: str) -> Any:
    """A client that acts under `role_arn` alone (temporary credentials, never cached past their use)."""
    credentials = client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    ).client(service, config=_CONFIG)


def reset() -> None:
    """Forget cached clients (tests switch moto backends between cases)."""
    client.cache_clear()
