"""Benchmarks that print figures (never timed asserts): `make bench`.

- AWS calls per API operation, against moto, beside the lower bound the design allows;
- peak memory of an export at 1k and 10k interactions (in-memory ports), and their ratio;
- import time of each handler module as a ratio to `import boto3`, in fresh interpreters."""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

import tests.conftest  # noqa: F401 - the test environment (credentials, region) before boto3 loads

# Each operation's minimum number of AWS calls, and why.
LOWER_BOUNDS: dict[str, tuple[int, str]] = {
    "PUT subject (new)": (
        3,
        "KMS GenerateDataKey, key PutItem, TransactWriteItems (ours also reads key and profile first)",
    ),
    "PUT subject (replace)": (4, "key GetItem, KMS Decrypt, profile GetItem (version), TransactWriteItems"),
    "GET subject": (3, "profile GetItem, key GetItem, KMS Decrypt"),
    "POST interaction (inline)": (5, "profile GetItem, key GetItem, KMS Decrypt, policy Query, TransactWriteItems"),
    "POST interaction (S3 text)": (6, "as inline, plus S3 PutObject"),
    "GET interactions (page of 50)": (
        5,
        "profile GetItem, key GetItem, KMS Decrypt, one Query, S3 GetObject per text over 32 KiB (one here)",
    ),
    "POST lookup": (
        2,
        "one index Query (tenant secret cached per container), a key GetItem per subject found (one here)",
    ),
    "POST export (request)": (
        5,
        "settings GetItem, profile GetItem, tombstone GetItem (a restored profile), record PutItem, SQS SendMessage",
    ),
}


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Counts every AWS API call any botocore client makes."""
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: Any, operation: str, params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
        return original(self, operation, params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def aws_calls() -> list[tuple[str, int, int, str]]:
    """(operation, calls made, lower bound, calls by API) for each operation, on a warm container."""
    import os

    from moto import mock_aws

    from chatsphere.dal import clients
    from infra.provision import function_environment, provision
    from tests.integration.helpers import call

    rows = []
    with mock_aws():
        clients.reset()
        resolver = provision()
        os.environ.update(function_environment(resolver, "IntakeFunction"))
        from chatsphere.bootstrap import adapters
        from chatsphere.config import get_config
        from chatsphere.logic.tenants import create_tenant

        get_config.cache_clear()
        adapters.cache_clear()
        tenant = create_tenant(adapters().tenants, adapters().kms, "Bench")[0].tenant_id
        body = {"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"}
        call("PUT", "/v1/subjects/warm", tenant=tenant, body=body)  # warms the tenant secret cache
        say = {"conversation_id": "c", "role": "customer"}
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("PUT subject (new)", lambda: call("PUT", "/v1/subjects/u-1", tenant=tenant, body=body)),
            ("PUT subject (replace)", lambda: call("PUT", "/v1/subjects/u-1", tenant=tenant, body=body)),
            ("GET subject", lambda: call("GET", "/v1/subjects/u-1", tenant=tenant)),
            (
                "POST interaction (inline)",
                lambda: call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body={**say, "text": "hi"}),
            ),
            (
                "POST interaction (S3 text)",
                lambda: call(
                    "POST", "/v1/subjects/u-1/interactions", tenant=tenant, body={**say, "text": "x" * 40_000}
                ),
            ),
            ("GET interactions (page of 50)", lambda: call("GET", "/v1/subjects/u-1/interactions", tenant=tenant)),
            (
                "POST lookup",
                lambda: call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": "ada@example.com"}),
            ),
            (
                "POST export (request)",
                lambda: call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}),
            ),
        ]
        for name, step in steps:
            with counting() as calls, redirect_stdout(io.StringIO()):  # the handlers' metric lines
                reply = step()
            assert reply.status < 300, (name, reply.body)
            rows.append(
                (
                    name,
                    sum(calls.values()),
                    LOWER_BOUNDS[name][0],
                    ", ".join(f"{k}x{v}" for k, v in sorted(calls.items())),
                )
            )
        clients.reset()
    return rows


def import_ratio(module: str, runs: int = 7) -> tuple[float, float, float]:
    """Median seconds to import `module` and boto3 in fresh interpreters, and their ratio.

    The interpreters see Lambda's environment variables, so the X-Ray SDK takes its Lambda path
    (outside Lambda it builds a sampling client at import, which a cold start never pays)."""
    import os

    env = {**os.environ, "LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "bench"}

    def timed(stmt: str) -> float:
        code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip().splitlines()[-1])

    ours = statistics.median(timed(f"import {module}") for _ in range(runs))
    base = statistics.median(timed("import boto3") for _ in range(runs))
    return ours, base, ours / base


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    print("AWS calls per operation (warm container, moto)")
    print(f"  {'operation':32} {'calls':>5} {'bound':>5}  by API")
    for name, made, bound, detail in aws_calls():
        print(f"  {name:32} {made:>5} {bound:>5}  {detail}")
    print()
    print("Export peak memory (in-memory ports, tracemalloc; a real S3 upload adds one 8 MiB part buffer)")
    from tests.unit.export_memory import export_peak

    small, large = export_peak(1_000), export_peak(10_000)
    print(f"  1k interactions:  {small / 1024:8.0f} KiB")
    print(f"  10k interactions: {large / 1024:8.0f} KiB")
    print(f"  ratio 10k/1k:     {large / small:8.2f}  (must stay within 1.5)")
    print()
    print("Import time, ratio to `import boto3` (median of 7 fresh interpreters)")
    from infra import template

    authorizer = template.functions()[template.authorizer()[0]].module
    for fn in template.functions().values():
        ours, base, ratio = import_ratio(fn.module)
        # The authorizer runs before every cold request: its ratio is the one with a goal.
        goal = "  (authorizer: goal 1.5 or less)" if fn.module == authorizer else ""
        print(f"  {fn.module:36} {ours * 1000:7.0f} ms  boto3 {base * 1000:5.0f} ms  ratio {ratio:5.2f}{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
