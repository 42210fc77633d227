"""An export's index.html in a real browser: a subject exported through the API and the Export job against moto, its
package opened, and index.html rendered by headless Chromium from disk. The rendered text holds the profile's values
and every message, hostile text stays text, and the page asks the network for nothing (Chromium's own net log says
so, and a control page that does load an image proves the log would show it).

Chromium is required, never skipped: `make test` installs it first (the Makefile's .chromium step)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

from tests.integration.helpers import call, new_tenant
from tests.integration.queues import drain
from tests.page_check import assert_self_contained

PROFILE: dict[str, Any] = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+14155550100",
    "contact": {"signal": "@ada"},
}
TEXTS = ["Hello, I need my invoice", "Réponse: voilà ✓", '<script>document.title="owned"</script> & <b>bold</b>']
TEXTS += ["a long one " * 4000]  # over 32 KiB: its text lives in the bucket, read on both passes
CONTROLLER = {"name": "Acme Shop Ltd", "contact": "privacy@acme.example", "dpo_contact": "dpo@acme.example"}
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: `make test` installs it (the .chromium step), or apt-get install chromium"
    return found


class _Text(HTMLParser):
    """The text a browser shows of a DOM: every text node outside <head>, <script> and <style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("head", "script", "style", "title")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("head", "script", "style", "title")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def render(page: Path, work: Path) -> tuple[str, str, list[str]]:
    """Chromium's DOM of the page after it loaded, its visible text, and the URLs the page itself asked the network
    for (requests isolated under file://, not Chromium's own background ones)."""
    net_log = work / f"{page.stem}.netlog.json"
    profile = tempfile.mkdtemp(dir=work)
    run = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--log-net-log={net_log}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0 and run.stdout.strip(), run.stderr[-2000:]
    text = _Text()
    text.feed(run.stdout)
    log = json.loads(net_log.read_text())
    types = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    asked = sorted(
        {
            event["params"]["url"]
            for event in log["events"]
            if types.get(event["type"]) == "URL_REQUEST_START_JOB"
            and "file://" in event["params"].get("network_isolation_key", "")
            and not event["params"]["url"].startswith("file:")
        }
    )
    return run.stdout, " ".join(" ".join(text.parts).split()), asked


def fetch(url: str) -> bytes:
    parsed = urlparse(url)
    body: bytes = (
        boto3.client("s3").get_object(Bucket=parsed.netloc.split(".")[0], Key=parsed.path.lstrip("/"))["Body"].read()
    )
    return body


def test_index_html_renders_offline_with_the_profile_and_every_message(aws: Any, tmp_path: Path) -> None:
    """One format: index.html is the same page in both (tests/unit/test_export_logic.py checks each package's)."""
    tenant = new_tenant("Acme")[0]
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"controller": CONTROLLER}).status == 200
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PROFILE).status == 201
    for text in TEXTS:
        message = {"conversation_id": "c1", "role": "customer", "text": text, "channel": "web"}
        assert call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=message).status == 201
    exported = call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"})
    drain(aws, "ExportQueue")
    record = call("GET", f"/v1/requests/{exported.body['request_id']}", tenant=tenant).body
    assert record["status"] == "completed", record
    with zipfile.ZipFile(io.BytesIO(fetch(record["result"]["download_url"]))) as zf:
        page = zf.read("index.html")
    assert "index.html" in record["result"]["files"]
    assert_self_contained(page.decode())
    (tmp_path / "index.html").write_bytes(page)

    started = time.monotonic()
    dom, text, asked = render(tmp_path / "index.html", tmp_path)
    took = time.monotonic() - started
    print(f"index.html ({len(page)} bytes) rendered by Chromium in {took:.2f} s")
    assert asked == []
    for value in (PROFILE["name"], PROFILE["email"], PROFILE["phone"], "@ada", *CONTROLLER.values()):
        assert value in text, value
    for written in TEXTS:
        assert " ".join(written.split()) in text, written[:40]
    assert "<script>document" not in dom and "owned" not in dom.split("<body>")[0]  # text, never run

    # the control: a page that loads an image is caught by the same log
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><p>x</p><img src="http://127.0.0.1:9/pixel.png"></body></html>')
    assert render(control, tmp_path)[2] == ["http://127.0.0.1:9/pixel.png"]
