"""The no-Docker local stack: moto as AWS, an API Gateway stand-in, and the Lambda handlers run in-process.

This module holds what `make run` (run.py), `make invoke` (invoke.py) and the gateway share: where the stack's
state lives, the dummy AWS environment, and a small Lambda runtime (fake context, handler loading, one lock)."""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from infra.events import ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

# Never real credentials: the stack only ever talks to its own moto endpoint.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # botocore would otherwise build account-based endpoints and bypass AWS_ENDPOINT_URL for DynamoDB.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}

Handler = Callable[[dict[str, Any], Any], Any]


def local_dir() -> Path:
    """The stack's state directory: $CHATSPHERE_LOCAL_DIR, else .local in the repository root."""
    return Path(os.environ.get("CHATSPHERE_LOCAL_DIR") or ROOT / ".local")


def stack_file() -> Path:
    return local_dir() / "stack.json"


def functions_log_file() -> Path:
    """Where `make run` writes what its functions print (Powertools' JSON logs and metrics), not to the terminal."""
    return local_dir() / "functions.log"


def use_local_aws(endpoint_url: str, aws_env: Mapping[str, str] = AWS_ENV) -> None:
    """Point every boto3 client of this process at the local endpoint, with dummy credentials."""
    for name in list(os.environ):
        # A profile or a per-service endpoint from the developer's shell would win over ours.
        if name in {"AWS_PROFILE", "AWS_DEFAULT_PROFILE"} or name.startswith("AWS_ENDPOINT_URL_"):
            del os.environ[name]
    os.environ.update(aws_env)
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url


@dataclass
class FakeContext:
    """What a Lambda handler reads from its context object (Powertools Logger and Idempotency use these)."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_s: float = 3.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d')}/[{self.function_version}]local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str  # module.attribute, as in template.yaml
    memory_mb: int = 128
    timeout_s: float = 3.0


def function_specs() -> dict[str, FunctionSpec]:
    """Every function of template.yaml, with the Lambda defaults for what it leaves out."""
    from infra import template

    return {
        logical: FunctionSpec(
            logical,
            fn.handler,
            int(fn.properties.get("MemorySize", 128)),
            float(fn.properties.get("Timeout", 3)),
        )
        for logical, fn in template.functions().items()
    }


def import_handler(dotted: str) -> Handler:
    module, _, attribute = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), attribute)
    return handler


class Functions:
    """Runs the functions' handlers in this process, one invocation at a time.

    One at a time because Powertools resolvers keep the current request on a module-level `app`;
    a lock is simpler than per-function processes and just as correct for a developer's stack.

    With `output`, what the handlers print goes there instead of stdout, as Lambda sends it to CloudWatch: while they
    are imported (Powertools' Logger takes stdout as its stream then) and while each invocation runs."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        handlers: Mapping[str, Handler] | None = None,
        output: TextIO | None = None,
    ) -> None:
        self.specs = dict(specs)
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self.output = output
        self.lock = threading.Lock()  # held around every invocation

    def _printing(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.redirect_stdout(self.output) if self.output is not None else contextlib.nullcontext()

    def load(self) -> None:
        """Import every handler now, so that a broken import fails the start, not the first request."""
        with self.lock, self._printing():
            for logical_id in self.specs:
                self.handler(logical_id)

    def handler(self, logical_id: str) -> Handler:
        if logical_id not in self._handlers:
            self._handlers[logical_id] = import_handler(self.specs[logical_id].handler)
        return self._handlers[logical_id]

    def context(self, logical_id: str) -> FakeContext:
        spec = self.specs[logical_id]
        return FakeContext(logical_id, spec.memory_mb, spec.timeout_s)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        with self.lock, self._printing():
            return self.handler(logical_id)(event, self.context(logical_id))
