"""What each function's handler module must not import at module level: a cold start pays for every module the
import loads, so each function loads only what its own requests need (issue 15: within 2x `import boto3`, the
authorizer within 1.5x). It generalises tests/unit/test_authorizer_imports.py, which keeps the authorizer's own
set and reasons.

A guard on what is imported (sys.modules of a fresh interpreter), not on how long it takes: `make bench` prints the
times. The interpreter sees Lambda's environment, as the benchmark's does. The functions are template.yaml's
(infra.template.functions()); each must have its entry below, so a new function gets one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from infra import template
from tests.unit.test_authorizer_imports import FORBIDDEN as AUTHORIZER_FORBIDDEN

# No function's cold start loads these: test and tooling code, the console command, and what the Tracer would pull
# in if it patched every library the X-Ray SDK knows (it patches botocore alone: observability.py).
EVERYWHERE = ("moto", "pytest", "infra", "tests", "chatsphere.cli", "requests")
# Powertools' resolver and request-body validation, and its idempotency utility (with its DynamoDB persistence):
# only the API functions route, and only Intake takes an Idempotency-Key.
RESOLVER = "aws_lambda_powertools.event_handler"
IDEMPOTENCY = "aws_lambda_powertools.utilities.idempotency"
BATCH = "aws_lambda_powertools.utilities.batch"

# Each of these, or any module under it, is a cost the function's handler must not pay at import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # It runs before every cold request: tests/unit/test_authorizer_imports.py names its set, and its reasons.
    "AuthorizerFunction": (*AUTHORIZER_FORBIDDEN, IDEMPOTENCY),
    # Powertools' idempotency loads on the first request that sends an Idempotency-Key (logic/intake.py).
    "IntakeFunction": (
        BATCH,
        IDEMPOTENCY,
        "chatsphere.logic.export",
        "chatsphere.logic.retention",
        "chatsphere.logic.analytics",
    ),
    # Its routes read records, settings, policies, runs and aggregates; the export request's logic (zip, CSV, the
    # codec and cryptography) and the retention pass load on their own route's first call.
    "RightsFunction": (
        IDEMPOTENCY,
        BATCH,
        "cryptography",
        "chatsphere.logic.crypto",
        "chatsphere.logic.export",
        "chatsphere.logic.retention",
        "chatsphere.logic.deletion",
        "chatsphere.logic.intake",
    ),
    # The sequencer and signer: no routes, no verification (cryptography), no job's logic.
    "LedgerFunction": (
        RESOLVER,
        IDEMPOTENCY,
        "cryptography",
        "chatsphere.logic.export",
        "chatsphere.logic.deletion",
        "chatsphere.logic.retention",
        "chatsphere.logic.intake",
    ),
    "ExportFunction": (
        RESOLVER,
        IDEMPOTENCY,
        "chatsphere.logic.deletion",
        "chatsphere.logic.retention",
        "chatsphere.logic.intake",
    ),
    "DeletionFunction": (
        RESOLVER,
        IDEMPOTENCY,
        "chatsphere.logic.export",
        "chatsphere.logic.retention",
        "chatsphere.logic.intake",
    ),
    "RetentionFunction": (
        RESOLVER,
        IDEMPOTENCY,
        "chatsphere.logic.export",
        "chatsphere.logic.intake",
        "chatsphere.logic.analytics",
    ),
    # Anonymous counts: no personal value is decrypted, so no cryptography.
    "AnalyticsFunction": (
        RESOLVER,
        IDEMPOTENCY,
        BATCH,
        "cryptography",
        "chatsphere.logic.crypto",
        "chatsphere.logic.deletion",
        "chatsphere.logic.export",
        "chatsphere.logic.intake",
        "chatsphere.logic.retention",
    ),
    # It counts open requests and re-sends job messages: the jobs' own code (and cryptography) is not its to load.
    "MonitorFunction": (
        RESOLVER,
        IDEMPOTENCY,
        BATCH,
        "aws_lambda_powertools.utilities.parser",
        "cryptography",
        "chatsphere.logic.export",
        "chatsphere.logic.deletion",
        "chatsphere.logic.intake",
        "chatsphere.logic.retention",
        "chatsphere.logic.analytics",
    ),
}


def imported_by(module: str) -> set[str]:
    """sys.modules after `import module` alone, in a fresh interpreter with Lambda's environment."""
    env = {**os.environ, "LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "imports"}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)  # not set in Lambda
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def forbidden_in(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules for f in forbidden if m == f or m.startswith(f + "."))


def test_every_function_of_the_template_has_its_forbidden_set() -> None:
    assert set(FORBIDDEN) == set(template.functions())
    logical_id, _ = template.authorizer()
    assert "pydantic" in FORBIDDEN[logical_id]


@pytest.mark.parametrize("logical_id", sorted(template.functions()))
def test_a_handler_module_imports_nothing_its_function_never_needs_at_a_cold_start(logical_id: str) -> None:
    module = template.functions()[logical_id].module
    modules = imported_by(module)
    assert module in modules
    assert forbidden_in(modules, EVERYWHERE + FORBIDDEN.get(logical_id, ())) == []


def test_the_guard_sees_what_a_full_handler_imports() -> None:
    # The same probe finds, in an API handler, the modules the authorizer must do without: the guard is not vacuous.
    found = forbidden_in(imported_by(template.functions()["IntakeFunction"].module), FORBIDDEN["AuthorizerFunction"])
    assert "pydantic" in found
    assert "aws_lambda_powertools.event_handler" in found
    assert "chatsphere.models" in found
