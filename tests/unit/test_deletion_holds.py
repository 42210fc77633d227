"""The erasure job against a legal hold, over the fakes: its completion with exceptions makes the subject
`restricted` only while the hold stands, and a hold gone by then (also for a receipt written before receipts named
the hold) makes the job erase what it kept. The races themselves run against moto
(tests/integration/test_restricted.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatsphere.logic import deletion, intake, subject_rights
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.requests import DeletionReceipt
from chatsphere.models.subjects import InteractionIn, LegalHoldIn, SubjectIn
from tests.unit.fakes import World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


@pytest.fixture
def tenant(world: World) -> str:
    w = world
    tenant_id = w.new_tenant("Acme")[0]
    body = SubjectIn(name="Ada Lovelace", email="ada@example.org")
    intake.put_subject(w.intake, tenant_id, "u-7", body, NOW)
    message = InteractionIn(conversation_id="c-1", role="customer", text="hello", occurred_at=NOW)
    intake.add_interaction(w.intake, tenant_id, "u-7", message, NOW)
    hold = LegalHoldIn.model_validate({"reason": "case 9"})
    subject_rights.place_hold(w.subject_rights, tenant_id, "u-7", hold, NOW)
    deletion.request_deletion(w.deletion, tenant_id, "u-7", NOW)
    return tenant_id


def ports(w: World) -> deletion.DeletionPorts:
    return w.deletion


def run(w: World, job: DeletionJob, before_completion: Any = None) -> None:
    """The job to its end; `before_completion` runs once all its steps are done and it is about to complete."""
    original = deletion._Run._complete

    def complete(self: Any) -> None:
        nonlocal before_completion
        if before_completion is not None:
            hook, before_completion = before_completion, None
            hook(self)
        original(self)

    deletion._Run._complete = complete  # type: ignore[method-assign]
    try:
        for _ in range(20):
            if deletion.run_deletion(ports(w), job, LATER) != "continue":
                return
    finally:
        deletion._Run._complete = original  # type: ignore[method-assign]
    raise AssertionError("the erasure did not end")


def lift(w: World, tenant: str) -> None:
    subject_rights.lift_hold(w.subject_rights, tenant, "u-7", NOW)


def forget_held_by(run_: Any) -> None:
    """As a receipt inventoried before receipts named the hold."""
    receipt = run_.receipt.model_copy(update={"held_by": None})
    run_.item = run_.item.model_copy(update={"result": receipt})


def test_a_held_erasure_completes_with_exceptions_and_the_subject_is_restricted(world: World, tenant: str) -> None:
    job = world.deletion_jobs.sent[-1]
    run(world, job)
    record = world.requests.get(tenant, job.request_id)
    assert record is not None and record.status == "completed_with_exceptions"
    assert isinstance(record.result, DeletionReceipt) and record.result.held_by is not None
    assert "hold_lifted" not in record.result.steps
    profile = world.subjects.get_profile(tenant, "u-7")
    assert profile is not None and profile.status == "restricted" and profile.legal_hold is not None
    assert world.subjects.all_interactions(tenant, "u-7") != []


@pytest.mark.parametrize("legacy", [False, True])
def test_a_hold_lifted_before_the_completion_makes_the_same_record_erase_everything(
    world: World, tenant: str, legacy: bool
) -> None:
    job = world.deletion_jobs.sent[-1]

    def lift_now(run_: Any) -> None:
        if legacy:
            forget_held_by(run_)
        lift(world, tenant)

    run(world, job, lift_now)
    record = world.requests.get(tenant, job.request_id)
    assert record is not None and record.status == "completed" and record.subject_deleted
    assert isinstance(record.result, DeletionReceipt) and record.result.kept == {}
    assert record.result.removed["profile"] == 1 and record.result.removed["interactions"] == 1
    assert "hold_lifted" in record.result.steps
    assert world.subjects.get_profile(tenant, "u-7") is None and world.subjects.all_interactions(tenant, "u-7") == []
    assert world.data_keys.get(tenant, "u-7") is None


def test_a_receipt_that_does_not_name_its_hold_still_completes_restricted_while_the_hold_stands(
    world: World, tenant: str
) -> None:
    job = world.deletion_jobs.sent[-1]
    run(world, job, forget_held_by)
    record = world.requests.get(tenant, job.request_id)
    assert record is not None and record.status == "completed_with_exceptions"
    assert isinstance(record.result, DeletionReceipt) and "hold_lifted" not in record.result.steps  # it never was
    profile = world.subjects.get_profile(tenant, "u-7")
    assert profile is not None and profile.status == "restricted"
