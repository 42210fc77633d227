"""Reconcile: after a restore, apply every tombstone again, so that no restored copy brings an erased subject back.

A point-in-time restore of SubjectsTable, or a restore of the data bucket, can bring back profiles,
interactions, lookup items and object versions of subjects erased since the restore point; a restore from
another backup can bring back a data-key row or idempotency records. `chatsphere reconcile` runs this after
any restore (the documented step). The restored copies are unreadable already (the data keys stay shredded:
SubjectKeysTable has no point-in-time recovery), and the API answers 410 for the subject meanwhile; this
removes them.

Tombstones hold only the keyed hash of the subject id, so the erased subjects are found the other way round:
every subject id present in any store is hashed with its tenant's secret and matched against the tenant's
tombstones. For each match, with D the tombstone's `deleted_at`:

- a profile is removed if it was created at or before D (it is the erased person's); a later one belongs to
  a new person who reused the id explicitly (`Reuse-Erased-Subject-Id`), who keeps everything of theirs;
- an interaction is removed if it was received at or before D;
- the data-key row is removed if it was created at or before D;
- the id is *live again* if a kept profile or a kept data key remains. If it is not, every other item of the
  partition, every idempotency record and every object version and delete marker under its prefix goes;
- if it is live, a lookup item stays only if it is the live profile's own (same index key), an idempotency
  record only if it was written after D (its expiry less the records' lifetime), an interaction's text
  object only if its interaction stays (it goes with a removed one), an export package only while its
  request record names a subject not erased; any other object only if LastModified is after D. LastModified
  alone proves little: a restore writes objects anew, so restored copies carry the restore's time;
- a delete marker goes when no version of its key stays.

The tombstones come from the evidence ledger as well as RequestsTable (the ledger's `deletion.tombstone` entries,
which no restore of a table reaches): a restore of RequestsTable that lost a tombstone is found out, the tombstone
is written back (so the id answers 410 again), and every restored request record of the erased subject gets its
keyed hash back in place of the subject id; the erasure's own record, restored while open, is closed again as its
receipt in the ledger says. Each erasure a run finds something of gets an entry in the ledger (a restore
addendum: what came back and went again), and each tenant's run one more (`reconcile.run`), so that the
receipt's story includes the restore.

Counts, tenant ids and request ids only are reported: never a subject id or a value. Running it twice
removes nothing the second time. An erasure still running (its tombstone not completed) is left to its own
job, and counted, so that the operator knows to run this again once it completes."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chatsphere.logic import object_keys
from chatsphere.logic.ports import (
    BlobStore,
    DataKeyStore,
    IdempotencyRecords,
    LedgerIndex,
    LedgerOutbox,
    RequestStore,
    SubjectStore,
    TenantStore,
    TombstoneStore,
)
from chatsphere.logic.ports import TenantSecret as TenantSecretPort
from chatsphere.logic.tombstones import subject_hash
from chatsphere.models import ledger
from chatsphere.models.common import iso, utc_now
from chatsphere.models.items import TombstoneItem
from chatsphere.models.reconcile import BlobVersion, IdempotencyRef, StoredKey, StoredRef
from chatsphere.models.refs import ItemRef, RecordRef
from chatsphere.models.requests import OPEN_STATUSES, RequestItem

# What is counted, per store; every key is always present in a report, zero or not.
STORES = (
    "profiles",
    "interactions",
    "lookup_items",
    "other_items",
    "data_keys",
    "idempotency_records",
    "object_versions",
    "delete_markers",
)


@dataclass(frozen=True)
class ReconcilePorts:
    tenants: TenantStore
    requests: RequestStore
    tombstones: TombstoneStore
    subjects: SubjectStore
    data_keys: DataKeyStore
    blobs: BlobStore
    idempotency: IdempotencyRecords
    secret: TenantSecretPort
    idempotency_lifetime: int  # seconds: logic/idempotency.IDEMPOTENCY_LIFETIME_SECONDS
    ledger: LedgerIndex  # the erasures' tombstones and receipts, as the evidence ledger keeps them
    outbox: LedgerOutbox  # the entries this run adds: an addendum per erasure it reapplied, a summary per tenant


@dataclass
class TenantReport:
    tenant_id: str
    tombstones: int = 0
    erasures_running: int = 0  # not completed: their own job removes what they find; run reconcile again after
    reused_ids: int = 0  # erased ids that a new person holds again (their data is kept)
    reapplied: list[str] = field(default_factory=list)  # request ids of the deletions that found something
    removed: Counter[str] = field(default_factory=Counter)
    tombstones_restored: int = 0  # in the ledger, missing (or not completed) in RequestsTable: written back
    records_pseudonymised: int = 0  # restored request records of erased subjects: the keyed hash again
    records_closed: int = 0  # an erasure's own record restored while open: completed again, as its receipt says

    @property
    def changed(self) -> bool:
        return bool(self.reapplied or self.tombstones_restored or self.records_pseudonymised or self.records_closed)

    def as_dict(self) -> dict[str, object]:
        return {
            "tenant_id": self.tenant_id,
            "tombstones": self.tombstones,
            "erasures_running": self.erasures_running,
            "reused_ids": self.reused_ids,
            "reapplied": sorted(self.reapplied),
            "removed": {store: self.removed[store] for store in STORES},
            "tombstones_restored": self.tombstones_restored,
            "records_pseudonymised": self.records_pseudonymised,
            "records_closed": self.records_closed,
        }


@dataclass
class Report:
    tenants: list[TenantReport]
    dry_run: bool = False

    @property
    def removed(self) -> dict[str, int]:
        return {store: sum(t.removed[store] for t in self.tenants) for store in STORES}

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "removed": self.removed,
            "tenants": [t.as_dict() for t in self.tenants],
        }


@dataclass
class _Found:
    """What the stores hold of one erased subject."""

    tombstone: TombstoneItem
    items: list[StoredRef] = field(default_factory=list)
    key: StoredKey | None = None
    records: list[IdempotencyRef] = field(default_factory=list)
    versions: list[BlobVersion] = field(default_factory=list)


def reconcile(ports: ReconcilePorts, dry_run: bool = False) -> Report:
    """Remove, in every tenant, whatever a restore brought back of its erased subjects."""
    tenant_ids = ports.tenants.tenant_ids()
    reports = {t: TenantReport(t) for t in tenant_ids}
    erased = _tombstoned(ports, reports, dry_run)
    matcher = _Matcher(ports.secret, erased)
    found = _find(ports, matcher)
    for (tenant_id, subject_id), hit in sorted(found.items()):
        plan = _plan(ports, tenant_id, subject_id, hit)
        report = reports[tenant_id]
        report.reused_ids += int(plan.live)
        if not any(plan.counts.values()):
            continue
        report.reapplied.append(hit.tombstone.request_id)
        report.removed.update(plan.counts)
        if not dry_run:
            _apply(ports, tenant_id, subject_id, plan)
            ports.outbox.record(_addendum(hit.tombstone, plan.counts))
    _pseudonymise_records(ports, matcher, reports, dry_run)
    if not dry_run:
        for report in reports.values():
            if report.changed:
                ports.outbox.record(_summary(report))
    return Report([reports[t] for t in tenant_ids], dry_run)


def _tombstoned(
    ports: ReconcilePorts, reports: dict[str, TenantReport], dry_run: bool
) -> dict[str, dict[str, TombstoneItem]]:
    """Each tenant's completed tombstones by subject hash (tenants without one left out), from RequestsTable and
    the ledger: one the ledger holds and the table lost, or holds only as running, is written back (but in a dry
    run). Counts them in `reports`."""
    erased: dict[str, dict[str, TombstoneItem]] = {}
    for tenant_id, report in reports.items():
        stones = {t.subject_hash: t for t in ports.tombstones.tombstones(tenant_id)}
        for subject_hash_, kept in _ledger_tombstones(ports.ledger, tenant_id).items():
            stored = stones.get(subject_hash_)
            if stored is not None and stored.deleted_at is not None and stored.deleted_at >= (kept.deleted_at or ""):
                continue
            stones[subject_hash_] = kept
            report.tombstones_restored += 1
            if not dry_run:
                ports.tombstones.put_tombstone(kept)
        report.tombstones = len(stones)
        report.erasures_running = sum(1 for t in stones.values() if t.deleted_at is None)
        done = {h: t for h, t in stones.items() if t.deleted_at is not None}
        if done:
            erased[tenant_id] = done
    return erased


def _ledger_tombstones(index: LedgerIndex, tenant_id: str) -> dict[str, TombstoneItem]:
    """The completed erasures the tenant's ledger records, by subject hash (the latest, for an id erased again)."""
    stones: dict[str, TombstoneItem] = {}
    for stored in index.of_type(tenant_id, "deletion.tombstone"):
        data = json.loads(stored.document)["data"]
        if data.get("phase") != "completed":
            continue
        stone = TombstoneItem(
            tenant_id=tenant_id,
            subject_hash=data["subject_hash"],
            request_id=data["request_id"],
            started_at=data["started_at"],
            deleted_at=data["deleted_at"],
        )
        before = stones.get(stone.subject_hash)
        if before is None or (before.deleted_at or "") < (stone.deleted_at or ""):
            stones[stone.subject_hash] = stone
    return stones


def _find(ports: ReconcilePorts, matcher: _Matcher) -> dict[tuple[str, str], _Found]:
    """What every store holds of each erased subject, by (tenant id, subject id): one pass over each store."""
    found: dict[tuple[str, str], _Found] = {}
    for item in ports.subjects.scan():
        if (hit := _hit(found, matcher, item.tenant_id, item.subject_id)) is not None:
            hit.items.append(item)
    for key in ports.data_keys.scan():
        if (hit := _hit(found, matcher, key.tenant_id, key.subject_id)) is not None:
            hit.key = key
    for record in ports.idempotency.scan():
        if (hit := _hit(found, matcher, record.tenant_id, record.subject_id)) is not None:
            hit.records.append(record)
    _find_objects(ports, matcher, found)
    return found


def _find_objects(ports: ReconcilePorts, matcher: _Matcher, found: dict[tuple[str, str], _Found]) -> None:
    """The object versions under each erased subject's prefix, in the tenants that have one."""
    for tenant_id in matcher.erased:
        for subject_id in ports.blobs.subfolders(object_keys.subjects_folder(tenant_id)):
            if (hit := _hit(found, matcher, tenant_id, subject_id)) is not None:
                hit.versions = ports.blobs.dated_versions(object_keys.subject_prefix(tenant_id, subject_id))


def _hit(found: dict[tuple[str, str], _Found], matcher: _Matcher, tenant_id: str, subject_id: str) -> _Found | None:
    """The erased subject's entry in `found` (added on first sight), or None if the id was not erased."""
    if (tenant_id, subject_id) not in found:
        tombstone = matcher.tombstone(tenant_id, subject_id)
        if tombstone is None:
            return None
        found[(tenant_id, subject_id)] = _Found(tombstone)
    return found[(tenant_id, subject_id)]


class _Matcher:
    """Hashes each distinct subject id once, and only in tenants that have an erased subject."""

    def __init__(self, secret: TenantSecretPort, erased: dict[str, dict[str, TombstoneItem]]) -> None:
        self.secret, self.erased = secret, erased
        self.seen: dict[tuple[str, str], TombstoneItem | None] = {}

    def tombstone(self, tenant_id: str, subject_id: str) -> TombstoneItem | None:
        stones = self.erased.get(tenant_id)
        if not stones:
            return None
        if (tenant_id, subject_id) not in self.seen:
            self.seen[(tenant_id, subject_id)] = stones.get(subject_hash(self.secret, tenant_id, subject_id))
        return self.seen[(tenant_id, subject_id)]


@dataclass
class _Plan:
    live: bool = False
    data_key: bool = False
    items: list[ItemRef] = field(default_factory=list)
    records: list[RecordRef] = field(default_factory=list)
    versions: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _after(written_at: str | None, deleted_at: str) -> bool:
    """Written after the erasure completed; an item with no time counts as the erased subject's."""
    return written_at is not None and written_at > deleted_at


def _plan(ports: ReconcilePorts, tenant_id: str, subject_id: str, hit: _Found) -> _Plan:
    plan = _Plan()
    deleted_at = hit.tombstone.deleted_at
    assert deleted_at is not None
    profiles = [i for i in hit.items if i.ref.kind == "profile"]
    live_profile = next((p for p in profiles if _after(p.written_at, deleted_at)), None)
    key_kept = hit.key is not None and _after(hit.key.created_at, deleted_at)
    plan.live = live_profile is not None or key_kept
    if hit.key is not None and not key_kept:
        plan.data_key = True
        plan.counts["data_keys"] += 1
    interactions = _plan_items(plan, hit.items, live_profile, deleted_at)
    _plan_records(plan, hit.records, ports.idempotency_lifetime, deleted_at)
    prefix = object_keys.subject_prefix(tenant_id, subject_id)
    _plan_versions(plan, hit.versions, lambda v: _keeps(ports, tenant_id, v, prefix, deleted_at, *interactions))
    return plan


def _plan_items(
    plan: _Plan, items: list[StoredRef], live_profile: StoredRef | None, deleted_at: str
) -> tuple[set[str], set[str]]:
    """The partition's items that go; returns the ids of the interactions kept and of those removed."""
    own_lookups = live_profile.lookups if live_profile else {}
    kept_interactions: set[str] = set()
    removed_interactions: set[str] = set()
    for item in items:
        kind = item.ref.kind
        if kind == "profile":
            store, keep = "profiles", item is live_profile
        elif kind == "interaction":
            store, keep = "interactions", _after(item.written_at, deleted_at)
            (kept_interactions if keep else removed_interactions).add(item.ref.name)
        elif kind == "lookup":  # the live profile's own: it indexes the digest the profile holds for its kind
            own = item.digest is not None and own_lookups.get(item.ref.name) == item.digest
            store, keep = "lookup_items", plan.live and own
        else:
            store, keep = "other_items", plan.live
        if not keep:
            plan.items.append(item.ref)
            plan.counts[store] += 1
    plan.items.sort(key=_removal_order)  # interactions, lookups, the profile last (as an erasure removes them)
    return kept_interactions, removed_interactions


_REMOVED_BEFORE = {"activity": 0, "other": 0, "interaction": 1, "lookup": 2, "profile": 3}


def _removal_order(ref: ItemRef) -> tuple[int, str, str]:
    return _REMOVED_BEFORE[ref.kind], ref.at, ref.name


def _plan_records(plan: _Plan, records: list[IdempotencyRef], lifetime: int, deleted_at: str) -> None:
    """Idempotency records go unless the id is live again and the record was written after the erasure."""
    for record in records:
        expires = record.expires_at
        written = iso(datetime.fromtimestamp(expires - lifetime, UTC)) if expires else None
        if not (plan.live and _after(written, deleted_at)):
            plan.records.append(record.ref)
            plan.counts["idempotency_records"] += 1


def _plan_versions(plan: _Plan, versions: list[BlobVersion], keeps: Callable[[BlobVersion], bool]) -> None:
    """Object versions go unless the id is live again and `keeps` says the version is the new person's; a delete
    marker goes when no version of its key stays."""
    kept_keys: set[str] = set()
    for version in (v for v in versions if not v.is_marker):
        if plan.live and keeps(version):
            kept_keys.add(version.key)
        else:
            plan.versions.append((version.key, version.version_id))
            plan.counts["object_versions"] += 1
    for marker in (v for v in versions if v.is_marker):
        if marker.key not in kept_keys:
            plan.versions.append((marker.key, marker.version_id))
            plan.counts["delete_markers"] += 1


def _keeps(
    ports: ReconcilePorts,
    tenant_id: str,
    version: BlobVersion,
    prefix: str,
    deleted_at: str,
    kept_interactions: Iterable[str],
    removed_interactions: Iterable[str],
) -> bool:
    """Whether an object version under a reused id's prefix is the new person's."""
    kind, _, name = version.key.removeprefix(prefix).partition("/")
    if kind == "interactions" and name in kept_interactions:
        return True
    if kind == "interactions" and name in removed_interactions:
        return False
    if kind == "exports" and name.endswith(".zip"):
        record = ports.requests.get(tenant_id, name.removesuffix(".zip"))
        return record is not None and not record.subject_deleted
    # Not referenced by anything found: a write of the new person still in flight, or a restored copy (its
    # ciphertext under the shredded key). Only its time can tell, and a restore makes it recent.
    return iso(version.last_modified) > deleted_at


def _pseudonymise_records(
    ports: ReconcilePorts, matcher: _Matcher, reports: dict[str, TenantReport], dry_run: bool
) -> None:
    """Every request record that names an erased subject in clear (a restore of RequestsTable brought it back)
    and was received before the erasure completed gets the keyed hash again; the erasure's own record, restored
    open, completes again as its receipt in the ledger says. A record received after it is a new person's."""
    for record in ports.requests.with_subject_ids():
        tombstone = matcher.tombstone(record.tenant_id, record.subject_id)
        if tombstone is None or tombstone.deleted_at is None or record.received_at > tombstone.deleted_at:
            continue
        report = reports[record.tenant_id]
        report.records_pseudonymised += 1
        closed = _as_receipt_says(ports.ledger, record, tombstone) if record.is_open else None
        report.records_closed += int(closed is not None)
        if dry_run:
            continue
        if closed is not None:
            ports.requests.set_status(closed, OPEN_STATUSES)
        else:
            ports.requests.pseudonymise(record, tombstone.subject_hash)


def _as_receipt_says(index: LedgerIndex, record: RequestItem, tombstone: TombstoneItem) -> RequestItem | None:
    """The erasure's own record as it completed, from its `deletion.receipt` entry; None for any other record."""
    if record.request_id != tombstone.request_id:
        return None
    entries = [json.loads(s.document) for s in index.of_request(record.tenant_id, record.request_id)]
    receipts = [e["data"] for e in entries if e["type"] == "deletion.receipt"]
    if not receipts:
        return None
    data = receipts[-1]
    receipt = ledger.receipt_of(data)
    return record.model_copy(
        update={
            "status": data.get("status", "completed"),
            "completed_at": data.get("completed_at") or tombstone.deleted_at,
            "result": receipt,
            "subject_id": tombstone.subject_hash,
            "subject_deleted": True,
        }
    )


def _addendum(tombstone: TombstoneItem, counts: Counter[str]) -> ledger.LedgerEntry:
    """What a restore brought back of one erasure, and this run removed again: counts per store only."""
    return ledger.event(
        tombstone.tenant_id,
        "reconcile.restore_addendum",
        iso(utc_now()),
        request_id=tombstone.request_id,
        subject_hash=tombstone.subject_hash,
        removed={store: counts[store] for store in STORES},
    )


def _summary(report: TenantReport) -> ledger.LedgerEntry:
    data = report.as_dict()
    data.pop("tenant_id")
    return ledger.event(report.tenant_id, "reconcile.run", iso(utc_now()), **data)


def _apply(ports: ReconcilePorts, tenant_id: str, subject_id: str, plan: _Plan) -> None:
    """The data key first (so that nothing restored opens), then items, records and objects."""
    if plan.data_key:
        ports.data_keys.delete(tenant_id, subject_id)
    by_subject: dict[tuple[str, str], list[ItemRef]] = defaultdict(list)
    for ref in plan.items:
        by_subject[(ref.tenant_id, ref.subject_id)].append(ref)
    for refs in by_subject.values():
        ports.subjects.delete_items(refs)
    ports.idempotency.delete_records(plan.records)
    ports.blobs.delete_versions(plan.versions)
