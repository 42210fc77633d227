"""The stack `make run` starts, driven over HTTP like a developer would.

One stack serves the whole package (the end-to-end module and the fuzz test): it starts in a few seconds but
there is no need to pay that twice. It lives in a temporary CHATSPHERE_LOCAL_DIR on free ports, so a
developer's own `make run` is left alone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A guard against a hung start, not a performance assertion: the stack is up in seconds.
START_GUARD_S = 180
STOP_GUARD_S = 60

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Answer:
    status: int
    headers: Message
    body: Any  # parsed JSON, else the raw bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0]


def http(
    method: str,
    url: str,
    *,
    key: str | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    if json_body is not None:
        data = json.dumps(json_body).encode()
        sent.setdefault("Content-Type", "application/json")
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("only the local stack is called")
    request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310 (checked above)
    try:
        with _OPENER.open(request, timeout=60) as response:
            status, got, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, got, raw = error.code, error.headers, error.read()
    try:
        return Answer(status, got, json.loads(raw) if raw else None)
    except ValueError:
        return Answer(status, got, raw)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    home: Path  # the working directory for commands that look for .local/stack.json
    local_dir: Path
    log_path: Path
    env: dict[str, str]
    state: dict[str, Any]

    @property
    def api_url(self) -> str:
        return str(self.state["api_url"])

    def key(self, tenant: int = 0) -> str:
        return str(self.state["tenants"][tenant]["api_key"])

    def tenant_id(self, tenant: int = 0) -> str:
        return str(self.state["tenants"][tenant]["tenant_id"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def functions_log(self) -> str:
        """What the functions printed (Powertools' JSON logs and metrics): make run writes it here, not to its log."""
        path = self.local_dir / "functions.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the whole process group (make and the stack)."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=STOP_GUARD_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise


def make_invoke(stack: RunningStack, function: str, event_file: str | Path) -> Any:
    """`make -s invoke FN=<function> EVENT=<file>` against the stack, from the repository root: its JSON result."""
    done = subprocess.run(
        ["make", "-s", "invoke", f"FN={function}", f"EVENT={event_file}"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start_stack(home: Path) -> RunningStack:
    """`make run` from the repository root, with its state in home/.local and the log in home/run.log."""
    local_dir = home / ".local"
    env = {
        **os.environ,
        "PORT": str(free_port()),
        "MOTO_PORT": str(free_port()),
        "CHATSPHERE_LOCAL_DIR": str(local_dir),
        # Erasures here remove 3 items (object versions, records) per step, then continue through DeletionQueue:
        # a subject of ten interactions spans several chunks and continuations, which the deployed chunk (1000)
        # would need thousands of interactions posted over HTTP to show. No other flow reads it.
        "DELETION_CHUNK": "3",
        # Likewise a retention run decides 3 items per chunk, so a few expired items take several continuations.
        "RETENTION_CHUNK": "3",
        # No schedule fires by itself: a test that wants a run makes it, so none lands in the middle of another.
        "CHATSPHERE_SCHEDULE_SECONDS": "0",
    }
    log_path = home / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    state_file = local_dir / "stack.json"
    guard = time.monotonic() + START_GUARD_S
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > guard:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            pytest.fail(f"make run did not start (exit {process.returncode}):\n{log_path.read_text()}")
        time.sleep(0.1)
    return RunningStack(process, home, local_dir, log_path, env, json.loads(state_file.read_text()))


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    if running.process.poll() is None:
        running.interrupt()
