"""boto3 clients, created lazily and cached per cold start.

Nothing is built at import time, so tests and the local stack redirect every call with
AWS_ENDPOINT_URL alone (boto3 reads it itself); the console command names its target instead (use())."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # not at run time: the authorizer loads this module, and no pydantic
    from chatsphere.config import AwsTarget

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
_target: AwsTarget | None = None  # None: boto3's own resolution from the environment


def use(target: AwsTarget) -> None:
    """Send every client's calls where `target` says from now on (bootstrap.build, from the config)."""
    global _target
    if target != (_target or type(target)()):
        _target = target
        client.cache_clear()


@cache
def client(service: str) -> Any:
    if _target is None:
        return boto3.session.Session().client(service, config=_CONFIG)
    t = _target
    session = boto3.session.Session(
        region_name=t.region_name, aws_access_key_id=t.aws_access_key_id, aws_secret_access_key=t.aws_secret_access_key
    )
    config = _CONFIG if t.endpoint_url is None else _CONFIG.merge(Config(account_id_endpoint_mode="disabled"))
    return session.client(service, endpoint_url=t.endpoint_url, config=config)


def client_as(service: str, role_arn: str, session_name: str) -> Any:
    """A client that acts under `role_arn` alone (temporary credentials, never cached past their use)."""
    credentials = client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    ).client(service, config=_CONFIG)


def reset() -> None:
    """Forget cached clients and any target but the environment's (tests switch moto backends between cases)."""
    global _target
    _target = None
    client.cache_clear()
