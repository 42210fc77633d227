"""Retention over in-memory ports (tests/unit/fakes.py): each category, legal holds, the watermark and the late
bucket, the lease, dry runs, and runs interrupted at every call of a clean run (before or after it took effect)
and redone, which must end as the clean run does and count every item once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import pytest

from chatsphere.day_index import DAY_SHARDS, LATE, shard_of
from chatsphere.errors import Conflict
from chatsphere.logic import retention
from chatsphere.logic.object_keys import interaction_blob_key
from chatsphere.logic.retention import RetentionPorts
from chatsphere.models.common import iso
from chatsphere.models.items import InteractionItem, ProfileItem
from chatsphere.models.requests import ExportDetails, ExportResult, RequestItem
from chatsphere.models.retention import IndexedRef, RetentionCounts, RetentionJob, RetentionRunItem
from chatsphere.models.settings import Retention, TenantSettings
from tests.unit.fakes import FakeAnalyticsStore, FakeJobQueue, FakeRetentionStore, World

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def at(days_ago: float, base: datetime = NOW) -> str:
    return iso(base - timedelta(days=days_ago))


@dataclass
class Stage:
    world: World
    store: FakeRetentionStore
    analytics: FakeAnalyticsStore
    jobs: FakeJobQueue[RetentionJob]
    tenant: str

    @property
    def ports(self) -> RetentionPorts:
        swapped = {"retention_store": self.store, "analytics_store": self.analytics, "retention_jobs": self.jobs}
        return self.world.wired(**swapped).retention

    # ------------------------------------------------------------------ seeding, as the API's writes leave it
    def settings(self, analytics_min_count: int = 5, **retention: Any) -> None:
        current = self.world.tenants.get_settings(self.tenant)
        merged = current.retention.model_dump() | retention
        self.world.tenants.settings[self.tenant] = TenantSettings.model_validate(
            current.model_dump()
            | {"retention": Retention.model_validate(merged), "analytics_min_count": analytics_min_count}
        )

    def profile(self, subject_id: str, created_days_ago: float = 0) -> None:
        created = at(created_days_ago)
        profile = ProfileItem(tenant_id=self.tenant, subject_id=subject_id, created_at=created, updated_at=created)
        self.world.subjects.save_profile(profile, None)

    def interaction(
        self,
        subject_id: str,
        days_ago: float,
        long: bool = False,
        received_days_ago: float | None = None,
        interaction_id: str | None = None,
    ) -> str:
        """One interaction (a long one's text in the bucket), received when it occurred unless told otherwise."""
        n = sum(len(v) for v in self.world.subjects.interactions.values())
        interaction_id = interaction_id or f"i{n:04d}"
        blob = interaction_blob_key(self.tenant, subject_id, interaction_id) if long else None
        if blob:
            self.world.blobs.write(blob, b"sealed long text")
        item = InteractionItem(
            tenant_id=self.tenant,
            subject_id=subject_id,
            interaction_id=interaction_id,
            conversation_id=f"c-{subject_id}",
            role="customer",
            channel="web",
            occurred_at=at(days_ago),
            received_at=at(days_ago if received_days_ago is None else received_days_ago),
            text_bytes=10,
            text_sealed=None if long else b"sealed",
            text_blob_key=blob,
        )
        self.world.subjects.add_interaction(item)
        return interaction_id

    def hold(self, subject_id: str, *categories: str) -> None:
        profile = self.world.subjects.profiles[(self.tenant, subject_id)]
        hold = {"reason": "claim 7", "categories": list(categories), "since": at(0), "request_id": "r-hold"}
        self.world.subjects.save_profile(
            profile.model_copy(update={"legal_hold": hold, "version": profile.version + 1}), profile.version
        )

    def lift(self, subject_id: str) -> None:
        profile = self.world.subjects.profiles[(self.tenant, subject_id)]
        self.world.subjects.save_profile(
            profile.model_copy(update={"legal_hold": None, "version": profile.version + 1}), profile.version
        )

    def export(self, request_id: str, completed_days_ago: float) -> str:
        """A completed export whose package is in the bucket; returns the package's key."""
        key = f"tenants/{self.tenant}/exports/{request_id}.zip"
        self.world.blobs.write(key, b"package")
        self.world.blobs.write(key, b"package, written again")
        completed = at(completed_days_ago)
        result = ExportResult(
            package_key=key, expires_at=completed, sha256="0" * 64, bytes=7, interaction_count=0, files=["a.json"]
        )
        record = RequestItem(
            tenant_id=self.tenant,
            request_id=request_id,
            type="export",
            subject_id="u-1",
            status="completed",
            received_at=completed,
            due_at=completed,
            completed_at=completed,
            details=ExportDetails(),
            result=result,
        )
        self.world.requests.create(record)
        return key

    # ------------------------------------------------------------------ reading back
    def texts_left(self, subject_id: str) -> list[str]:
        """The ids of the subject's interactions still stored."""
        return sorted(i.interaction_id for i in self.world.subjects.all_interactions(self.tenant, subject_id))

    def record(self, run_id: str) -> RetentionRunItem:
        found = self.store.get_run(self.tenant, run_id)
        assert found is not None
        return found


@pytest.fixture
def stage() -> Stage:
    world = World()
    tenant = world.new_tenant()[0]
    created = world.tenants.tenants[tenant].model_copy(update={"created_at": at(500)})
    world.tenants.tenants[tenant] = created
    store = FakeRetentionStore(world.subjects, world.requests)
    return Stage(world, store, FakeAnalyticsStore(world.subjects), FakeJobQueue(), tenant)


def run_all(
    stage: Stage, as_of: datetime = NOW, chunk: int = 1000, run_id: str = "run-1", now: datetime = NOW
) -> RetentionRunItem:
    """One run through every chunk, continuing as the handler does; its record."""
    job = RetentionJob(tenant_id=stage.tenant, run_id=run_id, as_of=iso(as_of))
    for _ in range(500):
        result = retention.run_chunk(stage.ports, job, now, chunk)
        if result.outcome != "continue":
            assert result.outcome == "done", result
            return stage.record(run_id)
        job = job.model_copy(update={"acted": result.acted})
    raise AssertionError("the run did not finish")


def counts(record: RetentionRunItem) -> dict[str, Any]:
    return record.counts.model_dump()


# ------------------------------------------------------------------ interactions
@pytest.mark.parametrize("chunk", [1000, 2, 1])
@pytest.mark.parametrize("dynamodb_pages", [False, True], ids=["moto-pages", "dynamodb-pages"])
def test_expired_interactions_go_with_their_long_texts_and_the_counts_are_exact(
    stage: Stage, chunk: int, dynamodb_pages: bool
) -> None:
    stage.store.full_pages_continue = dynamodb_pages
    stage.settings(interactions={"days": 30, "action": "delete"})
    stage.profile("u-1", 200)
    stage.profile("u-2", 200)
    old = [stage.interaction("u-1", 100), stage.interaction("u-1", 101, long=True), stage.interaction("u-2", 31)]
    recent = [stage.interaction("u-1", 29), stage.interaction("u-2", 0)]
    record = run_all(stage, chunk=chunk)
    assert stage.texts_left("u-1") == [recent[0]] and stage.texts_left("u-2") == [recent[1]]
    assert record.status == "completed" and record.finished_at == iso(NOW)
    assert counts(record) == {
        "removed": {"interactions": 3},
        "kept_by_hold": {},
        "still_active": 0,
        "orphans_removed": 0,
    }
    # the long text's every version went; each subject keeps the time of the latest interaction removed
    assert stage.world.blobs.versions_of == {}
    markers = {subject: max(times) for (_, subject), times in stage.store.markers.items()}
    assert markers == {"u-1": at(100), "u-2": at(31)}
    assert stage.store.lease(stage.tenant) is None  # the last commit released it
    assert old[0] not in stage.texts_left("u-1")
    # a second run finds nothing more
    again = run_all(stage, chunk=chunk, run_id="run-2")
    assert again.counts.removed == {} and stage.texts_left("u-1") == [recent[0]]


def test_anonymize_stores_the_days_aggregate_before_its_interactions_go(stage: Stage) -> None:
    stage.settings(analytics_min_count=2, interactions={"days": 30, "action": "anonymize"})
    for n in range(3):
        stage.profile(f"u-{n}", 200)
        stage.interaction(f"u-{n}", 100)
    stage.interaction("u-0", 100)
    seen: list[int] = []
    store = stage.store
    original = store.remove_unless_held

    def check_first(*args: Any) -> Any:
        day = stage.analytics.get_day(stage.tenant, at(100)[:10])
        seen.append(day.interactions or 0 if day else -1)
        return original(*args)

    store.remove_unless_held = check_first  # type: ignore[method-assign,assignment]
    record = run_all(stage)
    assert seen == [4, 4, 4]  # every subject's removal found the day counted, all four interactions in it
    (day,) = stage.analytics.days(stage.tenant, at(100)[:10], at(100)[:10])
    assert (day.subjects, day.interactions, day.by_channel) == (3, 4, {"web": 4})
    assert record.counts.removed == {"interactions": 4} and all(stage.texts_left(f"u-{n}") == [] for n in range(3))


# ------------------------------------------------------------------ legal holds
def test_a_hold_keeps_its_interactions_moves_them_late_without_ttl_and_reports_them_on_each_run(stage: Stage) -> None:
    stage.settings(interactions={"days": 30, "action": "delete"})
    stage.profile("held", 200)
    stage.profile("free", 200)
    kept = sorted([stage.interaction("held", 100), stage.interaction("held", 90)])
    stage.interaction("free", 100)
    stage.hold("held", "interactions")
    first = run_all(stage)
    assert stage.texts_left("held") == kept and stage.texts_left("free") == []
    assert first.counts.removed == {"interactions": 1} and first.counts.kept_by_hold == {"interactions": 2}
    assert stage.store.late_interactions == {(stage.tenant, "held", i) for i in kept}
    late = [
        e
        for s in range(DAY_SHARDS)
        for e in stage.store.due(stage.tenant, "interactions", LATE, s, iso(NOW), None, 99)[0]
    ]
    assert sorted(e.ref.item_id for e in late) == kept and not any(e.expires for e in late)
    assert (stage.tenant, "held") not in stage.store.markers  # nothing was written into the held subject
    # the next run reads them in the late bucket, keeps and reports them again; once lifted, they go
    second = run_all(stage, NOW + timedelta(days=1), run_id="run-2")
    assert second.counts.kept_by_hold == {"interactions": 2} and second.counts.removed == {}
    stage.lift("held")
    third = run_all(stage, NOW + timedelta(days=2), run_id="run-3")
    assert third.counts.removed == {"interactions": 2} and third.counts.kept_by_hold == {}
    assert stage.texts_left("held") == []


@pytest.mark.parametrize("chunk", [1000, 2])
def test_a_hold_placed_between_the_decision_and_the_act_keeps_its_items_counted_once(
    stage: Stage, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage.settings(interactions={"days": 30, "action": "delete"})
    stage.profile("H", 10)
    stage.profile("F", 10)
    kept = sorted(stage.interaction("H", 0) for _ in range(3))
    stage.interaction("F", 0)
    original, fired = retention.act, list[int]()

    def hooked(ports: Any, run: Any, pending: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired and any(ref.subject_id == "H" for ref in pending.remove):
            fired.append(1)
            stage.hold("H", "interactions")
        return original(ports, run, pending, *args, **kwargs)

    monkeypatch.setattr(retention, "act", hooked)
    record = run_all(stage, NOW + timedelta(days=35), chunk)
    assert fired and stage.texts_left("H") == kept and stage.texts_left("F") == []
    assert record.counts.removed == {"interactions": 1} and record.counts.kept_by_hold == {"interactions": 3}
    assert stage.store.late_interactions == {(stage.tenant, "H", i) for i in kept}
    assert (stage.tenant, "H") not in stage.store.markers
    assert {o for (t, r, s, n), o in stage.store.acts.items()} == {"kept", "removed"}


def test_an_item_a_hold_keeps_at_its_act_is_counted_where_the_run_reads_it_again_in_the_late_bucket(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk stops inside a late bucket's shard, after F's back-dated y; H's x (from a day bucket), kept by a
    hold placed before the act, moves to that shard after y: the run reads it there, and counts it there only."""
    stage.settings(interactions={"days": 30, "action": "delete"})
    stage.profile("H", 60)
    stage.profile("F", 60)
    same = [i for i in (f"id{n}" for n in range(100)) if shard_of(i) == shard_of("id0")][:3]
    x = stage.interaction("H", 40, interaction_id=same[0])
    y = stage.interaction("F", 100, received_days_ago=0, interaction_id=same[1])  # back-dated: the late bucket
    z = stage.interaction("F", 90, received_days_ago=0, interaction_id=same[2])
    stage.store.advance_watermark(stage.tenant, "interactions", at(41)[:10])
    original, fired = retention.act, list[Any]()

    def hooked(ports: Any, run: Any, pending: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(run.cursor.after)
            stage.hold("H", "interactions")
        return original(ports, run, pending, *args, **kwargs)

    monkeypatch.setattr(retention, "act", hooked)
    record = run_all(stage, chunk=2)
    assert fired[0] is not None and fired[0].item_id == y  # the first chunk stopped after y, inside x's shard
    assert stage.texts_left("H") == [x] and stage.texts_left("F") == []
    assert record.counts.removed == {"interactions": 2} and record.counts.kept_by_hold == {"interactions": 1}
    assert z not in stage.texts_left("F")


# ------------------------------------------------------------------ inactive profiles
def test_an_inactive_profile_is_erased_through_the_deletion_path_an_active_one_refiled(stage: Stage) -> None:
    stage.settings(interactions={"days": 20, "action": "delete"}, inactive_profiles={"days": 60, "action": "delete"})
    for name in ("idle", "busy", "quiet", "held"):
        stage.profile(name, 100)
    stage.interaction("busy", 5)
    stage.interaction("quiet", 30)  # removed by this very run: its time stays as the marker
    stage.hold("held", "profile")
    record = run_all(stage)
    assert counts(record) == {
        "removed": {"interactions": 1, "inactive_profiles": 1},
        "kept_by_hold": {"inactive_profiles": 1},
        "still_active": 2,
        "orphans_removed": 0,
    }
    profiles = stage.world.subjects.profiles
    assert profiles[(stage.tenant, "idle")].status == "erasing"
    assert len(stage.world.deletion_jobs.sent) == 1
    (deletion,) = [r for r in stage.world.subjects.records if r.type == "deletion"]
    assert deletion.subject_id == "idle" and deletion.details.model_dump()["initiated_by"] == "retention"
    # refiled under their last activity, in the late bucket (the marker's time for quiet)
    assert (profiles[(stage.tenant, "busy")].active_at, profiles[(stage.tenant, "quiet")].active_at) == (at(5), at(30))
    assert profiles[(stage.tenant, "held")].status == "active" and stage.store.late_profiles == {
        (stage.tenant, "held"): profiles[(stage.tenant, "held")].version
    }
    # 35 days on, quiet is due (30 + 35 > 60), busy is not (5 + 35 < 60), held is kept again
    later = run_all(stage, NOW + timedelta(days=35), run_id="run-2", now=NOW + timedelta(days=35))
    assert later.counts.removed == {"interactions": 1, "inactive_profiles": 1}  # busy's interaction is 40 days old
    # busy, filed under its activity 5 days before NOW, is not due yet: not read, so not measured again
    assert later.counts.kept_by_hold == {"inactive_profiles": 1} and later.counts.still_active == 0
    assert profiles[(stage.tenant, "quiet")].status == "erasing" and profiles[(stage.tenant, "busy")].status == "active"


def test_an_expired_profile_active_or_held_again_at_its_act_is_not_erased(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage.settings(inactive_profiles={"days": 60, "action": "delete"})
    for name in ("idle", "back", "held"):
        stage.profile(name, 100)
    original, fired = retention.act, list[int]()

    def hooked(ports: Any, run: Any, pending: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired and pending.erase:
            fired.append(1)
            stage.interaction("back", 0)
            stage.hold("held", "profile")
        return original(ports, run, pending, *args, **kwargs)

    monkeypatch.setattr(retention, "act", hooked)
    record = run_all(stage)
    assert fired
    statuses = {s: p.status for (t, s), p in stage.world.subjects.profiles.items()}
    assert statuses == {"idle": "erasing", "back": "active", "held": "active"}
    assert record.counts.removed == {"inactive_profiles": 1} and record.counts.still_active == 1
    assert record.counts.kept_by_hold == {"inactive_profiles": 1}
    assert sorted(stage.store.acts.values()) == ["active", "kept", "removed"]  # each act's outcome, once


# ------------------------------------------------------------------ export packages, closed requests
def test_an_export_package_goes_its_record_says_so_then_the_record_goes_as_a_closed_request(stage: Stage) -> None:
    stage.settings(export_packages={"days": 2}, closed_requests={"days": 30})
    package = stage.export("r-1", 0)
    assert run_all(stage, NOW + timedelta(days=1), run_id="run-1").counts.removed == {}
    assert package in stage.world.blobs.versions_of  # not due yet
    record = run_all(stage, NOW + timedelta(days=3), run_id="run-2", now=NOW + timedelta(days=3))
    assert record.counts.removed == {"export_packages": 1} and package not in stage.world.blobs.versions_of
    export = stage.world.requests.items[(stage.tenant, "r-1")]
    assert isinstance(export.result, ExportResult)
    assert export.result.package_key is None and export.result.package_removed_at == iso(NOW + timedelta(days=3))
    later = NOW + timedelta(days=31)
    assert run_all(stage, later, run_id="run-3", now=later).counts.removed == {"closed_requests": 1}
    assert stage.world.requests.items == {}


# ------------------------------------------------------------------ watermarks, the late bucket
def test_the_watermark_advances_after_the_last_commit_and_days_behind_it_are_not_read_again(stage: Stage) -> None:
    stage.settings(interactions={"days": 5, "action": "delete"})
    stage.profile("u-1", 60)
    stage.interaction("u-1", 30)
    run_all(stage)
    first = {b for c, b, _ in stage.store.queried if c == "interactions"}
    day = (NOW.date() - timedelta(days=6)).isoformat()  # the day before the cutoff's (now - 5 days)
    # the categories whose cutoff's day is after the day before the tenant began (the others have none yet)
    assert stage.store.watermarks(stage.tenant) == {
        "interactions": day,
        "export_packages": (NOW.date() - timedelta(days=8)).isoformat(),
    }
    assert at(30)[:10] in first and at(500)[:10] in first and at(501)[:10] not in first  # since the tenant began
    stage.store.queried.clear()
    run_all(stage, run_id="run-2")
    assert {b for c, b, _ in stage.store.queried if c == "interactions"} == {at(5)[:10], LATE}
    assert stage.texts_left("u-1") == []


def test_a_back_dated_interaction_behind_the_watermark_is_found_in_the_late_bucket(stage: Stage) -> None:
    stage.settings(interactions={"days": 30, "action": "delete"})
    stage.profile("u-1", 200)
    run_all(stage)
    marks = stage.store.watermarks(stage.tenant)
    assert marks["interactions"] == at(31)[:10]
    imported = stage.interaction("u-1", 100, received_days_ago=0)  # received today, its day long past
    kept = stage.interaction("u-1", 10, received_days_ago=0)
    stage.store.queried.clear()
    record = run_all(stage, run_id="run-2")
    assert record.counts.removed == {"interactions": 1} and stage.texts_left("u-1") == [kept]
    assert imported not in stage.texts_left("u-1")
    assert at(100)[:10] not in {b for _, b, _ in stage.store.queried}


def test_a_watermark_never_moves_back(stage: Stage) -> None:
    stage.store.advance_watermark(stage.tenant, "interactions", "2026-05-01")
    stage.store.advance_watermark(stage.tenant, "interactions", "2026-04-01")
    assert stage.store.watermark(stage.tenant, "interactions") == "2026-05-01"


# ------------------------------------------------------------------ the lease
def test_a_second_run_is_refused_while_the_lease_holds_and_takes_over_once_it_expired(stage: Stage) -> None:
    stage.settings(interactions={"days": 30, "action": "delete"})
    stage.profile("u-1", 200)
    for d in (40, 41, 42):
        stage.interaction("u-1", d)
    first = RetentionJob(tenant_id=stage.tenant, run_id="run-1", as_of=iso(NOW))
    assert retention.run_chunk(stage.ports, first, NOW, 1).outcome == "continue"
    assert stage.store.lease(stage.tenant) == ("run-1", iso(NOW + retention.LEASE))
    second = RetentionJob(tenant_id=stage.tenant, run_id="run-2", as_of=iso(NOW))
    assert retention.run_chunk(stage.ports, second, NOW + timedelta(minutes=59), 1).outcome == "skipped"
    assert stage.store.get_run(stage.tenant, "run-2") is None
    # the first run stopped: past its lease, the second takes the tenant over and finishes what it left
    later = NOW + timedelta(hours=2)
    job, outcome = second, "continue"
    while outcome == "continue":
        result = retention.run_chunk(stage.ports, job, later, 1)
        outcome, job = result.outcome, job.model_copy(update={"acted": result.acted})
    assert outcome == "done" and stage.texts_left("u-1") == []
    assert stage.record("run-1").status == "abandoned" and stage.record("run-1").pending is None
    assert stage.record("run-2").replaces == "run-1" and stage.record("run-2").counts.removed == {"interactions": 2}
    # the first run's message, coming back, does nothing
    assert retention.run_chunk(stage.ports, first, later, 1).outcome == "skipped"
    assert stage.texts_left("u-1") == [] and stage.store.lease(stage.tenant) is None


def test_a_chunk_committed_by_another_worker_of_the_run_is_not_acted_on_twice(stage: Stage) -> None:
    stage.settings(interactions={"days": 30, "action": "delete"})
    stage.profile("u-1", 200)
    stage.interaction("u-1", 40)
    stage.interaction("u-1", 41)
    job = RetentionJob(tenant_id=stage.tenant, run_id="run-1", as_of=iso(NOW))
    assert retention.run_chunk(stage.ports, job, NOW, 1).outcome == "continue"
    stale = stage.record("run-1")
    again = job.model_copy(update={"acted": stale.seq})
    assert retention.run_chunk(stage.ports, again, NOW, 1).outcome == "continue"
    # a worker that read the record before that commit loses the race at its own commit
    with pytest.raises(Conflict):
        retention._commit(stage.ports, stale, stale.model_copy(update={"seq": stale.seq + 1}), False, NOW)
    assert stage.record("run-1").counts.removed == {"interactions": 2}


# ------------------------------------------------------------------ dry runs
def snapshot(stage: Stage) -> Any:
    s, w = stage.store, stage.world
    return (
        dict(s.runs),
        dict(s.leases),
        dict(s.marks),
        dict(s.acts),
        set(s.late_interactions),
        dict(s.late_profiles),
        {k: dict(v) for k, v in w.subjects.interactions.items()},
        {k: p.model_dump() for k, p in w.subjects.profiles.items()},
        {k: r.model_dump() for k, r in w.requests.items.items()},
        {k: list(v) for k, v in w.blobs.versions_of.items()},
        len(w.deletion_jobs.sent),
        dict(stage.analytics.aggregates),
    )


def test_a_dry_run_counts_what_a_run_would_do_and_writes_nothing_even_while_a_run_holds_the_tenant(
    stage: Stage,
) -> None:
    stage.settings(interactions={"days": 30, "action": "anonymize"}, inactive_profiles={"days": 60, "action": "delete"})
    stage.profile("u-1", 200)
    stage.profile("held", 200)
    for d in (40, 41, 42, 5):
        stage.interaction("u-1", d)
    stage.interaction("held", 40)
    stage.hold("held", "interactions", "profile")
    stage.export("r-1", 10)
    job = RetentionJob(tenant_id=stage.tenant, run_id="held-run", as_of=iso(NOW))
    assert retention.run_chunk(stage.ports, job, NOW, 1).outcome == "continue"  # it holds the lease, 1 removed
    before = snapshot(stage)
    found = retention.dry_run(stage.ports, stage.tenant, NOW, NOW)
    assert found == RetentionCounts(
        removed={"interactions": 2, "export_packages": 1},
        kept_by_hold={"interactions": 1, "inactive_profiles": 1},
        still_active=1,
    )
    assert snapshot(stage) == before


# ------------------------------------------------------------------ interrupted runs
class Fault(Exception):
    pass


@dataclass
class Calls:
    n: int = 0
    fail_at: int = 0
    after: bool = False  # the k-th call takes effect, then fails (its answer lost)
    hook: Callable[[], None] | None = None  # what happens at the interruption


class Interrupting:
    """A port whose every call is counted; the k-th fails, before or after it takes effect."""

    def __init__(self, port: Any, calls: Calls) -> None:
        self._port, self._calls = port, calls

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._port, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            calls = self._calls
            calls.n += 1
            if calls.n != calls.fail_at:
                return target(*args, **kwargs)
            if calls.after:
                target(*args, **kwargs)
            if calls.hook:
                calls.hook()
            raise Fault(f"interrupted at call {calls.n}")

        return call


def interrupting(port: T, calls: Calls) -> T:
    return cast(T, Interrupting(port, calls))


def interrupted_run(stage: Stage, calls: Calls, chunk: int = 2) -> RetentionRunItem:
    """The run through ports that fail at the k-th call, its message redelivered until it is done."""
    p = stage.ports
    ports = replace(
        p,
        store=interrupting(p.store, calls),
        blobs=interrupting(p.blobs, calls),
        subjects=interrupting(p.subjects, calls),
        aggregates=interrupting(p.aggregates, calls),
    )
    job = RetentionJob(tenant_id=stage.tenant, run_id="run-1", as_of=iso(NOW))
    for _ in range(200):
        try:
            result = retention.run_chunk(ports, job, NOW, chunk)
        except Fault:
            continue  # the message comes back: the same job again
        if result.outcome == "done":
            return stage.record("run-1")
        job = job.model_copy(update={"acted": result.acted})
    raise AssertionError("the run did not finish")


def seeded(hook: Callable[[Stage], None] | None = None) -> tuple[Stage, Calls]:
    world = World()
    tenant = world.new_tenant()[0]
    world.tenants.tenants[tenant] = world.tenants.tenants[tenant].model_copy(update={"created_at": at(200)})
    stage = Stage(
        world,
        FakeRetentionStore(world.subjects, world.requests),
        FakeAnalyticsStore(world.subjects),
        FakeJobQueue(),
        tenant,
    )
    stage.settings(
        analytics_min_count=2,
        interactions={"days": 30, "action": "anonymize"},
        inactive_profiles={"days": 60, "action": "delete"},
        export_packages={"days": 2},
        closed_requests={"days": 30},
    )
    for s, days in (("a", (40, 41, 10)), ("b", (40, 41, 10)), ("c", (40, 10))):
        stage.profile(s, 70)
        for d in days:
            stage.interaction(s, d, long=d == 41)
    stage.profile("idle", 70)
    # the watermarks of earlier runs, a few days before what is due: each run reads a few days' buckets
    for category, days_ago in (("interactions", 42), ("export_packages", 11), ("inactive_profiles", 71)):
        stage.store.advance_watermark(tenant, category, at(days_ago)[:10])
    stage.store.advance_watermark(tenant, "closed_requests", at(32)[:10])
    stage.hold("c", "interactions")
    stage.export("r-1", 10)
    calls = Calls()
    if hook is not None:
        calls.hook = lambda: hook(stage)
    return stage, calls


def outcome_of(stage: Stage, record: RetentionRunItem) -> dict[str, Any]:
    return {
        "counts": counts(record),
        "left": {s: stage.texts_left(s) for s in ("a", "b", "c")},
        "blobs": sorted(stage.world.blobs.versions_of),
        "statuses": {s: p.status for (t, s), p in sorted(stage.world.subjects.profiles.items())},
        "deletions": sorted(r.subject_id for r in stage.world.subjects.records if r.type == "deletion"),
        "days": [d.day for d in stage.analytics.days(stage.tenant, "2026-01-01", "2026-12-31")],
        "marks": stage.store.watermarks(stage.tenant),
        "lease": stage.store.lease(stage.tenant),
    }


def clean_run() -> tuple[dict[str, Any], int]:
    stage, calls = seeded()
    record = interrupted_run(stage, calls)
    return outcome_of(stage, record), calls.n


def test_the_clean_run_that_the_interrupted_ones_are_held_to() -> None:
    expected, total = clean_run()
    assert expected["counts"] == {
        "removed": {"interactions": 4, "export_packages": 1, "inactive_profiles": 1},
        "kept_by_hold": {"interactions": 1, "inactive_profiles": 1},  # c's hold keeps its profile from expiring
        "still_active": 2,
        "orphans_removed": 0,
    }
    assert expected["left"] == {"a": ["i0002"], "b": ["i0005"], "c": ["i0006", "i0007"]}
    assert expected["statuses"] == {"a": "active", "b": "active", "c": "active", "idle": "erasing"}
    assert expected["deletions"] == ["idle"] and expected["days"] == [at(41)[:10], at(40)[:10]]
    assert expected["blobs"] == [] and expected["lease"] is None and total > 40


@pytest.mark.parametrize("after", [False, True], ids=["before-its-effect", "after-its-effect"])
def test_a_run_interrupted_at_any_call_and_redone_ends_as_the_clean_run_counting_each_item_once(after: bool) -> None:
    expected, total = clean_run()
    for k in range(1, total + 1):
        stage, calls = seeded()
        calls.fail_at, calls.after = k, after
        record = interrupted_run(stage, calls)
        assert outcome_of(stage, record) == expected, k
        # every act's outcome was recorded once: the redo did not decide any act again
        assert all(o in ("removed", "kept", "active", "left") for o in stage.store.acts.values()), k


def test_a_hold_and_an_erasure_arriving_at_an_interruption_keep_what_was_left_of_theirs() -> None:
    """At the k-th call, b is put under a hold on interactions and a's erasure begins: whatever of theirs was still
    there then stays, nothing is written into them after it, and the counts say exactly that."""
    _, total = clean_run()
    exercised = set()
    for k in range(1, total + 1):
        found: dict[str, list[str]] = {}

        def intervene(stage: Stage, found: dict[str, list[str]] = found) -> None:
            found.update({s: stage.texts_left(s) for s in ("a", "b")})
            found["markers"] = sorted(s for (_, s) in stage.store.markers if s in ("a", "b"))
            stage.hold("b", "interactions")
            a = stage.world.subjects.profiles[(stage.tenant, "a")]
            erasing = {"status": "erasing", "deletion_request_id": "r-erasure", "version": a.version + 1}
            stage.world.subjects.save_profile(a.model_copy(update=erasing), a.version)

        stage, calls = seeded(intervene)
        calls.fail_at = k
        record = interrupted_run(stage, calls)
        if not found:  # the run ended before its k-th call
            continue
        assert {s: stage.texts_left(s) for s in ("a", "b")} == {s: found[s] for s in ("a", "b")}, k
        assert sorted(s for (_, s) in stage.store.markers if s in ("a", "b")) == found["markers"], k
        due = {i for i in ("i0000", "i0001", "i0003", "i0004")}
        spared = {i for s in ("a", "b") for i in found[s]} & due
        b_spared = len(set(found["b"]) & due)
        exercised.add(len(spared))
        assert record.counts.removed.get("interactions", 0) == 4 - len(spared), k
        assert record.counts.kept_by_hold.get("interactions") == 1 + b_spared, k
    assert 4 in exercised and 0 in exercised, exercised


def test_the_item_key_layout_stays_in_the_dal() -> None:
    """logic/retention.py names no storage key: its refs are the DAL's to turn into keys."""
    import inspect

    source = inspect.getsource(retention)
    assert "chatsphere.dal" not in source and '["sk"]' not in source and '["pk"]' not in source


# ------------------------------------------------------------------ the API's view
def test_runs_are_listed_newest_first_in_signed_pages_that_end_with_the_last_run(stage: Stage) -> None:
    for n in range(5):
        run_all(stage, run_id=retention.new_run_id(NOW + timedelta(minutes=n)), now=NOW + timedelta(minutes=n))
    secret = stage.world.secret
    first = retention.list_runs(stage.store, secret, stage.tenant, 2, None)
    assert [r.started_at for r in first.items] == [iso(NOW + timedelta(minutes=m)) for m in (4, 3)]
    assert first.next_cursor is not None
    second = retention.list_runs(stage.store, secret, stage.tenant, 2, first.next_cursor)
    assert [r.started_at for r in second.items] == [iso(NOW + timedelta(minutes=m)) for m in (2, 1)]
    assert second.next_cursor is not None
    last = retention.list_runs(stage.store, secret, stage.tenant, 2, second.next_cursor)
    assert [r.started_at for r in last.items] == [iso(NOW)] and last.next_cursor is None
    # a cursor signed when pages were by sort key (RUN#<run id>) reads the same page
    from chatsphere.logic import cursors

    old = cursors.sign(secret(stage.tenant), retention.CURSOR_SCOPE, f"RUN#{first.items[-1].run_id}")
    assert retention.list_runs(stage.store, secret, stage.tenant, 2, old) == second


def test_a_run_record_written_before_refs_is_read_in_todays_form() -> None:
    """Every run record keeps its last chunk's decisions: one stored by the earlier code (table keys) loads, so
    that the runs' listing reads it and a run in flight across the deploy goes on (dal/retention.load_run)."""
    import json

    from chatsphere.dal.retention import load_run

    t, when = "t1", "2026-05-01T10:00:00.000000Z"
    pk = f"T#{t}#S#u-1"
    legacy = {
        "tenant_id": t,
        "run_id": "r",
        "as_of": when,
        "started_at": when,
        "cursor": {
            "category": 0,
            "bucket": 9,
            "start_key": {"pk": pk, "sk": f"I#{when}#i9", "day_pk": "x", "day_sk": f"{when}#i9"},
        },
        "pending": {
            "category": "interactions",
            "remove": [{"pk": pk, "sk": f"I#{when}#i1"}, {"pk": f"T#{t}", "sk": "R#req-1"}],
            "texts": {f"I#{when}#i1": "tenants/t1/blob"},
            "refile": [{"pk": pk, "sk": "PROFILE", "day_sk": f"{when}#u-1"}],
            "filed": {"u-1": f"{when}#u-1"},
        },
    }
    run = load_run(json.dumps(legacy))
    interaction = IndexedRef(kind="interaction", item_id="i1", at=when, subject_id="u-1")
    profile = IndexedRef(kind="profile", item_id="u-1", at=when, subject_id="u-1")
    assert run.cursor.after == IndexedRef(kind="interaction", item_id="i9", at=when, subject_id="u-1")
    assert run.pending is not None
    assert run.pending.remove == [interaction, IndexedRef(kind="request", item_id="req-1", at="")]
    assert run.pending.texts == {"i1": "tenants/t1/blob"}
    assert run.pending.refile == [profile] and run.pending.filed == {"u-1": profile}
    # and a record in today's form reads as it was written
    assert load_run(run.model_dump_json()) == run
