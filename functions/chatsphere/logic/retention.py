"""Retention (the policy's "only as long as necessary"): each tenant's run removes what its settings say is due.

A run is one tenant's pass at one `as_of`. It walks each category's day buckets after the category's watermark,
then its late bucket, reading the day index only (never a Scan). A chunk is decided (read-only), committed to the
run record with the counts and the decisions (`pending`), and only then acted on; a rerun redoes the last pending
chunk, whose every act is idempotent. So an interruption anywhere neither leaves a due item behind nor counts one
twice, and the run record's counts are exact.

A decision is not trusted at its act: a hold may be placed, or the subject erased, in between (or before a redo).
Each subject's removals are one transaction whose own condition is the profile's (it exists, its status is
active or deactivated, no hold covers the category), and an expired profile is checked again (hold, status,
activity) and erased only at the version checked. What an act found is recorded once per act (`Act`), so a redo
neither repeats nor recounts it, and the counts are settled with it before the run goes on.

What a category's items become:
- interactions: removed (with their long-text objects); `anonymize` first makes sure the day's anonymous aggregate
  exists (logic/analytics.py). Each subject keeps a marker of the latest removed interaction's time, so that a
  profile's inactivity is still measured from it.
- export_packages: every version of the package goes; the record stays, and says so.
- inactive_profiles: the subject is erased through the deletion path (a `deletion` record, initiated_by retention);
  one found active since it was filed is filed again under its last activity.
- closed_requests: the record goes (the tombstone of an erased subject stays).
Whatever a legal hold keeps is moved to the late bucket (read by every run, so it goes once the hold is lifted), its
TTL cleared, and reported as kept. What belongs to a subject being erased (or restricted) is left to its erasure."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from chatsphere.config import RETENTION_CHUNK
from chatsphere.day_index import DAY_SHARDS, LATE, shard_of
from chatsphere.errors import Conflict, DomainError
from chatsphere.logic import cursors, deletion, sweep
from chatsphere.logic.ports import (
    BlobStore,
    DayAggregates,
    DeletedSubjects,
    JobQueue,
    RetentionStore,
    SubjectStore,
    TenantDirectory,
    TenantSecret,
    TenantStore,
)
from chatsphere.models.common import iso
from chatsphere.models.retention import (
    CATEGORIES,
    REMOVALS_PER_TRANSACTION,
    Act,
    ActOutcome,
    Category,
    Cursor,
    DueEntry,
    IndexedRef,
    Pending,
    RetentionCounts,
    RetentionJob,
    RetentionRun,
    RetentionRunItem,
    RetentionRunPage,
)
from chatsphere.models.subjects import LegalHold

LEASE = timedelta(hours=1)  # a run that has not committed for this long has stopped; the next run takes over
WATERMARKS = "watermarks"


@dataclass(frozen=True)
class RetentionPorts:
    store: RetentionStore
    tenants: TenantDirectory
    blobs: BlobStore
    jobs: JobQueue[RetentionJob]
    aggregates: DayAggregates
    subjects: SubjectStore  # the profiles an act is conditional on
    deletion: deletion.DeletionPorts  # the deletion path, for expired profiles
    deleted_subjects: DeletedSubjects  # the orphan sweep's tombstones (logic/sweep.py)


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
            cursor.category, cursor.bucket, cursor.after = cursor.category + 1, 0, None
            chunk.finished = cursor.category >= len(CATEGORIES)
            if chunk.finished or _decided(pending):
                break  # a chunk's decisions are of one category
            category = CATEGORIES[cursor.category]
            pending.category, plan = category, buckets(run, category)
            continue
        bucket, shard = plan[cursor.bucket]
        if bucket == LATE and cursor.after is None and pending.refile and shard == 0:
            break  # what this chunk moves to the late bucket must be there when the late bucket is read
        entries, after = ports.store.due(
            run.tenant_id, category, bucket, shard, run.cutoffs[category], cursor.after, limit - taken
        )
        taken += len(entries)
        _decide_entries(ports, run, category, bucket == LATE, entries, holds, chunk, dry_run)
        if after is None:
            cursor.bucket, cursor.after = cursor.bucket + 1, None
        else:
            cursor.after = after
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
            p.remove.append(entry.ref)
            if entry.text_blob_key:
                p.texts[entry.ref.item_id] = entry.text_blob_key
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
                p.filed[entry.subject_id] = entry.ref
                _add(counts.removed, category)
        elif category == "export_packages":
            p.packages_gone[entry.ref.item_id] = entry.at
            if entry.package_key:
                p.blobs.append(entry.package_key)
                _add(counts.removed, category)
        else:
            p.remove.append(entry.ref)
            _add(counts.removed, category)


def _keep(chunk: Chunk, category: Category, entry: DueEntry, late: bool, dry_run: bool) -> None:
    """A legal hold keeps it: it moves to the late bucket, without its TTL backstop (which ignores holds).
    Counted once per run: where it is read in the late bucket (a run moves what it finds in a day bucket there
    first), or wherever a dry run finds it (it moves nothing)."""
    if late or dry_run:
        _add(chunk.counts.kept_by_hold, category)
    if not dry_run and (not late or entry.expires):
        chunk.pending.refile.append(entry.ref)


# ------------------------------------------------------------------ acting (idempotent)
OPEN = ("active", "deactivated")  # the statuses retention writes into (dal/retention.OPEN_STATUSES)
ACT_ATTEMPTS = 3  # re-checks of a subject whose profile changed between an act's check and its write


@dataclass(frozen=True)
class Removal:
    """One subject's share of a chunk's removals, at most REMOVALS_PER_TRANSACTION items: one conditional write."""

    name: str  # its act's name
    subject_id: str
    refs: list[IndexedRef]
    blobs: list[str]  # the long texts of these items
    marker: str  # the latest time it removes: the subject's activity marker


def removals(pending: Pending) -> list[Removal]:
    """The chunk's interaction removals by subject (sorted), each subject's items in transactions of at most
    REMOVALS_PER_TRANSACTION: the same list for every attempt, so that an act's name says the same items."""
    by_subject: dict[str, list[IndexedRef]] = {}
    for ref in pending.remove:
        assert ref.subject_id is not None
        by_subject.setdefault(ref.subject_id, []).append(ref)
    found: list[Removal] = []
    for subject_id in sorted(by_subject):
        refs = sorted(by_subject[subject_id], key=lambda r: r.position)
        for start in range(0, len(refs), REMOVALS_PER_TRANSACTION):
            part = refs[start : start + REMOVALS_PER_TRANSACTION]
            found.append(
                Removal(
                    name=f"g{len(found)}",
                    subject_id=subject_id,
                    refs=part,
                    blobs=[pending.texts[r.item_id] for r in part if r.item_id in pending.texts],
                    marker=max(r.at for r in part),
                )
            )
    return found


def act(
    ports: RetentionPorts,
    run: RetentionRunItem,
    pending: Pending,
    now: datetime,
    outcomes: dict[str, ActOutcome] | None = None,
) -> dict[str, ActOutcome]:
    """Carry out a committed chunk (`run` as committed with it). Every act is idempotent, so a rerun may redo it
    whole; `outcomes` are those already recorded for the chunk's acts, which a redo does not decide again.
    Returns every act's outcome that is not the decided one (`removed`)."""
    tenant, category = run.tenant_id, pending.category
    found = dict(outcomes or {})
    for day in pending.anonymised_days:  # the aggregate first: then the interactions may go
        ports.aggregates.ensure_day(tenant, day, now)
    if pending.refile:
        ports.store.refile_late(category, tenant, pending.refile)
    for key in pending.blobs:
        _delete_object(ports, key)
    for request_id, completed_at in pending.packages_gone.items():
        ports.store.package_gone(tenant, request_id, completed_at, iso(now))
    if category == "interactions":
        for removal in removals(pending):
            act_ = Act(tenant_id=tenant, run_id=run.run_id, seq=run.seq, name=removal.name)
            found[removal.name] = _remove(ports, act_, category, removal, found.get(removal.name))
    elif pending.remove:
        ports.store.remove(category, tenant, pending.remove)
    for subject_id, (active_at, version) in pending.reindex.items():
        ports.store.reindex_profile(tenant, subject_id, str(active_at), int(version))
    _delete_all(ports, run, pending, now, found)
    return {name: outcome for name, outcome in found.items() if outcome != "removed"}


def _delete_all(
    ports: RetentionPorts, run: RetentionRunItem, pending: Pending, now: datetime, found: dict[str, ActOutcome]
) -> None:
    """The chunk's erasures (acts e0, e1, ...), each recorded in `found`; one recorded already is not redone."""
    for n, subject_id in enumerate(pending.erase):
        name = f"e{n}"
        if name not in found:
            outcome = _delete_expired(ports, run, subject_id, pending.filed.get(subject_id), now)
            found[name] = ports.store.record_outcome(
                Act(tenant_id=run.tenant_id, run_id=run.run_id, seq=run.seq, name=name), outcome
            )


def _delete_object(ports: RetentionPorts, key: str) -> None:
    versions = [(k, v) for k, v, _ in ports.blobs.versions(key, 1000) if k == key]
    ports.blobs.delete_versions(versions)


def _remove(
    ports: RetentionPorts, act_: Act, category: Category, removal: Removal, recorded: ActOutcome | None
) -> ActOutcome:
    """One subject's removals, conditional on its profile at the moment of the write; what a refusal finds decides
    what becomes of the items: a hold keeps them (late bucket, no TTL), an erasure (or restriction) owns them."""
    outcome = recorded
    for _ in range(ACT_ATTEMPTS):
        if outcome is not None:
            break
        outcome = ports.store.remove_unless_held(act_, category, removal.subject_id, removal.refs, removal.marker)
        if outcome is None:  # refused: find out why
            profile = ports.subjects.get_profile(act_.tenant_id, removal.subject_id)
            hold = LegalHold.model_validate(profile.legal_hold) if profile and profile.legal_hold else None
            if hold is not None and category in hold.categories:
                ports.store.refile_late(category, act_.tenant_id, removal.refs)
                outcome = ports.store.record_outcome(act_, "kept")
            elif profile is None or profile.status not in OPEN:
                outcome = ports.store.record_outcome(act_, "left")
            # else: the refusal is gone (a hold lifted meanwhile): try the write again
    if outcome is None:
        raise Conflict("a subject's profile changed under every attempt of its removal; the chunk is redone")
    if outcome == "removed":  # its items are gone: their texts go (again, on a redo: nothing is left of them)
        for key in removal.blobs:
            _delete_object(ports, key)
    return outcome


def _delete_expired(
    ports: RetentionPorts, run: RetentionRunItem, subject_id: str, filed: IndexedRef | None, now: datetime
) -> ActOutcome:
    """An expired profile, checked again at its act: erased only if it is still open, unheld and inactive, and
    only at the version checked (request_deletion's own write condition). Held: refiled to the late bucket.
    Active again: refiled under its last activity. Being erased, erased or restricted: left."""
    tenant = run.tenant_id
    for _ in range(ACT_ATTEMPTS):
        profile = ports.subjects.get_profile(tenant, subject_id)
        if profile is None or (profile.status == "erasing" and not profile.legal_hold):
            return "removed"  # being or been erased: by this act on an earlier attempt, or by a request meanwhile
        if profile.status not in OPEN:
            return "left"  # restricted, or erasing under a hold: the erasure keeps what it keeps
        if profile.legal_hold:
            if filed is not None and ports.store.refile_late("inactive_profiles", tenant, [filed]):
                return "kept"
            continue  # it changed since it was read
        last = ports.store.last_activity(tenant, subject_id)
        active_at = max(profile.active_at or profile.created_at, last or "")
        if active_at > run.cutoffs["inactive_profiles"]:
            if ports.store.reindex_profile(tenant, subject_id, active_at, profile.version):
                return "active"
            continue  # it changed since it was read
        try:
            deletion.request_deletion(
                ports.deletion,
                tenant,
                subject_id,
                now,
                initiated_by="retention",
                expected_version=profile.version,
            )
        except Conflict:
            continue  # it changed since it was checked: check again
        except DomainError:
            return "removed"  # erased meanwhile
        return "removed"
    raise Conflict("an expired profile changed under every attempt of its erasure; the chunk is redone")


def settle(run: RetentionRunItem, pending: Pending, outcomes: dict[str, ActOutcome]) -> RetentionCounts:
    """The counts committed with `pending` (which counted every decision as carried out), corrected by what its
    acts found. Something a hold kept is counted kept here, unless the run reads it again in the late bucket
    (where it was moved), which counts it then."""
    counts = run.counts.model_copy(deep=True)
    category = pending.category
    held: list[IndexedRef] = []  # what the acts kept
    for removal in removals(pending) if category == "interactions" else []:
        outcome = outcomes.get(removal.name, "removed")
        if outcome != "removed":
            _add(counts.removed, category, -len(removal.refs))
        if outcome == "kept":
            held.extend(removal.refs)
    for n, subject_id in enumerate(pending.erase):
        outcome = outcomes.get(f"e{n}", "removed")
        if outcome != "removed":
            _add(counts.removed, category, -1)
        if outcome == "kept":
            held.append(pending.filed[subject_id])
        elif outcome == "active":
            counts.still_active += 1
    _add(counts.kept_by_hold, category, sum(1 for ref in held if not _read_later(run, category, ref)))
    counts.removed = {c: n for c, n in counts.removed.items() if n}
    counts.kept_by_hold = {c: n for c, n in counts.kept_by_hold.items() if n}
    return counts


def _read_later(run: RetentionRunItem, category: Category, ref: IndexedRef) -> bool:
    """Whether the run, from the cursor committed with its pending chunk, still reads `ref` in the category's late
    bucket (where a hold's act moved it)."""
    cursor, index = run.cursor, CATEGORIES.index(category)
    if cursor.category != index:
        return cursor.category < index
    position = buckets(run, category).index((LATE, shard_of(ref.item_id)))
    if cursor.bucket != position:
        return cursor.bucket < position
    return cursor.after is None or cursor.after.position < ref.position


def carry_out(ports: RetentionPorts, run: RetentionRunItem, now: datetime, redo: bool) -> RetentionRunItem:
    """Act on the run's committed chunk and settle its counts with what the acts found (written once, only if
    they changed). A redo reads the outcomes recorded by the attempts before it."""
    assert run.pending is not None
    recorded = ports.store.outcomes(run.tenant_id, run.run_id, run.seq) if redo else {}
    outcomes = act(ports, run, run.pending, now, recorded)
    if run.settled:
        return run
    counts = settle(run, run.pending, outcomes)
    if counts == run.counts:
        return run
    settled = run.model_copy(update={"counts": counts, "settled": True})
    ports.store.settle(settled)
    return settled


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
        run = carry_out(ports, run, now, redo=True)
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
        "settled": False,
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
    committed = carry_out(ports, committed, now, redo=False)
    if decided.finished:
        _sweep(ports, committed)
        _advance_watermarks(ports, committed, now)
    after = committed.counts.removed
    removed = {c: after.get(c, 0) - before.get(c, 0) for c in {*after, *before} if after.get(c, 0) != before.get(c, 0)}
    return ChunkResult("done" if decided.finished else "continue", removed, committed.seq)


def _orphans(ports: RetentionPorts, tenant_id: str, as_of: str) -> int:
    p = ports
    return sweep.count_orphans(
        p.deleted_subjects, p.subjects, p.blobs, p.deletion.tombstones, tenant_id, datetime.fromisoformat(as_of)
    )


def _sweep(ports: RetentionPorts, run: RetentionRunItem) -> None:
    """The orphan sweep (logic/sweep.py), once the run's last chunk is committed, with its count."""
    p, as_of = ports, datetime.fromisoformat(run.as_of)
    sweep.remove_orphans(p.deleted_subjects, p.subjects, p.blobs, p.deletion.tombstones, run.tenant_id, as_of)


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
