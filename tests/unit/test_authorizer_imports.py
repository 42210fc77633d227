"""The TOKEN authorizer runs before every cold request: its module must not pull in what checking a key never needs.

A guard on what is imported (sys.modules of a fresh interpreter), not on how long it takes: `make bench` prints
the time. The interpreter sees Lambda's environment, as the benchmark's does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from infra import template

# Each of these, or any module under it, is a cost the authorizer must not pay.
FORBIDDEN = (
    "pydantic",
    "pydantic_core",
    "cryptography",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_xray_sdk",  # the Tracer
    "chatsphere.config",  # the whole settings model
    "chatsphere.models",
)


def imported_by(module: str, then: str = "") -> set[str]:
    """sys.modules after `import module` alone (and the statement `then`), in a fresh interpreter with Lambda's
    environment."""
    env = {**os.environ, "LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "imports"}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)  # not set in Lambda
    env["TENANTS_TABLE"] = "imports-tenants"
    code = f"import json, sys; import {module}; {then or 'pass'}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for f in FORBIDDEN if m == f or m.startswith(f + "."))


def authorizer_module() -> str:
    logical_id, _ = template.authorizer()
    return template.functions()[logical_id].module


def test_the_authorizer_imports_no_pydantic_cryptography_resolver_or_tracer() -> None:
    modules = imported_by(authorizer_module())
    assert authorizer_module() in modules
    assert forbidden_in(modules) == []


def test_the_authorizer_s_first_call_builds_its_reader_without_models() -> None:
    # Its first invocation builds the key reader (bootstrap.api_key_reader imports dal/api_keys.py then): that
    # import is paid on every cold start too, so it is held to the same list.
    modules = imported_by(authorizer_module(), then="import chatsphere.bootstrap as b; b.api_key_reader()")
    assert "chatsphere.dal.api_keys" in modules
    assert forbidden_in(modules) == []


def test_the_guard_sees_what_a_full_handler_imports() -> None:
    # The same probe on an API handler finds the modules the authorizer must do without: the guard is not vacuous.
    found = forbidden_in(imported_by("chatsphere.handlers.intake"))
    assert "pydantic" in found
    assert "aws_lambda_powertools.event_handler" in found
