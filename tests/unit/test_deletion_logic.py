"""The deletion request and job (logic/deletion.py) over the fakes: who may ask, the steps in their order (the data
key first), the read-back, resuming after an interruption at any step with exact counts and nothing left, and what
a legal hold keeps. Races and AWS faults run against moto (tests/integration/test_deletion_api.py,
test_erasure_races.py); a hold lifted while the job runs is tests/unit/test_deletion_holds.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatsphere.errors import Conflict, DeletionInProgress, Gone, JobError, NotFound, SubjectRestricted
from chatsphere.logic import deletion, export, intake, subject_rights
from chatsphere.logic.codec import identifier_digest
from chatsphere.logic.object_keys import subject_prefix
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.export import ExportIn
from chatsphere.models.requests import DeletionReceipt, RequestItem
from chatsphere.models.subjects import InteractionIn, LegalHoldIn, SubjectIn
from tests.unit.fakes import World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
KIB = 1024
SUBJECT = "u-1"
EMAIL = "ada@example.org"

# What the subject below holds, as an uninterrupted erasure's receipt counts it.
REMOVED = {
    "profile": 1,
    "interactions": 3,  # two short, one long (its text in the bucket)
    "lookup_items": 2,  # email, phone
    "other_items": 0,
    "object_versions": 1,  # the long text
    "delete_markers": 0,
    "idempotency_records": 2,
    "data_key": 1,
    "exports_cancelled": 1,
}
NOTHING_LEFT = {
    "subject_items": 0,
    "object_versions": 0,
    "idempotency_records": 0,
    "data_key": 0,
    "identifier_index": 0,
}


@pytest.fixture
def tenant(world: World) -> str:
    w = world
    tenant_id = w.new_tenant("Acme")[0]
    body = SubjectIn(name="Ada Lovelace", email=EMAIL, phone="+441234567890")
    intake.put_subject(w.intake, tenant_id, SUBJECT, body, NOW)
    for n, text in enumerate(("hello", "again", "L" * (40 * KIB))):
        message = InteractionIn(
            conversation_id="c-1", role="customer", text=text, occurred_at=NOW - timedelta(minutes=3 - n)
        )
        intake.add_interaction(w.intake, tenant_id, SUBJECT, message, NOW)
    # two idempotency records, as Powertools writes them in the subject's partition
    w.idempotency.records[(tenant_id, SUBJECT)] = {"interaction#a": {"expiration": 1}, "interaction#b": {}}
    export.request_export(w.export, tenant_id, SUBJECT, ExportIn(format="json"), NOW)  # open: the job cancels it
    return tenant_id


def request(w: World, tenant: str, subject: str = SUBJECT, **options: Any) -> DeletionJob:
    deletion.request_deletion(w.deletion, tenant, subject, NOW, **options)
    w.subjects.records.clear()  # the fake keeps what each profile transaction wrote: only a second one counts
    return w.deletion_jobs.sent[-1]


def record_of(w: World, tenant: str, job: DeletionJob) -> RequestItem:
    item = w.requests.get(tenant, job.request_id)
    assert item is not None
    return item


def receipt_of(w: World, tenant: str, job: DeletionJob) -> DeletionReceipt:
    result = record_of(w, tenant, job).result
    assert isinstance(result, DeletionReceipt)
    return result


def run_to_end(w: World, job: DeletionJob, chunk: int = deletion.CHUNK) -> list[str]:
    """Invocations until the job says it is done (as the queue's continuations do); their outcomes."""
    outcomes: list[str] = [deletion.run_deletion(w.deletion, job, LATER, chunk=chunk)]
    while outcomes[-1] == "continue":
        assert len(outcomes) < 50, "the erasure did not end"
        outcomes.append(deletion.run_deletion(w.deletion, job, LATER, chunk=chunk))
    return outcomes


def holdings(w: World, tenant: str, subject: str = SUBJECT) -> dict[str, int]:
    """What every store the job touches still holds of the subject."""
    digest = identifier_digest(w.secret, tenant, "email", EMAIL)
    return {
        "items": len(w.subjects.item_refs(tenant, subject, 10**9)),
        "objects": len(w.blobs.versions(subject_prefix(tenant, subject), 10**9)),
        "records": len(w.idempotency.record_refs(tenant, subject, 10**9)),
        "key": int(w.data_keys.get(tenant, subject) is not None),
        "indexed": int(subject in w.subjects.find_subjects(tenant, "email", digest)),
    }


EVERYTHING_THERE = {"items": 6, "objects": 1, "records": 2, "key": 1, "indexed": 1}
ALL_GONE = {"items": 0, "objects": 0, "records": 0, "key": 0, "indexed": 0}


# ------------------------------------------------------------------ the request
def test_a_request_closes_the_subject_in_the_records_transaction_and_queues_one_job(world: World, tenant: str) -> None:
    record, new = deletion.request_deletion(world.deletion, tenant, SUBJECT, NOW)
    assert new is True
    assert (record.type, record.status, record.subject_id) == ("deletion", "received", SUBJECT)
    [written] = world.subjects.records  # in the profile's own write
    assert (written.request_id, written.status, written.type) == (record.request_id, "received", "deletion")
    profile = world.subjects.get_profile(tenant, SUBJECT)
    assert profile is not None
    assert (profile.status, profile.deletion_request_id) == ("erasing", record.request_id)
    assert world.deletion_jobs.sent == [DeletionJob(tenant_id=tenant, request_id=record.request_id)]
    assert holdings(world, tenant) == EVERYTHING_THERE  # the request removes nothing; the job does


def test_a_second_request_while_one_is_open_returns_it_and_queues_nothing(world: World, tenant: str) -> None:
    first = request(world, tenant)
    again, new = deletion.request_deletion(world.deletion, tenant, SUBJECT, LATER)
    assert new is False
    assert (again.request_id, again.status) == (first.request_id, "received")
    assert world.deletion_jobs.sent == [first]
    assert world.subjects.records == []  # no second record


def test_a_request_while_the_open_records_write_is_not_readable_yet_is_a_409(world: World, tenant: str) -> None:
    first, _ = deletion.request_deletion(world.deletion, tenant, SUBJECT, NOW)
    del world.requests.items[(tenant, first.request_id)]  # its record not readable yet (eventual consistency)
    with pytest.raises(Conflict) as raised:
        deletion.request_deletion(world.deletion, tenant, SUBJECT, LATER)
    assert raised.value.status == 409
    assert len(world.deletion_jobs.sent) == 1


def test_an_unknown_subject_is_404_and_writes_nothing(world: World, tenant: str) -> None:
    with pytest.raises(NotFound):
        deletion.request_deletion(world.deletion, tenant, "u-nobody", NOW)
    assert world.subjects.records == [] and world.deletion_jobs.sent == []


def test_an_erased_subject_is_410_naming_its_deletion(world: World, tenant: str) -> None:
    job = request(world, tenant)
    run_to_end(world, job)
    with pytest.raises(Gone) as raised:
        deletion.request_deletion(world.deletion, tenant, SUBJECT, LATER)
    assert raised.value.status == 410 and raised.value.request_id == job.request_id
    assert world.deletion_jobs.sent == [job]


def test_a_restricted_subject_refuses_another_request_while_its_hold_stands(world: World, tenant: str) -> None:
    subject_rights.place_hold(world.subject_rights, tenant, SUBJECT, LegalHoldIn(reason="case 9"), NOW)
    job = request(world, tenant)
    run_to_end(world, job)
    assert record_of(world, tenant, job).status == "completed_with_exceptions"
    with pytest.raises(SubjectRestricted) as raised:
        deletion.request_deletion(world.deletion, tenant, SUBJECT, LATER)
    assert raised.value.status == 409
    assert world.deletion_jobs.sent == [job]


def test_a_hold_cannot_be_placed_once_the_subject_is_erasing(world: World, tenant: str) -> None:
    request(world, tenant)
    with pytest.raises(DeletionInProgress):
        subject_rights.place_hold(world.subject_rights, tenant, SUBJECT, LegalHoldIn(reason="late"), LATER)
    profile = world.subjects.get_profile(tenant, SUBJECT)
    assert profile is not None and profile.legal_hold is None


def test_an_expected_version_that_moved_is_a_conflict_and_closes_nothing(world: World, tenant: str) -> None:
    profile = world.subjects.get_profile(tenant, SUBJECT)
    assert profile is not None
    with pytest.raises(Conflict):
        deletion.request_deletion(world.deletion, tenant, SUBJECT, NOW, expected_version=profile.version - 1)
    after = world.subjects.get_profile(tenant, SUBJECT)
    assert after is not None and (after.status, after.version) == ("active", profile.version)
    assert world.subjects.records == [] and world.deletion_jobs.sent == []


def test_the_expected_version_opens_the_request_from_retention(world: World, tenant: str) -> None:
    profile = world.subjects.get_profile(tenant, SUBJECT)
    assert profile is not None
    _, new = deletion.request_deletion(
        world.deletion, tenant, SUBJECT, NOW, initiated_by="retention", expected_version=profile.version
    )
    assert new is True
    closed = world.subjects.get_profile(tenant, SUBJECT)
    assert closed is not None and (closed.status, closed.version) == ("erasing", profile.version + 1)
    [written] = world.subjects.records
    assert written.details is not None and written.details.model_dump()["initiated_by"] == "retention"


# ------------------------------------------------------------------ the job, uninterrupted
def test_one_invocation_runs_every_step_in_order_and_completes_with_exact_counts(world: World, tenant: str) -> None:
    job = request(world, tenant)
    assert run_to_end(world, job) == ["done"]
    item = record_of(world, tenant, job)
    assert (item.status, item.subject_deleted) == ("completed", True)
    assert item.subject_id == world.tombstones.hash(tenant, SUBJECT)
    receipt = receipt_of(world, tenant, job)
    assert list(receipt.steps) == list(deletion.STEPS)
    # each step's own time: in order, from the invocation's start, none after the completion (issue 16: they were
    # all the invocation's start, to the microsecond)
    times = list(receipt.steps.values())
    assert times == sorted(times) and times[0] >= "2025-03-01T12:05:00.000000Z" and len(set(times)) > 1
    assert item.completed_at is not None and item.completed_at >= times[-1]
    assert receipt.removed == REMOVED
    assert receipt.remaining == NOTHING_LEFT
    assert receipt.verified is True
    assert (receipt.lookup_digests, receipt.held, receipt.kept, receipt.held_by) == ([], [], {}, None)
    assert holdings(world, tenant) == ALL_GONE


def test_a_subject_with_only_a_profile_counts_only_its_profile_and_key(world: World, tenant: str) -> None:
    intake.put_subject(world.intake, tenant, "u-2", SubjectIn(name="Grace"), NOW)
    job = request(world, tenant, "u-2")
    assert run_to_end(world, job) == ["done"]
    zero = dict.fromkeys(REMOVED, 0)
    assert receipt_of(world, tenant, job).removed == {**zero, "profile": 1, "data_key": 1}
    assert holdings(world, tenant, "u-2") == ALL_GONE
    assert holdings(world, tenant) == EVERYTHING_THERE  # the other subject of the tenant keeps everything


def test_the_data_key_is_destroyed_before_anything_else_is_removed(world: World, tenant: str) -> None:
    job = request(world, tenant)
    order: list[str] = []
    seen_at_shred: dict[str, int] = {}

    def spy(name: str, method: Callable[..., Any], before: Callable[[], None] | None = None) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if before is not None:
                before()
            order.append(name)
            return method(*args, **kwargs)

        return call

    def at_shred() -> None:
        seen_at_shred.update(holdings(world, tenant))

    world.data_keys.delete = spy("data_key", world.data_keys.delete, at_shred)  # type: ignore[method-assign]
    world.subjects.delete_items = spy("items", world.subjects.delete_items)  # type: ignore[method-assign]
    world.blobs.delete_versions = spy("objects", world.blobs.delete_versions)  # type: ignore[method-assign]
    world.idempotency.delete_records = spy("records", world.idempotency.delete_records)  # type: ignore[method-assign]
    run_to_end(world, job)
    assert seen_at_shred == EVERYTHING_THERE  # the key went while every other copy was still there
    # one removal per store (each within a chunk); the sweep finds nothing more, so removes nothing
    assert order == ["data_key", "items", "objects", "records"]
    assert holdings(world, tenant) == ALL_GONE


def test_the_tombstone_refuses_the_id_from_the_inventory_and_completes_with_the_record(
    world: World, tenant: str
) -> None:
    job = request(world, tenant)
    subject_hash = world.tombstones.hash(tenant, SUBJECT)
    interrupt(world, job, "inventory")
    started = world.requests.get_tombstone(tenant, subject_hash)
    assert started is not None and (started.request_id, started.deleted_at) == (job.request_id, None)
    assert holdings(world, tenant) == EVERYTHING_THERE
    run_to_end(world, job)
    done = world.requests.get_tombstone(tenant, subject_hash)
    assert done is not None
    receipt, record = receipt_of(world, tenant, job), record_of(world, tenant, job)
    # started when the inventory finished, deleted when the record completed: the times of those very steps
    assert (done.request_id, done.started_at, done.deleted_at) == (
        job.request_id,
        receipt.steps["inventory"],
        record.completed_at,
    )
    assert done.sealed_subject_id is not None and SUBJECT.encode() not in done.sealed_subject_id


def test_the_completion_cancels_open_exports_pseudonymises_records_and_tells_processors(
    world: World, tenant: str
) -> None:
    job = request(world, tenant)
    [export_record] = [r for r in world.requests.of_subject(tenant, SUBJECT) if r.type == "export"]
    run_to_end(world, job)
    subject_hash = world.tombstones.hash(tenant, SUBJECT)
    cancelled = world.requests.get(tenant, export_record.request_id)
    assert cancelled is not None
    assert (cancelled.status, cancelled.subject_id) == ("rejected", subject_hash)
    assert world.requests.of_subject(tenant, SUBJECT) == []
    [event] = world.events.of_type(deletion.EVENT_TYPE)
    assert event == {
        "tenant_id": tenant,
        "subject_id": SUBJECT,
        "request_id": job.request_id,
        "deleted_at": record_of(world, tenant, job).completed_at,
    }


def test_a_small_chunk_continues_until_done_and_counts_each_item_once(world: World, tenant: str) -> None:
    job = request(world, tenant)
    # chunk 2: six items take three invocations, one more finds the rest of them gone and the one object, the two
    # records fill a chunk, and the last finds no more records, sweeps, reads back and completes
    assert run_to_end(world, job, chunk=2) == ["continue", "continue", "continue", "continue", "done"]
    receipt = receipt_of(world, tenant, job)
    assert receipt.removed == REMOVED
    assert list(receipt.steps) == list(deletion.STEPS)
    assert holdings(world, tenant) == ALL_GONE


def test_a_finished_job_delivered_again_is_skipped_and_removes_nothing(world: World, tenant: str) -> None:
    job = request(world, tenant)
    run_to_end(world, job)
    before = record_of(world, tenant, job)
    assert deletion.run_deletion(world.deletion, job, LATER + timedelta(hours=1)) == "skipped"
    assert record_of(world, tenant, job) == before
    assert len(world.events.of_type(deletion.EVENT_TYPE)) == 1


def test_a_job_for_no_record_or_another_type_is_skipped(world: World, tenant: str) -> None:
    assert deletion.run_deletion(world.deletion, DeletionJob(tenant_id=tenant, request_id="r-none"), LATER) == (
        "skipped"
    )
    [export_record] = world.requests.of_subject(tenant, SUBJECT)
    other = DeletionJob(tenant_id=tenant, request_id=export_record.request_id)
    assert deletion.run_deletion(world.deletion, other, LATER) == "skipped"
    assert holdings(world, tenant) == EVERYTHING_THERE


# ------------------------------------------------------------------ the read-back
def test_a_write_that_lands_after_its_step_is_swept_and_counted_as_swept(world: World, tenant: str) -> None:
    job = request(world, tenant)
    first = world.subjects.all_interactions(tenant, SUBJECT)[0]
    late = first.model_copy(update={"interaction_id": "f" * 32})
    interrupt(world, job, "items")
    # an interaction that passed its status check before the subject closed lands now
    world.subjects.interactions.setdefault((tenant, SUBJECT), {})[(late.occurred_at, late.interaction_id)] = late
    run_to_end(world, job)
    receipt = receipt_of(world, tenant, job)
    assert receipt.removed == {**REMOVED, "swept_items": 1, "swept_object_versions": 0}
    assert list(receipt.steps) == list(deletion.STEPS)
    assert holdings(world, tenant) == ALL_GONE


def test_a_data_key_put_back_after_its_step_fails_the_read_back_and_the_record_stays_open(
    world: World, tenant: str
) -> None:
    job = request(world, tenant)
    wrapped = world.data_keys.get(tenant, SUBJECT)
    assert wrapped is not None
    interrupt(world, job, "swept")
    world.data_keys.rows[(tenant, SUBJECT)] = wrapped  # a restore of SubjectKeysTable, say
    with pytest.raises(JobError) as raised:
        deletion.run_deletion(world.deletion, job, LATER)
    assert raised.value.code == "residue_found" and "data_key" in str(raised.value)
    item = record_of(world, tenant, job)
    assert item.status == "in_progress" and not item.subject_deleted
    assert "verified" not in receipt_of(world, tenant, job).steps
    assert world.events.of_type(deletion.EVENT_TYPE) == []


def test_an_idempotency_record_written_after_its_step_fails_the_read_back(world: World, tenant: str) -> None:
    job = request(world, tenant)
    interrupt(world, job, "swept")
    world.idempotency.records[(tenant, SUBJECT)] = {"interaction#late": {}}
    with pytest.raises(JobError) as raised:
        deletion.run_deletion(world.deletion, job, LATER)
    assert raised.value.code == "residue_found" and "idempotency_records" in str(raised.value)
    assert record_of(world, tenant, job).status == "in_progress"


# ------------------------------------------------------------------ interrupted at any step, resumed
class Crash(Exception):
    """A crash of the invocation (a timeout, the container gone)."""


@pytest.mark.parametrize("recorded", [False, True], ids=["before-its-record", "after-its-record"])
@pytest.mark.parametrize("step", deletion.STEPS)
def test_an_erasure_interrupted_at_any_step_resumes_with_exact_counts_and_no_residue(
    world: World, tenant: str, step: str, recorded: bool
) -> None:
    """The invocation dies as the step ends: its work done and not recorded (so the rerun does it again), or
    recorded (so the rerun goes on from the next step)."""
    job = request(world, tenant)
    interrupt(world, job, step, recorded=recorded)
    steps = receipt_of(world, tenant, job).steps
    assert (step in steps) is recorded
    assert record_of(world, tenant, job).status == "in_progress"
    assert run_to_end(world, job) == ["done"]  # the redelivery
    receipt = receipt_of(world, tenant, job)
    assert record_of(world, tenant, job).status == "completed"
    assert receipt.removed == REMOVED
    assert receipt.remaining == NOTHING_LEFT
    assert list(receipt.steps) == list(deletion.STEPS)
    assert holdings(world, tenant) == ALL_GONE
    assert len(world.events.of_type(deletion.EVENT_TYPE)) == 1


def test_a_job_resumed_in_a_second_invocation_publishes_each_status_once(world: World, tenant: str) -> None:
    job = request(world, tenant)
    interrupt(world, job, "inventory")
    item = record_of(world, tenant, job)
    assert item.status == "in_progress"
    run_to_end(world, job)
    statuses = [
        e["status"] for e in world.events.of_type("RightsRequestStatusChanged") if e["request_id"] == job.request_id
    ]
    assert statuses == ["received", "in_progress", "completed"]


# ------------------------------------------------------------------ legal holds
def test_a_hold_on_interactions_keeps_them_their_objects_and_the_key_and_strips_the_profile(
    world: World, tenant: str
) -> None:
    hold = LegalHoldIn(reason="claim 12", categories=["interactions"])
    subject_rights.place_hold(world.subject_rights, tenant, SUBJECT, hold, NOW)
    job = request(world, tenant)
    assert run_to_end(world, job) == ["done"]
    item = record_of(world, tenant, job)
    assert (item.status, item.subject_deleted, item.subject_id) == ("completed_with_exceptions", False, SUBJECT)
    receipt = receipt_of(world, tenant, job)
    held_by = receipt.held_by
    assert held_by is not None and held_by == _hold_request_id(world, tenant)
    assert receipt.held == ["interactions"]
    assert receipt.kept == {"profile": 1, "interactions": 3, "object_versions": 1, "data_key": 1}
    assert receipt.removed == {
        **REMOVED,
        "profile": 0,
        "interactions": 0,
        "object_versions": 0,
        "data_key": 0,
    }
    assert receipt.kept_because == f"legal hold placed by request {held_by}: claim 12"
    assert holdings(world, tenant) == {"items": 4, "objects": 1, "records": 0, "key": 1, "indexed": 0}
    profile = world.subjects.get_profile(tenant, SUBJECT)
    assert profile is not None
    assert (profile.status, profile.sealed, profile.lookups) == ("restricted", {}, {})
    assert world.requests.get_tombstone(tenant, world.tombstones.hash(tenant, SUBJECT)) is None
    assert world.events.of_type(deletion.EVENT_TYPE) == []


def test_a_hold_on_everything_keeps_every_item_and_the_key_and_removes_the_records(world: World, tenant: str) -> None:
    subject_rights.place_hold(world.subject_rights, tenant, SUBJECT, LegalHoldIn(reason="audit"), NOW)
    job = request(world, tenant)
    run_to_end(world, job)
    receipt = receipt_of(world, tenant, job)
    assert sorted(receipt.held) == ["interactions", "profile"]
    assert receipt.kept == {"profile": 1, "interactions": 3, "lookup_items": 2, "object_versions": 1, "data_key": 1}
    assert receipt.removed == {
        **REMOVED,
        "profile": 0,
        "interactions": 0,
        "lookup_items": 0,
        "object_versions": 0,
        "data_key": 0,
    }
    assert receipt.remaining == NOTHING_LEFT
    assert holdings(world, tenant) == {**EVERYTHING_THERE, "records": 0}


@pytest.mark.parametrize("step", deletion.STEPS)
def test_a_held_erasure_interrupted_at_any_step_keeps_exactly_what_the_hold_covers(
    world: World, tenant: str, step: str
) -> None:
    hold = LegalHoldIn(reason="claim 12", categories=["interactions"])
    subject_rights.place_hold(world.subject_rights, tenant, SUBJECT, hold, NOW)
    job = request(world, tenant)
    interrupt(world, job, step)
    run_to_end(world, job)
    receipt = receipt_of(world, tenant, job)
    assert record_of(world, tenant, job).status == "completed_with_exceptions"
    assert receipt.kept == {"profile": 1, "interactions": 3, "object_versions": 1, "data_key": 1}
    assert receipt.removed["lookup_items"] == 2 and receipt.removed["idempotency_records"] == 2
    assert holdings(world, tenant) == {"items": 4, "objects": 1, "records": 0, "key": 1, "indexed": 0}


# ------------------------------------------------------------------ helpers
def interrupt(w: World, job: DeletionJob, step: str, *, recorded: bool = True) -> None:
    """One invocation of the job that dies as `step` ends: after its finish is recorded, or (not `recorded`) with
    its work done and its finish not recorded."""
    original = deletion._Run.step_done

    def step_done(self: deletion._Run, name: str, **changes: object) -> None:
        if name == step and not recorded:
            raise Crash(name)
        original(self, name, **changes)
        if name == step:
            raise Crash(name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deletion._Run, "step_done", step_done)
        with pytest.raises(Crash):
            deletion.run_deletion(w.deletion, job, LATER)


def _hold_request_id(w: World, tenant: str) -> str | None:
    profile = w.subjects.get_profile(tenant, SUBJECT)
    return str(profile.legal_hold["request_id"]) if profile and profile.legal_hold else None
