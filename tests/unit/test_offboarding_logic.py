"""Offboarding's logic over the in-memory ports: the return before anything is deleted, the delete phase once
confirmed, a held subject kept and reported, counts taken once, and each invocation's memory flat however many
subjects the tenant has."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chatsphere.errors import Conflict
from chatsphere.logic import offboarding
from chatsphere.models.offboarding import OffboardingIn
from chatsphere.models.requests import OffboardingResult
from tests.unit.offboarding_memory import START, TEXTS, offboarded_world, offboarding_peak, run_to


def test_the_return_comes_first_and_nothing_is_deleted_before_the_confirmation() -> None:
    world, tenant, request_id = offboarded_world(3)
    ports = world.wiring.offboarding
    with pytest.raises(Conflict):
        offboarding.confirm_offboarding(ports, tenant, request_id, START)
    again, new = offboarding.request_offboarding(ports, tenant, OffboardingIn(format="csv"), START)
    assert (again.request_id, new) == (request_id, False)
    from chatsphere.models.deletion import DeletionJob

    job = DeletionJob(tenant_id=tenant, request_id=request_id, scope="tenant")
    assert offboarding.run_offboarding(ports, job, START) == "awaiting_confirmation"
    assert world.subjects.count_subjects(tenant) == 3
    item = world.requests.get(tenant, request_id)
    assert item is not None and item.status == "awaiting_confirmation" and isinstance(item.result, OffboardingResult)
    assert (item.result.packages, item.result.interactions) == (3, 3 * TEXTS)
    lines, _ = world.offboarding.lines(tenant, request_id, 10)
    assert [line.subject_id for line in lines] == ["u-0000", "u-0001", "u-0002"]
    assert offboarding.run_offboarding(ports, job, START) == "awaiting_confirmation"  # a redelivery changes nothing


def test_everything_goes_but_what_a_hold_keeps_and_the_tenant_ends_offboarded() -> None:
    world, tenant, request_id = offboarded_world(4, held=("u-0002",))
    run_to(world, tenant, request_id, START + timedelta(hours=1))
    item = world.requests.get(tenant, request_id)
    assert item is not None and item.status == "completed_with_exceptions"
    result = item.result
    assert isinstance(result, OffboardingResult)
    assert result.erased == 3 and [k.subject_id for k in result.kept] == ["u-0002"]
    assert result.kept[0].hold_request_id is not None and result.kept[0].subject_hash != "u-0002"
    assert result.removed["interactions"] == 3 * TEXTS and result.removed["api_keys"] == 1
    assert not any((result.remaining or {}).values())
    assert world.subjects.count_subjects(tenant) == 1
    assert world.offboarding.leftovers(tenant, request_id, 10) == []
    assert [r for (t, r) in world.requests.items if t == tenant] == [request_id]  # only the offboarding's own
    gone = world.tenants.tenants[tenant]
    assert gone.status == "offboarded" and gone.hmac_key_wrapped is None
    entries = [e for e in world.outbox.entries(tenant) if e.type == "offboarding.receipt"]
    assert len(entries) == 1 and entries[0].data["subjects_erased"] == 3


def test_an_invocations_memory_stays_flat_from_1_to_1000_subjects() -> None:
    small, large = offboarding_peak(1), offboarding_peak(1000)
    print(f"offboarding peak memory: 1 subject {small / 1024:.0f} KiB, 1000 {large / 1024:.0f} KiB")
    assert large <= 1.5 * small, (small, large)
