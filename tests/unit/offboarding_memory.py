"""Peak memory of an offboarding's invocations, at a given number of subjects, measured with tracemalloc over the
in-memory ports: each invocation's peak above what it starts or ends with, so that what the fakes store (the
tables, in this process) is not counted as the job's own working set. Packages are hashed and discarded."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

from chatsphere.logic import intake, offboarding
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.offboarding import OffboardingIn
from chatsphere.models.subjects import InteractionIn, SubjectIn
from tests.unit.export_memory import _DiscardingBlobs
from tests.unit.fakes import World

START = datetime(2026, 1, 1, tzinfo=UTC)
TEXTS = 2


def offboarded_world(subjects: int, held: tuple[str, ...] = ()) -> tuple[World, str, str]:
    """A tenant of `subjects` subjects (ids u-0000...), TEXTS interactions each, its offboarding requested."""
    world = World()
    world.blobs = _DiscardingBlobs()
    tenant, _ = world.new_tenant("Bench")
    for n in range(subjects):
        subject = f"u-{n:04d}"
        intake.put_subject(world.intake, tenant, subject, SubjectIn(name="Ada", email=f"a.{n}@example.com"), START)
        for k in range(TEXTS):
            body = InteractionIn(conversation_id="c", role="customer", text=f"message {k}")
            intake.add_interaction(world.intake, tenant, subject, body, START + timedelta(minutes=k))
    from chatsphere.logic import subject_rights
    from chatsphere.models.subjects import LegalHoldIn

    for subject in held:
        subject_rights.place_hold(world.wiring.subject_rights, tenant, subject, LegalHoldIn(reason="Case"), START)
    record, _ = offboarding.request_offboarding(world.wiring.offboarding, tenant, OffboardingIn(), START)
    return world, tenant, record.request_id


def run_to(world: World, tenant: str, request_id: str, now: datetime, peaks: list[int] | None = None) -> None:
    """Both phases, invocation by invocation, confirming in between; each invocation's working set in `peaks`."""
    ports = world.wiring.offboarding
    job = DeletionJob(tenant_id=tenant, request_id=request_id, scope="tenant")
    for ending in ("awaiting_confirmation", "done"):
        while True:
            start = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            outcome = offboarding.run_offboarding(ports, job, now)
            current, peak = tracemalloc.get_traced_memory()
            if peaks is not None:
                peaks.append(peak - max(start, current))
            if outcome == ending:
                break
            assert outcome == "continue", outcome
        if ending == "awaiting_confirmation":
            offboarding.confirm_offboarding(ports, tenant, request_id, now)


def offboarding_peak(subjects: int) -> int:
    """The largest working set of any invocation of the offboarding of `subjects` subjects."""
    world, tenant, request_id = offboarded_world(subjects)
    peaks: list[int] = []
    tracemalloc.start()
    try:
        run_to(world, tenant, request_id, START + timedelta(days=1), peaks)
    finally:
        tracemalloc.stop()
    return max(peaks)
