"""`make invoke FN=<LogicalId> EVENT=<file>`: one handler, one event, against the running local stack.

The no-Docker twin of `sam local invoke <LogicalId> -e <file>`: the function's environment and the AWS endpoint
come from the stack's state file (written by `make run`); the result is printed as JSON. EVENT=- reads stdin."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.local import Functions, FunctionSpec, stack_file, use_local_aws

USAGE = "usage: python -m infra.local.invoke <LogicalId> <event file, or - for stdin>"


def _running(endpoint_url: str) -> bool:
    parts = urlsplit(endpoint_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=2):
            return True
    except OSError:
        return False


def _read_event(source: str) -> Any:
    return json.loads(sys.stdin.read() if source == "-" else Path(source).read_text())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    logical_id, source = argv
    path = stack_file()
    try:
        stack = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"invoke: no local stack ({path} is missing); start one with `make run`", file=sys.stderr)
        return 2
    if not _running(stack["aws_endpoint_url"]):
        print(f"invoke: the stack in {path} does not answer; start one with `make run`", file=sys.stderr)
        return 2
    functions = stack["functions"]
    if logical_id not in functions:
        print(f"invoke: no function {logical_id!r}; the stack has {', '.join(sorted(functions))}", file=sys.stderr)
        return 2
    try:
        event = _read_event(source)
    except (OSError, ValueError) as exc:
        print(f"invoke: cannot read the event from {source}: {exc}", file=sys.stderr)
        return 2
    use_local_aws(stack["aws_endpoint_url"], stack["aws_env"])
    function = functions[logical_id]
    os.environ.update(function["environment"])
    spec = FunctionSpec(logical_id, function["handler"], function["memory_mb"], function["timeout_s"])
    try:
        # The function's logs (Powertools writes them to stdout) go to stderr, as sam local invoke does,
        # so that stdout is the result alone.
        with contextlib.redirect_stdout(sys.stderr):
            result = Functions({logical_id: spec}).invoke(logical_id, event)
    except Exception as exc:
        traceback.print_exc()
        # What Lambda reports for an unhandled error.
        print(json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}))
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
