"""Shared fixtures: moto in-process with the template's own resources, and REST proxy events."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# Before boto3 is used anywhere: no real credentials, and the botocore 1.44 / moto streams fix.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "ChatSphere",
        "POWERTOOLS_SERVICE_NAME": "chatsphere",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from infra import moto_patches  # after the environment above

moto_patches.apply()  # transactions without a copy of the whole table each (infra/moto_patches.py)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with every stateful resource of template.yaml, and the functions' environment set from it."""
    from moto import mock_aws

    from chatsphere import bootstrap
    from chatsphere.config import get_config
    from chatsphere.dal import clients
    from infra.provision import function_environment, provision

    with mock_aws():
        clients.reset()
        get_config.cache_clear()
        bootstrap.wiring.cache_clear()
        bootstrap.api_key_reader.cache_clear()
        resolver = provision()
        for name, value in function_environment(resolver, "IntakeFunction").items():
            monkeypatch.setenv(name, value)
        yield resolver
        clients.reset()
        get_config.cache_clear()
        bootstrap.wiring.cache_clear()
        bootstrap.api_key_reader.cache_clear()
