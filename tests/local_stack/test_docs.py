"""What `make run` serves besides the API, and what it shows: the reference at /docs (rendered by a real headless
browser), /openapi.json, /, the problem for a path of no route, and one terminal line per request."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local_stack.conftest import ROOT, RunningStack, http

pytestmark = pytest.mark.local_stack

# Guards against a hung tool, not performance assertions.
APT_GUARD_S = 1800
BROWSER_GUARD_S = 180
LOG_GUARD_S = 10

OPENAPI = ROOT / "infra" / "openapi.json"
# One operation as Swagger UI renders it: its method, its path template, its operationId (displayOperationId).
_OPERATION = re.compile(
    r'opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)".*?opblock-summary-operation-id">([^<]+)<', re.S
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (the tests run as root on Debian)."""
    found = shutil.which("chromium")
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail("chromium is not installed and there is no apt-get to install it: install Debian's chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update"], ["install", "-y", "chromium"]):
        # Another apt run (a parallel session) may hold the lock: wait for it rather than fail.
        done = subprocess.run(
            [apt, "-o", "DPkg::Lock::Timeout=600", *args], capture_output=True, text=True, env=env, timeout=APT_GUARD_S
        )
        if done.returncode != 0:
            pytest.fail(f"apt-get {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr}")
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("apt-get installed chromium, but it is not on PATH")
    return found


def rendered_dom(chromium: str, url: str, profile: Path) -> str:
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",  # its own profile: parallel runs do not share one
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_GUARD_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_reference_page_renders_every_operation_in_a_headless_browser(
    stack: RunningStack, chromium: str, tmp_path: Path
) -> None:
    document = json.loads(OPENAPI.read_text())
    expected = {
        (method.upper(), path, operation["operationId"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }

    dom = rendered_dom(chromium, f"{stack.api_url}/docs", tmp_path / "profile")

    assert set(_OPERATION.findall(dom)) == expected, dom[-3000:]
    assert document["info"]["title"] in dom
    # Swagger UI fetched its files and the document from the stack itself (the page's policy allows no other origin).
    requested = stack.log()
    for served in ("GET /docs/assets/swagger-ui-bundle.js 200", "GET /docs/init.js 200", "GET /openapi.json 200"):
        assert served in requested


def test_openapi_json_is_the_committed_document_without_a_key(stack: RunningStack) -> None:
    answer = http("GET", f"{stack.api_url}/openapi.json")

    assert (answer.status, answer.content_type) == (200, "application/json")
    assert answer.body == json.loads(OPENAPI.read_text())


def test_the_root_points_to_the_reference(stack: RunningStack) -> None:
    answer = http("GET", f"{stack.api_url}/")

    assert answer.status == 200
    assert (answer.body["docs"], answer.body["openapi"]) == ("/docs", "/openapi.json")
    assert http("GET", stack.api_url + answer.body["docs"]).status == 200


def test_a_path_of_no_route_is_the_apis_no_such_route_problem(stack: RunningStack) -> None:
    answer = http("GET", f"{stack.api_url}/v2/subjects/u-1", key=stack.key(0))

    assert (answer.status, answer.content_type) == (404, "application/problem+json")
    assert answer.body == {
        "type": "https://chatsphere.dev/problems/no-such-route",
        "title": "No such route",
        "status": 404,
        "detail": "No route of this API matches this method and path.",
        "instance": answer.headers["x-amzn-RequestId"],
    }


def _new_lines(read: Callable[[], str], start: int, pattern: str) -> list[str]:
    """Lines after offset `start` that match `pattern` whole, waited for: the gateway logs after it replies."""
    guard = time.monotonic() + LOG_GUARD_S
    while True:
        found = [line for line in read()[start:].splitlines() if re.fullmatch(pattern, line)]
        if found or time.monotonic() > guard:
            return found
        time.sleep(0.1)


def test_the_terminal_shows_one_line_per_request_and_the_functions_log_holds_the_json(stack: RunningStack) -> None:
    subject = f"docs-{uuid.uuid4().hex[:12]}"
    run_before, functions_before = len(stack.log()), len(stack.functions_log())

    answer = http(
        "PUT",
        f"{stack.api_url}/v1/subjects/{subject}",
        key=stack.key(0),
        json_body={"name": "Dorothea Docs", "email": "dorothea@example.com"},
    )

    assert answer.status == 201, answer.body
    line = r"\d\d:\d\d:\d\d PUT /v1/subjects/\{subject_id\} 201 \d+ms"
    assert len(_new_lines(stack.log, run_before, line)) == 1
    terminal = stack.log()[run_before:]
    assert subject not in terminal and "Dorothea" not in terminal and "example.com" not in terminal, terminal
    assert not [text for text in terminal.splitlines() if text.lstrip().startswith("{")], terminal  # no JSON log
    logged = [json.loads(text) for text in stack.functions_log()[functions_before:].splitlines()]
    handled = [entry for entry in logged if entry.get("message") == "handled" and "route" in entry]
    assert [(e["method"], e["route"], e["status"]) for e in handled] == [("PUT", "/v1/subjects/{subject_id}", 201)]
    assert any("_aws" in entry for entry in logged)  # the metrics (EMF) go there too
    functions = stack.functions_log()[functions_before:]
    assert subject not in functions and "Dorothea" not in functions and "example.com" not in functions


def _console_block(readme: str) -> list[str]:
    """The README's console lines: each `.venv/bin/chatsphere` line of its sh blocks, its comment removed."""
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith(".venv/bin/chatsphere ")]


def test_the_readmes_console_lines_run_as_printed_from_the_repository_root(stack: RunningStack) -> None:
    lines = _console_block((ROOT / "README.md").read_text())
    assert len(lines) >= 5, "the README's console block changed shape"
    assert stack.tenant_id(0) in " ".join(lines)  # the lines name the demo tenant that `make run` makes
    for line in lines:
        done = subprocess.run(
            line.split(), cwd=ROOT, env=stack.env, capture_output=True, text=True, check=False, timeout=300
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert done.stdout.strip(), line
