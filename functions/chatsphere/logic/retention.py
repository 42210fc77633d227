"""Retention (the policy's "only as long as necessary"): each tenant's run removes what its settings say is due.

A run is one tenant's pass at one `as_of`. It walks each category's day buckets after the category's watermark,
then its late bucket, reading the day index only (never a Scan). A chunk is decided (read-only), committed to the
run record with the counts and the decisions (`pending`), and only then acted on; a rerun redoes the last pending
chunk, whose every act is idempotent. So an interruption anywhere neither leaves a due item behind nor counts one
twice, and the run record's counts are exact.

What a category's items become:
- interactions: removed (with their long-text objects); `anonymize` first makes sure the day's anonymous aggregate
  exists (logic/analytics.py). Each subject keeps a marker of the latest removed interaction's time, so that a
  profile's inactivity is still measured from it.
- export_packages: every version of the package goes; the record stays, and says so.
- inactive_profiles: the subject is erased through the deletion path (a `deletion` record, initiated_by retention);
  one found active since it was filed is filed again under its last activity.
- closed_requests: the record goes (the tombstone of an erased subject stays).
Whatever a legal hold keeps is moved to the late bucket (read by every run, so it goes once the hold is lifted), its
TTL cleared, and reported as kept."""

from __future__ import annotations

import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from chatsphere.config import RETENTION_CHUNK
from chatsphere.dal.keyspace import DAY_SHARDS, LATE
from chatsphere.errors import Conflict, DomainError
from chatsphere.logic import cursors, deletion, sweep
from chatsphere.logic.ports import (
    BlobStore,
    EventPublisher,
    JobQueue,
    RequestStore,
    SubjectStore,
    TenantSecret,
    TenantStore,
)
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.retention import (
    CATEGORIES,
    Category,
    Cursor,
    DueEntry,
    Pending,
    RetentionCounts,
    RetentionJob,
    RetentionRun,
    RetentionRunItem,
    RetentionRunPage,
)

LEASE = timedelta(hours=1)  # a run that has not committed for this long has stopped; the next run takes over
WATERMARKS = "watermarks"


class RetentionStore(Protocol):
    """The day indexes and retention's own state (dal/retention.py)."""

    def due(
        self,
        tenant_id: str,
        category: Category,
        bucket: str,
        shard: int,
        upto: str,
        start_key: dict[str, str] | None,
        limit: int,
        since: str | None = None,
    ) -> tuple[list[DueEntry], dict[str, str] | None]: ...

    def holds(self, tenant_id: str) -> dict[str, list[str]]: ...

    def last_activity(self, tenant_id: str, subject_id: str) -> str | None: ...

    def remove(
        self, category: Category, tenant_id: str, keys: list[dict[str, str]], markers: dict[str, str]
    ) -> None: ...

    def refile_late(self, category: Category, tenant_id: str, refs: list[dict[str, str]]) -> None: ...

    def reindex_profile(self, tenant_id: str, subject_id: str, active_at: str, version: int) -> None: ...

    def package_gone(self, tenant_id: str, request_id: str, completed_at: str, now: str) -> None: ...

    def watermark(self, tenant_id: str, category: str) -> str | None: ...

    def watermarks(self, tenant_id: str) -> dict[str, str]: ...

    def advance_watermark(self, tenant_id: str, category: str, day: str) -> None: ...

    def lease(self, tenant_id: str) -> tuple[str, str] | None: ...

    def start_run(self, run: RetentionRunItem, until: str, replaces: str | None) -> None: ...

    def get_run(self, tenant_id: str, run_id: str) -> RetentionRunItem | None: ...

    def commit(self, run: RetentionRunItem, until: str | None) -> None: ...

    def abandon(self, tenant_id: str, run_id: str) -> None: ...

    def runs_page(
        self, tenant_id: str, limit: int, after_sk: str | None
    ) -> tuple[list[RetentionRunItem], str | None]: ...


class DayAggregates(Protocol):
    """What `anonymize` needs of analytics: that a day's aggregate exists before its interactions go."""

    def ensure_day(self, tenant_id: str, day: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class RetentionPorts:
    store: RetentionStore
    tenants: TenantStore
    blobs: BlobStore
    jobs: JobQueue[RetentionJob]
    aggregates: DayAggregates
    # the deletion path, for expired profiles
    subjects: SubjectStore
    requests: RequestStore
    deletion_jobs: JobQueue[DeletionJob]
    tombstones: Tombstones
    events: EventPublisher
    erased: sweep.ErasedSubjects  # the orphan sweep's tombstones (logic/sweep.py)


Outcome = Literal["done", "continue", "skipped"]


# ------------------------------------------------------------------ starting runs
def new_run_id(now: datetime) -> str:
    """Sorts by start time (to the microsecond), unique by its random part."""
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


def start_runs(tenants: TenantStore, jobs: JobQueue[RetentionJob], now: datetime, as_of: datetime) -> list[str]:
    """The schedule's fan-out: one run per tenant, each its own job. Returns the tenants started."""
    started = []
    for tenant_id in tenants.tenant_ids():
        jobs.send(RetentionJob(tenant_id=tenant_id, run_id=new_run_id(now), as_of=iso(as_of)))
        started.append(tenant_id)
    return started


def plan_run(ports: RetentionPorts, job: RetentionJob, now: datetime, leased: bool = True) -> RetentionRunItem | None:
    """A new run's record (not yet stored): its cutoffs from the tenant's settings, and where each category's
    buckets start (its watermark). None if another run of the tenant holds the lease (unless not `leased`: a dry
    run writes nothing, so it needs no lease)."""
    lease = ports.store.lease(job.tenant_id) if leased else None
    if lease is not None and lease[1] >= iso(now) and lease[0] != job.run_id:
        return None
    settings = ports.tenants.get_settings(job.tenant_id).retention
    as_of = datetime.fromisoformat(job.as_of)
    days = {
        "interactions": settings.interactions.days,
        "export_packages": settings.export_packages.days,
        "inactive_profiles": settings.inactive_profiles.days,
        "closed_requests": settings.closed_requests.days,
    }
    marks = ports.store.watermarks(job.tenant_id)
    first = ""
    if any(c not in marks for c in CATEGORIES):
        # Nothing of a tenant is filed under a day before it existed (back-dated items go to the late bucket).
        tenant = ports.tenants.get_tenant(job.tenant_id)
        begun = date.fromisoformat(tenant.created_at[:10]) if tenant else as_of.date()
        first = (begun - timedelta(days=1)).isoformat()
    return RetentionRunItem(
        tenant_id=job.tenant_id,
        run_id=job.run_id,
        as_of=job.as_of,
        started_at=iso(now),
        cutoffs={c: iso(as_of - timedelta(days=n)) for c, n in days.items()},
        from_days={c: marks.get(c) or first for c in CATEGORIES},
        anonymise=settings.interactions.action == "anonymize",
        replaces=lease[0] if lease else None,
    )


# ------------------------------------------------------------------ buckets
def buckets(run: RetentionRunItem, category: Category) -> list[tuple[str, int]]:
    """The category's buckets in the order a run reads them: each day after the watermark up to the cutoff's day,
    every shard; then the late bucket, every shard."""
    start = date.fromisoformat(run.from_days[category]) + timedelta(days=1)
    end = date.fromisoformat(run.cutoffs[category][:10])
    days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    return [(day, shard) for day in [*days, LATE] for shard in range(DAY_SHARDS)]


def watermark_after(run: RetentionRunItem, category: Category, now: datetime) -> str | None:
    """The day a finished category's watermark moves to: the day before the cutoff's (that day itself is only
    partly due), never closer than two days to now (an interaction filed on its own day, up to a day late,
    must stay ahead of it)."""
    day = min(
        date.fromisoformat(run.cutoffs[category][:10]) - timedelta(days=1),
        now.date() - timedelta(days=2),
    ).isoformat()
    return day if day > run.from_days[category] else None


# ------------------------------------------------------------------ deciding a chunk (reads only)
@dataclass
class Chunk:
    pending: Pending
    counts: RetentionCounts
    cursor: Cursor
    finished: bool = False


def decide(
    ports: RetentionPorts, run: RetentionRunItem, holds: dict[str, list[str]], limit: int, dry_run: bool = False
) -> Chunk:
    """Read up to `limit` due items from where the run stands, within one category, and decide what becomes
    of each. Nothing is written."""
    cursor = run.cursor.model_copy()
    counts = run.counts.model_copy(deep=True)
    if cursor.category >= len(CATEGORIES):
        return Chunk(Pending(category=CATEGORIES[-1]), counts, cursor, finished=True)
    category = CATEGORIES[cursor.category]
    pending = Pending(category=category)
    chunk = Chunk(pending, counts, cursor)
    plan = buckets(run, category)
    taken = 0
    while taken < limit:
        if cursor.bucket >= len(plan):
            cursor.category, cursor.bucket, cursor.start_key = cursor.category + 1, 0, None
            chunk.finished = cursor.category >= len(CATEGORIES)
            if chunk.finished or _decided(pending):
                break  # a chunk's decisions are of one category
            category = CATEGORIES[cursor.category]
            pending.category, plan = category, buckets(run, category)
            continue
        bucket, shard = plan[cursor.bucket]
        if bucket == LATE and cursor.start_key is None and pending.refile and shard == 0:
            break  # what this chunk moves to the late bucket must be there when the late bucket is read
        entries, next_key = ports.store.due(
            run.tenant_id, category, bucket, shard, run.cutoffs[category], cursor.start_key, limit - taken
        )
        taken += len(entries)
        _decide_entries(ports, run, category, bucket == LATE, entries, holds, chunk, dry_run)
        if next_key is None:
            cursor.bucket, cursor.start_key = cursor.bucket + 1, None
        else:
            cursor.start_key = next_key
    return chunk


def _decided(pending: Pending) -> bool:
    return any(value for name, value in pending if name != "category")


def _add(counts: dict[str, int], category: str, n: int = 1) -> None:
    counts[category] = counts.get(category, 0) + n


def _decide_entries(
    ports: RetentionPorts,
    run: RetentionRunItem,
    category: Category,
    late: bool,
    entries: list[DueEntry],
    holds: dict[str, list[str]],
    chunk: Chunk,
    dry_run: bool,
) -> None:
    p, counts = chunk.pending, chunk.counts
    for entry in entries:
        held = holds.get(entry.subject_id or "")
        # A hold keeps a profile from expiring whatever it covers; interactions only if it names them.
        if held is not None and (category == "inactive_profiles" or "interactions" in held):
            _keep(chunk, category, entry, late, dry_run)
        elif category == "interactions":
            assert entry.subject_id is not None
            p.remove.append(entry.key)
            if entry.text_blob_key:
                p.blobs.append(entry.text_blob_key)
            p.markers[entry.subject_id] = max(p.markers.get(entry.subject_id, ""), entry.at)
            if run.anonymise and entry.at[:10] not in p.anonymised_days:
                p.anonymised_days.append(entry.at[:10])
            _add(counts.removed, category)
        elif category == "inactive_profiles":
            assert entry.subject_id is not None
            last = ports.store.last_activity(run.tenant_id, entry.subject_id)
            active_at = max(entry.at, last or "")
            if active_at > run.cutoffs[category]:
                p.reindex[entry.subject_id] = [active_at, entry.version or 0]
                counts.still_active += 1
            else:
                p.erase.append(entry.subject_id)
                _add(counts.removed, category)
        elif category == "export_packages":
            request_id = entry.key["sk"].removeprefix("R#")
            p.packages_gone[request_id] = entry.at
            if entry.package_key:
                p.blobs.append(entry.package_key)
                _add(counts.removed, category)
        else:
            p.remove.append(entry.key)
            _add(counts.removed, category)


def _keep(chunk: Chunk, category: Category, entry: DueEntry, late: bool, dry_run: bool) -> None:
    """A legal hold keeps it: it moves to the late bucket, without its TTL backstop (which ignores holds).
    Counted once per run: where it is read in the late bucket (a run moves what it finds in a day bucket there
    first), or wherever a dry run finds it (it moves nothing)."""
    if late or dry_run:
        _add(chunk.counts.kept_by_hold, category)
    if not dry_run and (not late or entry.expires):
        chunk.pending.refile.append({**entry.key, "day_sk": entry.day_sk})


# ------------------------------------------------------------------ acting (idempotent)
def act(ports: RetentionPorts, run: RetentionRunItem, pending: Pending, now: datetime) -> None:
    """Carry out a committed chunk. Every act is idempotent, so a rerun may redo it whole."""
    tenant, category = run.tenant_id, pending.category
    for day in pending.anonymised_days:  # the aggregate first: then the interactions may go
        ports.aggregates.ensure_day(tenant, day, now)
    if pending.refile:
        ports.store.refile_late(category, tenant, pending.refile)
    for key in pending.blobs:
        versions = [(k, v) for k, v, _ in ports.blobs.versions(key, 1000) if k == key]
        ports.blobs.delete_versions(versions)
    for request_id, completed_at in pending.packages_gone.items():
        ports.store.package_gone(tenant, request_id, completed_at, iso(now))
    if pending.remove or pending.markers:
        ports.store.remove(category, tenant, pending.remove, pending.markers)
    for subject_id, (active_at, version) in pending.reindex.items():
        ports.store.reindex_profile(tenant, subject_id, str(active_at), int(version))
    for subject_id in pending.erase:
        with suppress(DomainError):  # erased or closed meanwhile: nothing of it is left to expire
            deletion.request_deletion(
                ports.subjects,
                ports.tenants,
                ports.requests,
                ports.deletion_jobs,
                ports.blobs,
                ports.events,
                ports.tombstones,
                tenant,
                subject_id,
                now,
                initiated_by="retention",
            )


# ------------------------------------------------------------------ a run, chunk by chunk
@dataclass(frozen=True)
class ChunkResult:
    outcome: Outcome
    removed: dict[str, int]  # what this chunk removed, per category (for metrics)
    acted: int | None = None  # the seq of the chunk committed and carried out (the continuation says so)


def run_chunk(ports: RetentionPorts, job: RetentionJob, now: datetime, chunk: int = RETENTION_CHUNK) -> ChunkResult:
    """One invocation's share of a run: redo the last committed chunk if it may not have finished, decide the
    next, commit it (with the counts, the cursor and, at the end, the watermarks), act on it."""
    run = ports.store.get_run(job.tenant_id, job.run_id)
    if run is None:
        run = plan_run(ports, job, now)
        if run is None:
            return ChunkResult("skipped", {})  # another run of the tenant holds the lease
    elif run.status == "abandoned":
        return ChunkResult("skipped", {})  # a later run took the tenant over (and finds what this one left)
    elif run.pending is not None and job.acted != run.seq:  # the last chunk may not have been carried out
        act(ports, run, run.pending, now)
        if run.status == "completed":  # it was the last one
            _sweep(ports, run)
            _advance_watermarks(ports, run, now)
            return ChunkResult("done", {}, run.seq)
    if run.status != "running":
        return ChunkResult("skipped", {})
    holds = ports.store.holds(run.tenant_id)
    decided = decide(ports, run, holds, chunk)
    before = dict(run.counts.removed)
    update: dict[str, object] = {
        "cursor": decided.cursor,
        "counts": decided.counts,
        "pending": decided.pending,
        "seq": run.seq + 1,
    }
    if decided.finished:
        update.update(status="completed", finished_at=iso(now))
        decided.counts.orphans_removed = _orphans(ports, run.tenant_id, run.as_of)  # counted before it acts
    committed = run.model_copy(update=update)
    try:
        committed = _commit(ports, run, committed, decided.finished, now)
    except Conflict:  # another worker of this run committed first, or another run took the tenant: it goes on
        return ChunkResult("skipped", {})
    act(ports, committed, decided.pending, now)
    if decided.finished:
        _sweep(ports, committed)
        _advance_watermarks(ports, committed, now)
    removed = {c: n - before.get(c, 0) for c, n in decided.counts.removed.items() if n != before.get(c, 0)}
    return ChunkResult("done" if decided.finished else "continue", removed, committed.seq)


def _orphans(ports: RetentionPorts, tenant_id: str, as_of: str) -> int:
    p = ports
    return sweep.count_orphans(p.erased, p.subjects, p.blobs, p.tombstones, tenant_id, datetime.fromisoformat(as_of))


def _sweep(ports: RetentionPorts, run: RetentionRunItem) -> None:
    """The orphan sweep (logic/sweep.py), once the run's last chunk is committed, with its count."""
    p, as_of = ports, datetime.fromisoformat(run.as_of)
    sweep.remove_orphans(p.erased, p.subjects, p.blobs, p.tombstones, run.tenant_id, as_of)


def _advance_watermarks(ports: RetentionPorts, run: RetentionRunItem, now: datetime) -> None:
    for category in CATEGORIES:
        day = watermark_after(run, category, now)
        if day is not None:
            ports.store.advance_watermark(run.tenant_id, category, day)


def _commit(
    ports: RetentionPorts, run: RetentionRunItem, committed: RetentionRunItem, finished: bool, now: datetime
) -> RetentionRunItem:
    """Store the chunk's decisions; a new run's first commit also takes the lease, the last one releases it."""
    if run.seq > 0:
        ports.store.commit(committed, None if finished else iso(now + LEASE))
        return committed
    ports.store.start_run(committed, iso(now + LEASE), run.replaces)
    if run.replaces:
        ports.store.abandon(run.tenant_id, run.replaces)
    if finished:
        committed = committed.model_copy(update={"seq": committed.seq + 1})
        ports.store.commit(committed, None)
    return committed


def dry_run(ports: RetentionPorts, tenant_id: str, as_of: datetime, now: datetime) -> RetentionCounts:
    """What a run at `as_of` would remove and keep, per category; nothing is written, the lease is not taken."""
    job = RetentionJob(tenant_id=tenant_id, run_id="dry-run", as_of=iso(as_of))
    run = plan_run(ports, job, now, leased=False)
    assert run is not None
    holds = ports.store.holds(tenant_id)
    while True:
        decided = decide(ports, run, holds, RETENTION_CHUNK, dry_run=True)
        run = run.model_copy(update={"cursor": decided.cursor, "counts": decided.counts})
        if decided.finished:
            return run.counts.model_copy(update={"orphans_removed": _orphans(ports, tenant_id, run.as_of)})


# ------------------------------------------------------------------ the API's view
CURSOR_SCOPE = "retention-runs"


def list_runs(
    store: RetentionStore, secret: TenantSecret, tenant_id: str, limit: int, cursor: str | None
) -> RetentionRunPage:
    key = secret(tenant_id)
    after = cursors.verify(key, CURSOR_SCOPE, cursor) if cursor else None
    items, last = store.runs_page(tenant_id, limit, after)
    return RetentionRunPage(
        items=[
            RetentionRun(
                run_id=r.run_id,
                as_of=r.as_of,
                started_at=r.started_at,
                finished_at=r.finished_at,
                status=r.status,
                removed=r.counts.removed,
                kept_by_hold=r.counts.kept_by_hold,
                still_active_profiles=r.counts.still_active,
                orphans_removed=r.counts.orphans_removed,
            )
            for r in items
        ],
        next_cursor=cursors.sign(key, CURSOR_SCOPE, last) if last else None,
    )
