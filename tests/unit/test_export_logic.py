"""Export logic over in-memory ports: the request, the job, and the package a subject receives."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatsphere.errors import Conflict, InvalidInput, NotFound
from chatsphere.logic import export, intake, processing
from chatsphere.logic.requests import new_request
from chatsphere.models.export import ExportIn, ExportJob
from chatsphere.models.items import InteractionItem
from chatsphere.models.refs import InteractionPosition
from chatsphere.models.requests import (
    DeletionDetails,
    ExportDetails,
    ExportFormat,
    ExportResult,
    Refusal,
    RequestItem,
    refusal,
)
from chatsphere.models.settings import (
    InactiveProfilesRetention,
    InteractionsRetention,
    Processor,
    Retention,
    TenantSettings,
)
from chatsphere.models.subjects import InteractionIn, SubjectIn
from tests.unit.fakes import FakeBlobStore, FakeRequestStore, FakeSubjectStore, FakeUpload, World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RUN_AT = NOW + timedelta(minutes=5)
DESTINATION = "s3://other-controller/imports/"
TEXTS = [
    "hello, I'd like my data",
    'a "quoted" reply,\r\nover two lines; ünïcödé ✓',
    "long " + "x" * (40 * 1024),  # over 32 KiB: stored in the blob store, not inline
]


@pytest.fixture
def tenant(world: World) -> str:
    tenant_id = world.new_tenant("Acme Support")[0]
    settings = TenantSettings(
        deadline_days=20,
        download_link_hours=6,
        portability_destinations=[DESTINATION],
        retention=Retention(
            interactions=InteractionsRetention(days=365), inactive_profiles=InactiveProfilesRetention(days=500)
        ),
        processors=[Processor(name="MailCo", purpose="e-mail delivery", data_categories=["contact"], country="IE")],
    )
    world.tenants.put_settings(tenant_id, settings, "x")
    return tenant_id


@pytest.fixture
def subject(world: World, tenant: str) -> str:
    body = SubjectIn(name="Ada Lovelace", email="ada@example.org")
    intake.put_subject(world.intake, tenant, "u-1", body, NOW - timedelta(days=30))
    for n, text in enumerate(TEXTS):
        message = InteractionIn(
            conversation_id="c-1",
            role="customer" if n % 2 == 0 else "agent",
            text=text,
            occurred_at=NOW - timedelta(days=10 - n),
            channel="web",
        )
        intake.add_interaction(world.intake, tenant, "u-1", message, NOW)
    return "u-1"


def request(
    world: World, tenant: str, subject: str, fmt: ExportFormat = "json", deliver_to: str | None = None
) -> ExportJob:
    export.request_export(world.export, tenant, subject, ExportIn(format=fmt, deliver_to=deliver_to), NOW)
    return world.export_jobs.sent[-1]


def run(world: World, job: ExportJob, at: datetime = RUN_AT, attempt: int = 1) -> RequestItem | None:
    return export.run_export(world.export, job, at, attempt=attempt)


def stored(world: World, job: ExportJob) -> RequestItem:
    item = world.requests.get(job.tenant_id, job.request_id)
    assert item is not None
    return item


def package_key(tenant: str, subject: str, job: ExportJob) -> str:
    return f"tenants/{tenant}/subjects/{subject}/exports/{job.request_id}.zip"


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def export_result(item: RequestItem | None) -> ExportResult:
    assert item is not None and item.status == "completed"
    assert isinstance(item.result, ExportResult) and item.result.package_key is not None
    return item.result


def package_of(world: World, item: RequestItem | None) -> bytes:
    key = export_result(item).package_key
    assert key is not None
    return world.blobs.get(key)


# ------------------------------------------------------------------- request
def test_an_export_request_is_recorded_and_one_job_with_ids_only_is_queued(
    world: World, tenant: str, subject: str
) -> None:
    # When the tenant requests a CSV export
    record, _ = export.request_export(world.export, tenant, subject, ExportIn(format="csv"), NOW)
    # Then a received export record is stored, due per the tenant's deadline
    item = world.requests.get(tenant, record.request_id)
    assert item is not None
    assert (item.type, item.status, item.subject_id) == ("export", "received", subject)
    assert item.details == ExportDetails(format="csv", deliver_to=None)
    assert record.status == "received"
    assert record.due_at == NOW + timedelta(days=20)
    assert record.overdue is False
    # and exactly one job names it, by ids alone
    assert world.export_jobs.sent == [ExportJob(tenant_id=tenant, request_id=record.request_id)]
    assert set(world.export_jobs.sent[0].model_dump()) == {"tenant_id", "request_id"}


def test_an_export_may_be_delivered_to_a_listed_destination(world: World, tenant: str, subject: str) -> None:
    job = request(world, tenant, subject, deliver_to=DESTINATION)
    assert stored(world, job).details == ExportDetails(format="json", deliver_to=DESTINATION)


def test_an_export_to_an_unlisted_destination_is_refused_and_nothing_is_written(
    world: World, tenant: str, subject: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        request(world, tenant, subject, deliver_to="s3://attacker-bucket/loot/")
    assert raised.value.status == 422
    assert world.requests.items == {}
    assert world.export_jobs.sent == []


def test_an_export_of_an_unknown_subject_is_not_found_and_nothing_is_written(world: World, tenant: str) -> None:
    with pytest.raises(NotFound):
        request(world, tenant, "nobody")
    assert world.requests.items == {}
    assert world.export_jobs.sent == []


def test_an_export_of_another_tenants_subject_is_not_found(world: World, tenant: str, subject: str) -> None:
    other = world.new_tenant("Globex")[0]
    with pytest.raises(NotFound):
        request(world, other, subject)
    assert world.requests.items == {}
    assert world.export_jobs.sent == []


# ------------------------------------------------------------------- package
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_the_job_stores_a_complete_package_under_the_subjects_prefix(
    world: World, tenant: str, subject: str, fmt: ExportFormat
) -> None:
    # Given a requested export
    job = request(world, tenant, subject, fmt)
    # When the job runs
    done = run(world, job)
    # Then the request is completed and the package is stored, tagged for expiry, under the subject's prefix
    result = export_result(done)
    key = package_key(tenant, subject, job)
    assert stored(world, job) == done
    assert list(world.blobs.kinds.items()) == [(key, "export-package")]
    package = world.blobs.get(key)
    # and the result describes that very package
    assert result.sha256 == hashlib.sha256(package).hexdigest()
    assert result.bytes == len(package)
    assert result.interaction_count == len(TEXTS)
    assert datetime.fromisoformat(result.expires_at) == RUN_AT + timedelta(hours=6)
    assert done is not None and done.completed_at is not None
    assert datetime.fromisoformat(done.completed_at) == RUN_AT
    data_file = "interactions.jsonl" if fmt == "json" else "interactions.csv"
    assert data_file in result.files and "manifest.json" in result.files
    assert set(result.files) == set(read_zip(package))
    assert world.blobs.aborted == []


def test_the_package_holds_the_subject_and_the_processing_record(world: World, tenant: str, subject: str) -> None:
    # Given a subject who objected to analytics
    profile = world.subjects.get_profile(tenant, subject)
    assert profile is not None
    world.subjects.save_profile(
        profile.model_copy(
            update={"objections": {"analytics": "2025-02-01T00:00:00.000000Z"}, "version": profile.version + 1}
        ),
        profile.version,
    )
    job = request(world, tenant, subject)
    # When the export runs
    files = read_zip(package_of(world, run(world, job)))
    # Then subject.json holds its profile, its objections and when it was exported
    person = json.loads(files["subject.json"])
    assert (person["subject_id"], person["name"], person["email"]) == (subject, "Ada Lovelace", "ada@example.org")
    assert person["objections"] == [{"purpose": "analytics", "since": "2025-02-01T00:00:00.000000Z"}]
    assert datetime.fromisoformat(person["exported_at"]) == RUN_AT
    # and processing_record.json holds the tenant's retention periods, processors and the objection
    record = json.loads(files["processing_record.json"])
    assert record["controller"] == "Acme Support"
    assert record["retention"]["interactions"] == "365 days after they occurred, then deleted"
    assert record["retention"]["identity"] == "500 days after the last interaction, then erased"
    assert record["recipients"] == [
        {
            "name": "MailCo",
            "purpose": "e-mail delivery",
            "data_categories": ["contact"],
            "country": "IE",
            "safeguard": None,
        }
    ]
    purposes = {p["purpose"]: p for p in record["purposes"]}
    assert purposes["analytics"]["applies"] is False and purposes["analytics"]["objected"] is True
    assert purposes["inquiries"]["applies"] is True


def test_a_json_package_holds_every_interaction_in_full_oldest_first(world: World, tenant: str, subject: str) -> None:
    job = request(world, tenant, subject, "json")
    files = read_zip(package_of(world, run(world, job)))
    rows = [json.loads(line) for line in files["interactions.jsonl"].decode().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    stored_ids = sorted(world.subjects.all_interactions(tenant, subject), key=lambda i: i.occurred_at)
    assert [r["interaction_id"] for r in rows] == [i.interaction_id for i in stored_ids]
    assert [r["role"] for r in rows] == ["customer", "agent", "customer"]


def test_a_csv_package_holds_every_interaction_and_a_data_dictionary(world: World, tenant: str, subject: str) -> None:
    job = request(world, tenant, subject, "csv")
    files = read_zip(package_of(world, run(world, job)))
    rows = list(csv.DictReader(io.StringIO(files["interactions.csv"].decode(), newline="")))
    assert [r["text"] for r in rows] == TEXTS
    assert list(rows[0]) == list(processing.CSV_COLUMNS)
    dictionary = list(csv.reader(io.StringIO(files["data_dictionary.csv"].decode(), newline="")))
    assert [row[1] for row in dictionary[1:]] == list(processing.CSV_COLUMNS)


def test_an_export_spanning_several_pages_holds_every_interaction_once(world: World, tenant: str) -> None:
    # Given a subject with more interactions than one read returns
    intake.put_subject(world.intake, tenant, "u-9", SubjectIn(name="Bo"), NOW)
    count = export.PAGE * 2 + 3
    for n in range(count):
        body = InteractionIn(conversation_id="c", role="bot", text=f"m{n}", occurred_at=NOW - timedelta(minutes=n))
        intake.add_interaction(world.intake, tenant, "u-9", body, NOW)
    job = request(world, tenant, "u-9")
    # When it is exported
    result = export_result(run(world, job))
    # Then every interaction is in it once, oldest first
    lines = read_zip(world.blobs.get(result.package_key or ""))["interactions.jsonl"].decode().splitlines()
    assert [json.loads(line)["text"] for line in lines] == [f"m{n}" for n in reversed(range(count))]
    assert result.interaction_count == count


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_the_manifest_holds_each_files_sha256(world: World, tenant: str, subject: str, fmt: ExportFormat) -> None:
    job = request(world, tenant, subject, fmt)
    files = read_zip(package_of(world, run(world, job)))
    manifest = json.loads(files.pop("manifest.json"))
    assert manifest["interaction_count"] == len(TEXTS)
    assert set(manifest["files"]) == set(files)
    for name, data in files.items():
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert manifest["files"][name]["bytes"] == len(data), name


def test_an_export_with_no_interactions_is_a_valid_package(world: World, tenant: str) -> None:
    intake.put_subject(world.intake, tenant, "u-0", SubjectIn(name="Bo"), NOW)
    job = request(world, tenant, "u-0", "csv")
    result = export_result(run(world, job))
    assert result.interaction_count == 0
    rows = list(
        csv.reader(io.StringIO(read_zip(world.blobs.get(result.package_key or ""))["interactions.csv"].decode()))
    )
    assert rows == [list(processing.CSV_COLUMNS)]


def test_an_export_to_a_destination_is_delivered_there(world: World, tenant: str, subject: str) -> None:
    job = request(world, tenant, subject, deliver_to=DESTINATION)
    result = export_result(run(world, job))
    target = f"s3://other-controller/imports/{job.request_id}.zip"
    assert result.delivered_to == target
    assert world.blobs.delivered == {target: world.blobs.get(result.package_key or "")}


def test_an_export_without_a_destination_is_delivered_nowhere(world: World, tenant: str, subject: str) -> None:
    result = export_result(run(world, request(world, tenant, subject)))
    assert result.delivered_to is None
    assert world.blobs.delivered == {}


# ----------------------------------------------------------------------- job
def test_running_the_same_job_again_changes_nothing(world: World, tenant: str, subject: str) -> None:
    # Given an export that completed
    job = request(world, tenant, subject)
    first = run(world, job)
    versions = {k: list(v) for k, v in world.blobs.versions_of.items()}
    # When its message is delivered again, later
    again = run(world, job, at=RUN_AT + timedelta(hours=1))
    # Then the record and the package are as they were
    assert again == first
    assert stored(world, job) == first
    assert world.blobs.versions_of == versions


def test_a_request_of_another_type_is_left_alone(world: World, tenant: str, subject: str) -> None:
    # Given an open deletion request, and a job naming it
    item = new_request(TenantSettings(), tenant, subject, NOW, DeletionDetails())
    world.requests.create(item)
    # When the export worker gets it
    returned = run(world, ExportJob(tenant_id=tenant, request_id=item.request_id))
    # Then it is neither started nor finished, and no package is made
    assert returned == item
    assert world.requests.get(tenant, item.request_id) == item
    assert world.blobs.kinds == {}


def test_a_job_for_an_unknown_request_does_nothing(world: World, tenant: str) -> None:
    assert run(world, ExportJob(tenant_id=tenant, request_id="r" + "0" * 28)) is None
    assert world.blobs.versions_of == {}


def test_a_finished_request_is_left_alone(world: World, tenant: str, subject: str) -> None:
    # Given an export that failed for good
    job = request(world, tenant, subject)
    failed = stored(world, job).model_copy(
        update={"status": "failed", "completed_at": "2025-03-01T12:01:00.000000Z", "result": Refusal(reason="x")}
    )
    world.requests.set_status(failed, expected_status=("received",))
    # When its job runs
    returned = run(world, job)
    # Then it stays failed and no package is made
    assert returned == failed
    assert stored(world, job) == failed
    assert world.blobs.kinds == {}


def test_an_export_started_but_interrupted_runs_again_to_completion(world: World, tenant: str, subject: str) -> None:
    # Given an export a previous worker moved to in_progress and then died
    job = request(world, tenant, subject)
    world.requests.set_status(
        stored(world, job).model_copy(update={"status": "in_progress"}), expected_status=("received",)
    )
    # When the message is delivered again
    result = export_result(run(world, job, attempt=2))
    # Then the export completes
    assert result.interaction_count == len(TEXTS)
    assert stored(world, job).status == "completed"


def test_a_subject_whose_key_is_shredded_is_rejected_with_a_reason(world: World, tenant: str, subject: str) -> None:
    # Given an export requested before the subject's key was deleted
    job = request(world, tenant, subject)
    world.data_keys.destroy(tenant, subject)
    # When the job runs
    done = run(world, job)
    # Then the request is rejected with a reason that names no personal value, and no package exists
    assert done is not None and done.status == "rejected"
    assert done.result == refusal("subject_gone", "the subject no longer exists")
    assert done.completed_at is not None
    assert stored(world, job) == done
    assert world.blobs.kinds == {}


class _BrokenReads(FakeSubjectStore):
    """Reading the subject's interactions fails (a throttled table, a timeout)."""

    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after: InteractionPosition | None
    ) -> tuple[list[InteractionItem], InteractionPosition | None]:
        raise TimeoutError("read timed out")


@pytest.fixture
def broken(world: World, tenant: str, subject: str) -> tuple[World, ExportJob]:
    """The world above, with interaction reads failing from now on."""
    failing = _BrokenReads()
    failing.__dict__.update(world.subjects.__dict__)
    world.subjects = failing
    return world, request(world, tenant, subject)


def test_a_failure_before_the_last_attempt_re_raises_and_leaves_the_request_in_progress(
    broken: tuple[World, ExportJob],
) -> None:
    world, job = broken
    for attempt in range(1, export.MAX_ATTEMPTS):
        with pytest.raises(TimeoutError):
            run(world, job, attempt=attempt)
        item = stored(world, job)
        assert (item.status, item.completed_at, item.result) == ("in_progress", None, None)


def test_a_failure_on_the_last_attempt_marks_the_request_failed_and_re_raises(
    broken: tuple[World, ExportJob],
) -> None:
    world, job = broken
    with pytest.raises(TimeoutError):
        run(world, job, attempt=export.MAX_ATTEMPTS)
    item = stored(world, job)
    assert item.status == "failed"
    assert isinstance(item.result, Refusal) and item.result.reason
    assert item.completed_at is not None and datetime.fromisoformat(item.completed_at) == RUN_AT


def test_a_failed_package_is_aborted_and_leaves_no_object(broken: tuple[World, ExportJob]) -> None:
    world, job = broken
    with pytest.raises(TimeoutError):
        run(world, job)
    assert world.blobs.aborted == [package_key(job.tenant_id, stored(world, job).subject_id, job)]
    assert world.blobs.kinds == {}
    assert not any("/exports/" in key for key in world.blobs.versions_of)


class _FailingUpload(FakeUpload):
    def write(self, data: bytes) -> int:
        if self.size + len(data) > 64:
            raise ConnectionError("upload part failed")
        return super().write(data)


class _FailingUploads(FakeBlobStore):
    def open_upload(self, key: str, kind: str) -> FakeUpload:
        return _FailingUpload(self, key, kind)


def test_an_upload_that_fails_is_aborted_and_leaves_no_object(world: World, tenant: str, subject: str) -> None:
    # Given a blob store whose uploads fail part-way (the interactions' own blobs stay readable)
    failing = _FailingUploads()
    failing.versions_of = world.blobs.versions_of
    world.blobs = failing
    job = request(world, tenant, subject)
    # When the job runs
    with pytest.raises(ConnectionError):
        run(world, job)
    # Then the upload is aborted, no package exists and the request may be retried
    assert failing.aborted == [package_key(tenant, subject, job)]
    assert not any("/exports/" in key for key in failing.versions_of)
    assert stored(world, job).status == "in_progress"


# ------------------------------------------------ what a failed attempt wrote (issue 7)
class _RefusingDelivery(FakeBlobStore):
    def deliver(self, key: str, destination_uri: str, filename: str) -> str:
        raise PermissionError("access denied by the destination")


@pytest.mark.parametrize("attempt", [1, 2, export.MAX_ATTEMPTS])
def test_a_package_written_by_an_attempt_that_then_fails_is_removed(
    world: World, tenant: str, subject: str, attempt: int
) -> None:
    # Given a delivery that fails after the package has been written
    destination = "s3://partner-bucket/in"
    world.tenants.put_settings(tenant, TenantSettings(portability_destinations=[destination]), "2025-01-01")
    refusing = _RefusingDelivery()
    refusing.versions_of = world.blobs.versions_of
    world.blobs = refusing
    job = request(world, tenant, subject, deliver_to=destination)
    # When the attempt fails
    with pytest.raises(PermissionError):
        run(world, job, attempt=attempt)
    # Then no version of the plaintext package is left behind, whatever the attempt
    assert package_key(tenant, subject, job) not in refusing.versions_of


def test_only_the_failed_attempts_own_version_is_removed(world: World, tenant: str, subject: str) -> None:
    # Given a package key that already holds a version another worker completed the request with
    job = request(world, tenant, subject)
    key = package_key(tenant, subject, job)
    theirs = world.blobs.write(key, b"their package")

    class RecordRefused(FakeRequestStore):
        def set_status(self, item: RequestItem, expected_status: tuple[str, ...]) -> None:
            if item.status == "completed":
                raise Conflict("finished by another worker")
            super().set_status(item, expected_status)

    racing = RecordRefused()
    racing.items = world.requests.items
    world.requests = racing
    # When our attempt finishes second and cannot record its result
    run(world, job)
    # Then our version is gone and theirs is still the package
    assert [version for version, _ in world.blobs.versions_of[key]] == [theirs]


# ------------------------------------------------------------------- the readable page, dictionary and dates
@pytest.mark.parametrize(
    ("fmt", "data", "dictionary"),
    [("json", "interactions.jsonl", "data_dictionary.json"), ("csv", "interactions.csv", "data_dictionary.csv")],
)
def test_every_package_holds_index_html_and_a_data_dictionary_dated_when_it_was_made(
    world: World, tenant: str, subject: str, fmt: ExportFormat, data: str, dictionary: str
) -> None:
    result = export_result(run(world, request(world, tenant, subject, fmt)))
    expected = {"subject.json", "processing_record.json", data, dictionary, "index.html", "manifest.json"}
    assert set(result.files) == expected
    with zipfile.ZipFile(io.BytesIO(world.blobs.get(result.package_key or ""))) as zf:
        assert {info.date_time for info in zf.infolist()} == {RUN_AT.timetuple()[:6]}
        assert set(zf.namelist()) == expected


def test_the_json_packages_data_dictionary_describes_every_field_of_its_files(
    world: World, tenant: str, subject: str
) -> None:
    files = read_zip(package_of(world, run(world, request(world, tenant, subject, "json"))))
    dictionary = json.loads(files["data_dictionary.json"])
    assert set(dictionary) == {"subject.json", "interactions.jsonl"}
    assert set(dictionary["subject.json"]) == set(json.loads(files["subject.json"]))
    rows = [json.loads(line) for line in files["interactions.jsonl"].splitlines()]
    assert {key for row in rows for key in row} == set(dictionary["interactions.jsonl"])
    assert all(isinstance(text, str) and text for text in dictionary["interactions.jsonl"].values())


def test_index_html_holds_the_profile_every_message_and_whom_to_contact_escaped(
    world: World, tenant: str, subject: str
) -> None:
    from chatsphere.models.settings import Controller
    from tests.page_check import assert_self_contained

    settings = world.tenants.get_settings(tenant).model_copy(
        update={
            "controller": Controller(name="Acme <Shop>", contact="privacy@acme.example", dpo_contact="dpo@x.example")
        }
    )
    world.tenants.put_settings(tenant, settings, "y")
    hostile = InteractionIn(conversation_id="c-2", role="customer", text='<script>alert("hi")</script>', channel="web")
    intake.add_interaction(world.intake, tenant, subject, hostile, NOW)
    page = read_zip(package_of(world, run(world, request(world, tenant, subject, "csv"))))["index.html"].decode()
    assert_self_contained(page)
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt;" in page
    assert "Acme &lt;Shop&gt;" in page and "privacy@acme.example" in page and "dpo@x.example" in page
    assert "Ada Lovelace" in page and "ada@example.org" in page
    for text in TEXTS:
        assert html.escape(text) in page
    assert "4 messages in all." in page
    assert "performance of a contract" not in page and "needed to provide the service you asked for" in page
    assert "MailCo" in page and "365 days after they occurred, then deleted" in page
    assert "Answering your questions and requests" in page and "Your messages" in page


def test_index_html_is_a_second_streamed_pass_over_the_interactions(world: World, tenant: str, subject: str) -> None:
    """Its price in AWS calls: the interactions' pages and long texts are read once more, and nothing else."""
    reads: list[str] = []
    listing, fetch = world.subjects.list_interactions, world.blobs.get

    def counted_list(*args: Any) -> Any:
        reads.append("page")
        return listing(*args)

    def counted_get(key: str) -> bytes:
        reads.append("blob")
        return fetch(key)

    world.subjects.list_interactions = counted_list  # type: ignore[method-assign,assignment]
    world.blobs.get = counted_get  # type: ignore[method-assign]
    run(world, request(world, tenant, subject, "json"))
    # 3 interactions fit one page; one text is long enough to live in the blob store: each read twice
    assert sorted(reads) == ["blob", "blob", "page", "page"]
