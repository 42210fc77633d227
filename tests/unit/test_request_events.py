"""RightsRequestStatusChanged: every status a rights request record takes is published once its write succeeded,
with ids, type, status and time only; and a failed job's record says why (`result.error`), logged once."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from chatsphere.errors import JobError
from chatsphere.logic import deletion, export, intake, subject_rights
from chatsphere.logic.requests import STATUS_CHANGED
from chatsphere.models.common import iso
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.export import ExportIn, ExportJob
from chatsphere.models.items import InteractionItem
from chatsphere.models.refs import InteractionPosition, ItemRef
from chatsphere.models.requests import Refusal, RequestError, RequestItem
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import InteractionIn, LegalHoldIn, SubjectIn, SubjectPatch
from tests.unit.fakes import FakeBlobStore, FakeEventPublisher, FakeSubjectStore, World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
DESTINATION = "s3://other-controller/imports/"
EMAIL = "ada@example.org"
KEYS = {"tenant_id", "request_id", "type", "status", "time"}


@pytest.fixture
def tenant(world: World) -> str:
    tenant_id = world.new_tenant("Acme")[0]
    world.tenants.put_settings(tenant_id, TenantSettings(portability_destinations=[DESTINATION]), "x")
    return tenant_id


@pytest.fixture
def subject(world: World, tenant: str) -> str:
    body = SubjectIn(name="Ada Lovelace", email=EMAIL)
    w = world
    intake.put_subject(w.intake, tenant, "u-7", body, NOW)
    message = InteractionIn(conversation_id="c-1", role="customer", text="hello", occurred_at=NOW, channel="web")
    intake.add_interaction(world.intake, tenant, "u-7", message, NOW)
    return "u-7"


def statuses(world: World, request_id: str) -> list[str]:
    return [d["status"] for d in world.events.of_type(STATUS_CHANGED) if d["request_id"] == request_id]


def request_export(world: World, tenant: str, subject: str, deliver_to: str | None = None) -> ExportJob:
    export.request_export(world.export, tenant, subject, ExportIn(format="json", deliver_to=deliver_to), NOW)
    return world.export_jobs.sent[-1]


def run_export(world: World, job: ExportJob, attempt: int = 1) -> RequestItem | None:
    return export.run_export(world.export, job, LATER, attempt=attempt)


def deletion_ports(world: World) -> deletion.DeletionPorts:
    w = world
    return w.deletion


def request_deletion(world: World, tenant: str, subject: str) -> DeletionJob:
    w = world
    deletion.request_deletion(w.deletion, tenant, subject, NOW)
    return w.deletion_jobs.sent[-1]


def error_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The ERROR lines logged since the last call, as their message and extra keys."""
    lines = [{"message": r.getMessage(), **r.__dict__} for r in caplog.records if r.levelno == logging.ERROR]
    caplog.clear()
    return lines


# ------------------------------------------------------------------ events
def test_an_export_publishes_received_in_progress_and_completed_with_ids_only(
    world: World, tenant: str, subject: str
) -> None:
    job = request_export(world, tenant, subject)
    assert statuses(world, job.request_id) == ["received"]  # published by the request, before the job runs
    run_export(world, job)
    assert statuses(world, job.request_id) == ["received", "in_progress", "completed"]
    for detail in world.events.of_type(STATUS_CHANGED):
        assert set(detail) == KEYS
        assert (detail["tenant_id"], detail["type"]) == (tenant, "export")
        assert subject not in json.dumps(detail) and EMAIL not in json.dumps(detail)
    assert [d["time"] for d in world.events.of_type(STATUS_CHANGED)] == [iso(NOW), iso(LATER), iso(LATER)]


def test_every_subject_right_publishes_its_completed_record(world: World, tenant: str, subject: str) -> None:
    w = world
    patch = SubjectPatch.model_validate({"name": "Ada King"})
    subject_rights.correct_subject(w.subject_rights, tenant, subject, patch, NOW)
    subject_rights.set_objection(w.subject_rights, tenant, subject, "analytics", NOW, on=True)
    subject_rights.set_deactivated(w.subject_rights, tenant, subject, NOW, on=True)
    hold = LegalHoldIn.model_validate({"reason": "audit", "categories": ["profile"]})
    subject_rights.place_hold(w.subject_rights, tenant, subject, hold, NOW)
    subject_rights.lift_hold(w.subject_rights, tenant, subject, NOW)
    published = w.events.of_type(STATUS_CHANGED)
    records = w.subjects.records  # the records written in the profiles' transactions
    assert [(d["request_id"], d["type"], d["status"]) for d in published] == [
        (r.request_id, r.type, "completed") for r in records
    ]
    assert [r.type for r in records] == ["correction", "objection", "deactivation", "legal_hold", "legal_hold"]


def test_a_deletion_publishes_received_in_progress_and_completed_without_the_subject(
    world: World, tenant: str, subject: str
) -> None:
    job = request_deletion(world, tenant, subject)
    assert statuses(world, job.request_id) == ["received"]
    while deletion.run_deletion(deletion_ports(world), job, LATER) == "continue":
        pass
    assert statuses(world, job.request_id) == ["received", "in_progress", "completed"]  # steps change no status
    for detail in world.events.of_type(STATUS_CHANGED):
        assert set(detail) == KEYS and subject not in json.dumps(detail)


def test_an_erasure_publishes_the_rejection_of_the_subjects_open_export(
    world: World, tenant: str, subject: str
) -> None:
    export_job = request_export(world, tenant, subject)
    job = request_deletion(world, tenant, subject)
    while deletion.run_deletion(deletion_ports(world), job, LATER) == "continue":
        pass
    assert statuses(world, export_job.request_id) == ["received", "rejected"]
    item = world.requests.get(tenant, export_job.request_id)
    assert item is not None and isinstance(item.result, Refusal)
    assert item.result.error == RequestError(code="subject_erased", message="the subject was erased")


def test_a_failed_publish_on_the_api_path_keeps_the_write_and_logs_an_error(
    world: World, tenant: str, subject: str, caplog: pytest.LogCaptureFixture
) -> None:
    world.events.failing = True
    caplog.clear()
    job = request_export(world, tenant, subject)  # answers; the record and the job stand
    assert world.requests.get(tenant, job.request_id) is not None
    [line] = error_lines(caplog)
    assert line["message"] == "status event not published" and line["request_id"] == job.request_id
    assert EMAIL not in str(line) and subject not in str(line)


def test_a_failed_terminal_publish_fails_the_job_and_its_retry_publishes_again(
    world: World, tenant: str, subject: str
) -> None:
    job = request_export(world, tenant, subject)
    world.events.failing = True
    with pytest.raises(RuntimeError, match="EventBridge refused"):
        run_export(world, job)
    item = world.requests.get(tenant, job.request_id)
    assert item is not None and item.status == "completed"  # the publish never undoes the write
    world.events.failing = False
    again = run_export(world, job, attempt=2)  # the queue's retry
    assert again is not None and again.status == "completed"
    assert statuses(world, job.request_id) == ["received", "completed"]  # in_progress was best-effort, and lost


def test_a_deletion_whose_completion_was_not_published_publishes_it_when_retried(
    world: World, tenant: str, subject: str
) -> None:
    job = request_deletion(world, tenant, subject)

    class _RefusesCompleted(FakeEventPublisher):
        def publish(self, detail_type: str, detail: dict[str, str]) -> None:
            self.failing = detail.get("status") == "completed" and not self.published_completed
            self.published_completed = self.published_completed or self.failing
            super().publish(detail_type, detail)

        published_completed = False

    world.events = _RefusesCompleted()
    ports = deletion_ports(world)

    def until_done() -> None:
        while deletion.run_deletion(ports, job, LATER) == "continue":
            pass

    with pytest.raises(RuntimeError, match="EventBridge refused"):
        until_done()
    item = world.requests.get(tenant, job.request_id)
    assert item is not None and item.status == "completed"
    assert statuses(world, job.request_id) == ["in_progress"]
    assert deletion.run_deletion(ports, job, LATER + timedelta(minutes=9)) == "skipped"  # the queue's retry
    assert statuses(world, job.request_id) == ["in_progress", "completed"]
    completed = world.events.of_type(STATUS_CHANGED)[-1]
    assert completed["time"] == item.completed_at  # a retry repeats the event exactly, whenever it runs


# ------------------------------------------------------------------ failures say why
class _BrokenReads(FakeSubjectStore):
    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after: InteractionPosition | None
    ) -> tuple[list[InteractionItem], InteractionPosition | None]:
        raise TimeoutError("read timed out")


def test_the_last_failed_attempt_records_an_internal_error_logs_it_once_and_publishes_failed(
    world: World, tenant: str, subject: str, caplog: pytest.LogCaptureFixture
) -> None:
    job = request_export(world, tenant, subject)
    broken = _BrokenReads()
    broken.__dict__.update(world.subjects.__dict__)
    world.subjects = broken
    caplog.clear()
    with pytest.raises(TimeoutError):
        run_export(world, job, attempt=1)
    assert error_lines(caplog) == []  # a retry is coming: nothing failed yet
    with pytest.raises(TimeoutError):
        run_export(world, job, attempt=export.MAX_ATTEMPTS)
    item = world.requests.get(tenant, job.request_id)
    assert item is not None and item.status == "failed" and isinstance(item.result, Refusal)
    assert item.result.error is not None and item.result.error.code == "internal"
    assert item.result.reason == item.result.error.message  # `reason` kept for older readers
    [line] = error_lines(caplog)
    assert (line["code"], line["request_id"]) == ("internal", job.request_id)
    assert statuses(world, job.request_id)[-1] == "failed"


class _MissingDestination(FakeBlobStore):
    def __init__(self, error: JobError) -> None:
        super().__init__()
        self.error = error

    def deliver(self, key: str, destination_uri: str, filename: str) -> str:
        raise self.error


@pytest.mark.parametrize(
    "code",
    ["destination_not_found", "access_denied", "package_too_large"],
)
def test_a_delivery_no_retry_can_mend_fails_at_once_with_its_code_and_leaves_no_package(
    world: World, tenant: str, subject: str, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    blobs = _MissingDestination(JobError(code, "the delivery cannot be made", permanent=True))
    blobs.__dict__.update({k: v for k, v in world.blobs.__dict__.items()})
    world.blobs = blobs
    job = request_export(world, tenant, subject, deliver_to=DESTINATION)
    caplog.clear()
    failed = run_export(world, job, attempt=1)  # no exception: the message is done with, the record says why
    assert failed is not None and failed.status == "failed" and isinstance(failed.result, Refusal)
    assert failed.result.error == RequestError(code=code, message="the delivery cannot be made")
    assert not any("/exports/" in key and versions for key, versions in world.blobs.versions_of.items())
    [line] = error_lines(caplog)
    assert (line["code"], line["request_id"]) == (code, job.request_id)
    assert statuses(world, job.request_id) == ["received", "in_progress", "failed"]


def test_an_erasure_that_fails_on_its_last_attempt_records_why(
    world: World, tenant: str, subject: str, caplog: pytest.LogCaptureFixture
) -> None:
    job = request_deletion(world, tenant, subject)

    class _Stuck(FakeSubjectStore):
        def delete_items(self, refs: list[ItemRef]) -> None:
            raise TimeoutError("write timed out")

    stuck = _Stuck()
    stuck.__dict__.update(world.subjects.__dict__)
    world.subjects = stuck
    caplog.clear()
    with pytest.raises(TimeoutError):
        deletion.run_deletion(deletion_ports(world), job, LATER, attempt=deletion.MAX_ATTEMPTS)
    item = world.requests.get(tenant, job.request_id)
    assert item is not None and item.status == "failed" and isinstance(item.result, Refusal)
    assert item.result.error is not None and item.result.error.code == "internal"
    assert "failed repeatedly" in item.result.error.message
    [line] = error_lines(caplog)
    assert (line["code"], line["request_id"]) == ("internal", job.request_id)
    assert statuses(world, job.request_id) == ["received", "in_progress", "failed"]
