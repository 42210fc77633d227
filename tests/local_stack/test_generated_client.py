"""A client generated from infra/openapi.json by a tool no one here wrote (openapi-python-client, pinned in
requirements-dev.txt) runs the README's flow against `make run`'s stack: create a subject, add an interaction, look
it up, export and poll to completed, erase and poll, then 410.

The generator must not warn: a warning means a part of the document it could not turn into code (a response
dropped, a model skipped), which an integrator would meet as a missing method or an untyped answer."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.local_stack.conftest import ROOT, RunningStack
from tests.local_stack.test_ledger_flow import new_tenant

pytestmark = pytest.mark.local_stack

PACKAGE = "chatsphere_generated_client"
# A guard against a job that never finishes, not a performance assertion: each finishes in about a second here.
POLL_GUARD_S = 60
# What the generator prints for a part of the document it could not use (it still exits 0 then).
WARNING_MARKS = ("warning", "unable to", "could not", "cannot", "skipping", "not in path")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package, generated from the committed document with the generator's defaults."""
    out = tmp_path_factory.mktemp("client")
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(ROOT / "infra" / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(out / PACKAGE),
        ],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},  # its ruff post-hooks
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not [line for line in output.lower().splitlines() if any(m in line for m in WARNING_MARKS)], output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _api(package: ModuleType, path: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{path}")


def _record_id(location: str) -> str:
    """The request id at the end of a 202's Location (path-absolute, under the stage's base path)."""
    return urllib.parse.urlsplit(location).path.rsplit("/", 1)[1]


def _poll(package: ModuleType, client: Any, request_id: str) -> Any:
    get_request = _api(package, "api.rights_requests.get_request")
    guard = time.monotonic() + POLL_GUARD_S
    while True:
        record = get_request.sync(request_id, client=client)
        assert record is not None and not isinstance(record, _api(package, "models").Problem), record
        if record.status.value in ("completed", "rejected", "failed") or time.monotonic() > guard:
            return record
        time.sleep(0.2)


def test_the_readme_flow_through_a_generated_client(stack: RunningStack, generated: ModuleType) -> None:
    models = _api(generated, "models")
    client = generated.AuthenticatedClient(
        base_url=stack.api_url, token=new_tenant(stack)[1], raise_on_unexpected_status=True
    )
    subject = "cust-gen-001"

    put = _api(generated, "api.subjects.put_subject").sync_detailed(
        subject, client=client, body=models.SubjectIn(name="Ada Lovelace", email="ada@example.com")
    )
    assert put.status_code == 201, put.content
    assert isinstance(put.parsed, models.Subject) and put.parsed.subject_id == subject
    assert put.headers["ETag"]  # a generated client keeps the headers in sync_detailed's answer

    created = _api(generated, "api.interactions.create_interaction").sync_detailed(
        subject,
        client=client,
        body=models.InteractionIn(
            conversation_id="conv-1", role=models.InteractionInRole.CUSTOMER, text="Where is my order?"
        ),
        idempotency_key="gen-1",  # a retry-safe write, as the README advises
    )
    assert created.status_code == 201 and isinstance(created.parsed, models.InteractionCreated), created.content

    found = _api(generated, "api.subjects.lookup_subjects").sync(
        client=client, body=models.LookupIn(email="ada@example.com")
    )
    assert isinstance(found, models.LookupResult) and found.subject_ids == [subject]

    export = _api(generated, "api.rights_requests.request_export").sync_detailed(
        subject, client=client, body=models.ExportIn()
    )
    assert export.status_code == 202, export.content
    assert export.parsed.request_id == _record_id(export.headers["Location"])
    done = _poll(generated, client, export.parsed.request_id)
    assert done.status.value == "completed", done.to_dict()
    # the record is typed by its `type` (a discriminated union): an export's result has its download_url
    assert isinstance(done, models.ExportRecord) and isinstance(done.result, models.ExportResultView), done
    assert isinstance(done.result.download_url, str) and done.result.download_url.startswith("http")
    # and the subject's records, listed by its id, are the same typed records
    listed = _api(generated, "api.rights_requests.list_requests").sync(client=client, subject_id=subject)
    assert isinstance(listed, models.RequestPage), listed
    assert [type(r).__name__ for r in listed.items] == ["ExportRecord"]
    assert listed.items[0].result.download_url.startswith("http")

    erase = _api(generated, "api.subjects.delete_subject").sync_detailed(subject, client=client)
    assert erase.status_code == 202, erase.content
    erased = _poll(generated, client, erase.parsed.request_id)
    assert erased.status.value == "completed", erased.to_dict()
    assert isinstance(erased, models.DeletionRecord) and isinstance(erased.result, models.DeletionReceipt), erased

    gone = _api(generated, "api.subjects.get_subject").sync_detailed(subject, client=client)
    assert gone.status_code == 410
    assert isinstance(gone.parsed, models.Problem) and gone.parsed.request_id == erase.parsed.request_id
