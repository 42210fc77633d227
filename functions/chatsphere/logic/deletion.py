"""Deletion (the right to erasure, GDPR art. 17): the request (Intake function) and the job (Deletion function).

The job destroys the subject's data key first, so that every copy of the subject's data, in backups
too, is unreadable from that instant; then it removes every item, object version and idempotency record,
sweeps once more, reads every store back, and writes a receipt into the record (not yet signed). Each
step records when it finished in the request record, so that a rerun (a retry, a continuation, a
redelivery) resumes where the last one stopped and removes nothing twice; the counts are taken before
anything is removed, so that a receipt counts every item exactly once whatever was interrupted."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from chatsphere.config import DELETION_CHUNK
from chatsphere.errors import Conflict, JobError
from chatsphere.logic.codec import write_profile
from chatsphere.logic.object_keys import subject_prefix
from chatsphere.logic.ports import (
    BlobStore,
    DataKeyStore,
    EventPublisher,
    IdempotencyRecords,
    JobQueue,
    PolicyStore,
    RequestStore,
    SettingsReader,
    SubjectStore,
)
from chatsphere.logic.requests import fail_request, finish, new_request, publish_status, to_record
from chatsphere.logic.sweep import seal_subject_id
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.items import IdentifierKind, ProfileItem, TombstoneItem
from chatsphere.models.refs import ItemRef
from chatsphere.models.requests import AnyRecord, DeletionDetails, DeletionReceipt, RequestItem, refusal
from chatsphere.models.subjects import LegalHold

EVENT_TYPE = "SubjectDeleted"
# Items, object versions or records removed per step of one invocation; then it continues. The number is
# config's (its one source, a constant: logic reads no environment); the handler passes Config.deletion_chunk.
CHUNK = DELETION_CHUNK
EVERYTHING = 10**9
KEPT_ITEMS = ("profile", "interactions", "lookup_items")
STEPS = ("inventory", "key_destroyed", "exports_cancelled", "items", "objects", "idempotency", "swept", "verified")


# ------------------------------------------------------------------ request
@dataclass(frozen=True)
class DeletionPorts:
    """What a deletion touches: every store that holds a copy of the subject, and its queue."""

    requests: RequestStore
    subjects: SubjectStore
    data_keys: DataKeyStore
    blobs: BlobStore
    idempotency: IdempotencyRecords
    events: EventPublisher
    tombstones: Tombstones
    settings: SettingsReader  # the record's due date
    jobs: JobQueue[DeletionJob]
    policies: PolicyStore  # the policy version in force, on the receipt


def request_deletion(
    ports: DeletionPorts,
    tenant_id: str,
    subject_id: str,
    now: datetime,
    *,
    initiated_by: Literal["api", "retention", "hold_lifted", "offboarding"] = "api",
    expected_version: int | None = None,
) -> tuple[AnyRecord, bool]:
    """Close the subject (status `erasing`, in the same transaction as the record) and queue the job.
    Returns the record and whether it is new: a deletion already open is returned, not doubled.
    `expected_version` (retention's, for a profile it checked): Conflict unless the profile is still at that version,
    which the closing write's version condition then holds."""
    settings = ports.settings.get_settings(tenant_id)
    opened: list[RequestItem] = []
    previous: str | None = None  # a deletion that failed, or kept data for a hold now lifted, is requested anew

    def close(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem | None]:
        if existing is None:
            raise ports.tombstones.absent(tenant_id, subject_id)
        if existing.status == "erasing" and existing.deletion_request_id != previous:
            return existing, None
        if expected_version is not None and existing.version != expected_version:
            raise Conflict("the subject changed since it was checked")
        details = DeletionDetails(initiated_by=initiated_by, follows=previous)
        record = new_request(settings, tenant_id, subject_id, now, details)
        opened[:] = [record]
        closed = existing.model_copy(
            update={"status": "erasing", "deletion_request_id": record.request_id, "version": existing.version + 1}
        )
        return closed, record

    profile = ports.subjects.get_profile(tenant_id, subject_id)
    if profile is not None and profile.status != "erasing":
        ports.tombstones.require_current(tenant_id, subject_id, profile)  # not a restored copy of an erased subject
    if profile is not None and profile.status == "erasing" and profile.deletion_request_id:
        current = ports.requests.get(tenant_id, profile.deletion_request_id)
        unfinished = current is not None and (
            current.status == "failed" or (current.status == "completed_with_exceptions" and not profile.legal_hold)
        )
        if not unfinished:
            return _open_record(ports.requests, ports.blobs, tenant_id, profile.deletion_request_id, now), False
        previous = profile.deletion_request_id
    item, _ = write_profile(ports.subjects, tenant_id, subject_id, close, ports.events, read=profile)
    if not opened:  # another caller closed it between our reads
        assert item.deletion_request_id is not None
        return _open_record(ports.requests, ports.blobs, tenant_id, item.deletion_request_id, now), False
    ports.jobs.send(DeletionJob.for_request(opened[0]))
    return to_record(ports.blobs, opened[0], now), True


def _open_record(requests: RequestStore, blobs: BlobStore, tenant_id: str, request_id: str, now: datetime) -> AnyRecord:
    record = requests.get(tenant_id, request_id)
    if record is None:
        raise Conflict("the subject is being erased; its record is not readable yet, retry")
    return to_record(blobs, record, now)


# ---------------------------------------------------------------------- job
Outcome = Literal["done", "continue", "skipped"]


MAX_ATTEMPTS = 5  # DeletionQueue's maxReceiveCount (tests/infra ties the two): the last attempt marks it failed


def run_deletion(
    ports: DeletionPorts, job: DeletionJob, now: datetime, chunk: int = CHUNK, attempt: int = 1
) -> Outcome:
    """One invocation's share of an erasure: `continue` when more is left for another invocation."""
    item = ports.requests.get(job.tenant_id, job.request_id)
    if item is None or item.type != "deletion":
        return "skipped"
    if not item.is_open:  # a closed record publishes its status again: a failed publish made the queue retry
        publish_status(ports.events, item, now, retried=True)
        return "skipped"
    if item.subject_deleted:
        return "skipped"
    run = _Run(ports, item, now, chunk)
    try:
        if item.status == "received":
            run.save(item.model_copy(update={"status": "in_progress", "result": DeletionReceipt()}), ("received",))
        return run.resume()
    except Exception as error:
        if attempt >= MAX_ATTEMPTS:  # the message goes to the DLQ (alarmed); the record says why
            fail_request(ports.requests, ports.events, run.item, error, now, ("received", "in_progress"), INTERNAL)
        raise


INTERNAL = "the erasure failed repeatedly; the subject stays closed and may be erased again"


class _Run:
    """The steps of one erasure over its record; each finished step is written before the next starts."""

    def __init__(self, ports: DeletionPorts, item: RequestItem, now: datetime, chunk: int) -> None:
        self.p, self.item, self.now, self.chunk = ports, item, now, chunk
        self._started = time.monotonic()
        self._exports: list[RequestItem] | None = None
        self._inventoried: tuple[list[ItemRef], list[tuple[str, str, bool]]] | None = None
        self.tenant_id, self.subject_id = item.tenant_id, item.subject_id
        self.prefix = subject_prefix(item.tenant_id, item.subject_id)

    # ---------------------------------------------------------------- legal holds
    @property
    def held(self) -> frozenset[str]:
        """The categories a legal hold kept when the inventory was taken (none: everything goes)."""
        return frozenset(self.receipt.held)

    def kept_item(self, ref: ItemRef) -> bool:
        if "interactions" in self.held and ref.kind == "interaction":
            return True
        if "profile" in self.held and ref.kind in ("profile", "lookup"):
            return True
        return ref.kind == "profile" and bool(self.held)  # the hold itself lives on the profile: a shell stays

    def kept_object(self, key: str) -> bool:
        return "interactions" in self.held and key.startswith(f"{self.prefix}interactions/")

    def removable_items(self, limit: int) -> list[ItemRef]:
        refs = self.p.subjects.item_refs(self.tenant_id, self.subject_id, limit + self.kept_count)
        return [r for r in refs if not self.kept_item(r)][:limit]

    def removable_versions(self, limit: int) -> list[tuple[str, str, bool]]:
        found = self.p.blobs.versions(self.prefix, limit + self.kept_objects)
        return [v for v in found if not self.kept_object(v[0])][:limit]

    @property
    def kept_count(self) -> int:
        return sum(n for store, n in self.receipt.kept.items() if store in KEPT_ITEMS)

    @property
    def kept_objects(self) -> int:
        return self.receipt.kept.get("object_versions", 0)

    @property
    def receipt(self) -> DeletionReceipt:
        result = self.item.result
        return result if isinstance(result, DeletionReceipt) else DeletionReceipt()

    def save(self, item: RequestItem, expected: tuple[str, ...] = ("in_progress",)) -> None:
        self.p.requests.set_status(item, expected)
        changed = item.status != self.item.status
        self.item = item
        if changed:  # in_progress best-effort; the terminal status raises, and the retry publishes it again
            publish_status(self.p.events, item, self.now, retried=not item.is_open)

    def clock(self) -> datetime:
        """The time now: the invocation's `now` and what has elapsed since (a receipt's steps show when each really
        finished, not when the invocation began)."""
        return self.now + timedelta(seconds=time.monotonic() - self._started)

    def step_done(self, step: str, **changes: object) -> None:
        receipt = self.receipt.model_copy(update={"steps": {**self.receipt.steps, step: iso(self.clock())}, **changes})
        self.save(self.item.model_copy(update={"result": receipt}))

    def resume(self) -> Outcome:
        for step in STEPS:
            if step in self.receipt.steps:
                continue
            if not getattr(self, f"_{step}")():
                return "continue"
        self._complete()
        # The hold was lifted before the completion could keep anything for it: the steps start again.
        return "continue" if self.item.is_open else "done"

    # Each step returns False when it stopped at its chunk and more is left.
    def _inventory(self) -> bool:
        """Counts before anything is removed (so a receipt counts each item once), and the tombstone that
        refuses the id from here on, written before the profile can go."""
        p = self.p
        profile = p.subjects.get_profile(self.tenant_id, self.subject_id)
        hold = LegalHold.model_validate(profile.legal_hold) if profile and profile.legal_hold else None
        self.item = self.item.model_copy(
            update={"result": self.receipt.model_copy(update={"held": sorted(hold.categories) if hold else []})}
        )
        removed, kept = self._counts()
        found = [f"{kind}:{digest}" for kind, digest in sorted(profile.lookups.items())] if profile else []
        digests = sorted({*self.receipt.lookup_digests, *found})  # the first pass's too: read back at the end
        subject_hash = p.tombstones.hash(self.tenant_id, self.subject_id)
        started = TombstoneItem(
            tenant_id=self.tenant_id,
            subject_hash=subject_hash,
            request_id=self.item.request_id,
            started_at=iso(self.clock()),
        )
        if not self.held:
            p.tombstones.put(started)
        because = f"legal hold placed by request {hold.request_id}: {hold.reason}" if hold else None
        self.step_done(
            "inventory",
            removed=removed,
            lookup_digests=digests,
            kept=kept,
            kept_because=because,
            held_by=hold.request_id if hold else None,
        )
        return True

    def _counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """What this pass removes, added to what an earlier pass removed, and what a hold keeps."""
        p = self.p
        refs = p.subjects.item_refs(self.tenant_id, self.subject_id, EVERYTHING)
        versions = p.blobs.versions(self.prefix, EVERYTHING)
        self._inventoried = (refs, versions)
        gone = [r for r in refs if not self.kept_item(r)]
        stays = [r for r in refs if self.kept_item(r)]
        gone_objects = [marker for key, _, marker in versions if not self.kept_object(key)]
        counted = {
            **_by_kind(gone),
            "object_versions": sum(1 for marker in gone_objects if not marker),
            "delete_markers": sum(1 for marker in gone_objects if marker),
            "idempotency_records": len(p.idempotency.record_refs(self.tenant_id, self.subject_id, EVERYTHING)),
            "data_key": int(not self.held and p.data_keys.get(self.tenant_id, self.subject_id) is not None),
            "exports_cancelled": sum(1 for r in self._open_exports() if r.is_open),
        }
        # A second pass (the hold was lifted before the first completed) adds to what the first removed.
        before = self.receipt.removed
        removed = {k: before.get(k, 0) + counted.get(k, 0) for k in sorted({*before, *counted})}
        kept: dict[str, int] = {}
        if self.held:
            kept = {k: v for k, v in _by_kind(stays).items() if v}
            kept["object_versions"] = len(versions) - len(gone_objects)
            kept["data_key"] = int(p.data_keys.get(self.tenant_id, self.subject_id) is not None)
        return removed, kept

    def _key_destroyed(self) -> bool:
        if not self.held:  # the key is not destroyed while anything it protects is kept
            self.p.data_keys.delete(self.tenant_id, self.subject_id)  # crypto-shredding: from here, nothing opens
        self.step_done("key_destroyed")
        return True

    def _open_exports(self) -> list[RequestItem]:
        """The subject's open exports, read once per invocation: none can open while the subject is erasing (an
        export request is refused then), so the inventory's read serves the cancellation that follows it."""
        if self._exports is None:
            self._exports = [r for r in self._records() if r.type == "export" and r.is_open]
        return self._exports

    def _exports_cancelled(self) -> bool:
        for record in self._open_exports():
            if record.is_open:
                cancelled = finish(record, "rejected", self.now, refusal("subject_erased", "the subject was erased"))
                try:
                    self.p.requests.set_status(cancelled, ("received", "in_progress"))
                except Conflict:  # it finished meanwhile: the sweep removes any package it left
                    continue
                publish_status(self.p.events, cancelled, self.now, retried=False)
        self.step_done("exports_cancelled")
        return True

    def _items(self) -> bool:
        return self._remove_items("items")

    def _seen(self) -> tuple[list[ItemRef], list[tuple[str, str, bool]]] | None:
        """What this invocation's inventory read, if it fits one chunk: the removal steps that follow it remove
        that instead of reading it again (whatever was written after it, the sweep finds)."""
        if self._inventoried is None:
            return None
        refs, versions = self._inventoried
        if len(refs) >= self.chunk or len(versions) >= self.chunk:
            return None
        return [r for r in refs if not self.kept_item(r)], [v for v in versions if not self.kept_object(v[0])]

    def _remove_items(self, step: str, **done: object) -> bool:
        seen = self._seen()
        refs = seen[0] if seen is not None else self.removable_items(self.chunk)
        self.p.subjects.delete_items(refs)  # the store's order: interactions, lookups, and the profile last
        if len(refs) == self.chunk:
            return False
        if self.held and "profile" not in self.held:  # the shell that carries the hold keeps no personal value
            self.p.subjects.strip_profile(self.tenant_id, self.subject_id)
        self.step_done(step, **done)
        return True

    def _objects(self) -> bool:
        seen = self._seen()
        versions = seen[1] if seen is not None else self.removable_versions(self.chunk)
        self.p.blobs.delete_versions([(key, version) for key, version, _ in versions])
        if len(versions) == self.chunk:
            return False
        self.step_done("objects")
        return True

    def _idempotency(self) -> bool:
        records = self.p.idempotency.record_refs(self.tenant_id, self.subject_id, self.chunk)
        self.p.idempotency.delete_records(records)
        if len(records) == self.chunk:
            return False
        self.step_done("idempotency")
        return True

    def _swept(self) -> bool:
        """Once more, for writes that passed their status check just before the subject was closed, and a
        package an export that was running may have left: counted as they go (they were not inventoried)."""
        refs = self.removable_items(self.chunk)
        versions = self.removable_versions(self.chunk)
        if refs or versions:
            self.p.subjects.delete_items(refs)
            self.p.blobs.delete_versions([(key, version) for key, version, _ in versions])
            removed = dict(self.receipt.removed)
            removed["swept_items"] = removed.get("swept_items", 0) + len(refs)
            removed["swept_object_versions"] = removed.get("swept_object_versions", 0) + len(versions)
            self.save(self.item.model_copy(update={"result": self.receipt.model_copy(update={"removed": removed})}))
            return False  # sweep again until a pass finds nothing
        self.step_done("swept")
        return True

    def _verified(self) -> bool:
        """Only an empty read-back of every store the job touched completes the request."""
        p, tenant, subject = self.p, self.tenant_id, self.subject_id
        remaining = {
            "subject_items": len(self.removable_items(1)),
            "object_versions": len(self.removable_versions(1)),
            "idempotency_records": len(p.idempotency.record_refs(tenant, subject, 1)),
            "data_key": int(not self.held and p.data_keys.get(tenant, subject) is not None),
            "identifier_index": 0
            if "profile" in self.held  # a hold on the profile keeps its lookups
            else sum(
                p.subjects.index_holds(tenant, _kind(entry), entry.partition(":")[2], subject)
                for entry in self.receipt.lookup_digests
            ),
        }
        if any(remaining.values()):
            found = ", ".join(sorted(k for k, v in remaining.items() if v))
            raise JobError("residue_found", f"the read-back found what the erasure must remove in: {found}")
        self.step_done("verified", remaining=remaining, verified=True)
        return True

    def _complete(self) -> None:
        """Records keep their proof with the subject's keyed hash; the tombstone outlives everything; the
        tenant's processors hear of it (art. 19); and the record itself completes, last. Under a legal hold
        the subject is not gone: the record completes with exceptions, saying what was kept and why."""
        if self.held:
            self._restrict()
            return
        subject_hash = self.p.tombstones.hash(self.tenant_id, self.subject_id)
        for record in self._records():
            if record.request_id != self.item.request_id:
                self.p.requests.pseudonymise(record, subject_hash)
        completed = self.clock()
        deleted_at = iso(completed)
        self.p.tombstones.put(
            TombstoneItem(
                tenant_id=self.tenant_id,
                subject_hash=subject_hash,
                request_id=self.item.request_id,
                started_at=self.receipt.steps.get("inventory", deleted_at),
                deleted_at=deleted_at,
                # for the orphan sweep, which needs the prefix: sealed, and forgotten once it has run
                sealed_subject_id=seal_subject_id(
                    self.p.tombstones.secret, self.tenant_id, subject_hash, self.subject_id
                ),
            )
        )
        detail = {
            "tenant_id": self.tenant_id,
            "subject_id": self.subject_id,
            "request_id": self.item.request_id,
            "deleted_at": deleted_at,
        }
        self.p.events.publish(EVENT_TYPE, detail)
        receipt = self.receipt.model_copy(
            update={"lookup_digests": [], "policy_version": self._policy_version(completed)}
        )
        done = finish(self.item, "completed", completed, receipt)
        self.save(done.model_copy(update={"subject_id": subject_hash, "subject_deleted": True}))

    def _restrict(self) -> None:
        """Complete with exceptions, the subject `restricted` (GDPR art. 18), in one write conditioned on the hold
        still standing: the receipt says what was kept for a hold that was in force when the erasure finished.
        If the hold was lifted before (its lift and this write both change the profile, so exactly one of them
        lands first), nothing protects what was kept: the erasure goes on, in the same record, to remove it."""
        completed = self.clock()
        receipt = self.receipt.model_copy(
            update={"lookup_digests": [], "policy_version": self._policy_version(completed)}
        )
        done = finish(self.item, "completed_with_exceptions", completed, receipt)
        held_by = self.receipt.held_by or self._hold_request_id()  # or inventoried before receipts named it
        try:
            if held_by is None:  # while a subject is erasing a hold can only be lifted, never placed
                raise Conflict("the legal hold was lifted")
            self.p.subjects.restrict(done, held_by)
        except Conflict:
            current = self.p.requests.get(self.tenant_id, self.item.request_id)
            if current is None or not current.is_open:
                self.item = current or done  # another delivery of this job finished it
                return
            if held_by is not None and self._hold_request_id() == held_by:
                raise  # the hold stands: an unexpected refusal, for the queue to retry
            self._carry_on()
            return
        self.item = done
        publish_status(self.p.events, done, self.now, retried=True)

    def _policy_version(self, at: datetime) -> str | None:
        """The tenant's privacy policy version in force when the erasure completed, if it published one."""
        policy = self.p.policies.policy_in_force(self.tenant_id, iso(at))
        return policy.version if policy else None

    def _hold_request_id(self) -> str | None:
        """The request that placed the subject's legal hold now in force, if one is."""
        profile = self.p.subjects.get_profile(self.tenant_id, self.subject_id)
        return LegalHold.model_validate(profile.legal_hold).request_id if profile and profile.legal_hold else None

    def _carry_on(self) -> None:
        """The hold was lifted while the erasure ran: start its steps again with no hold (the inventory adds to
        the counts of what is already removed), keeping the first pass's step times and when the lift was seen."""
        first = {f"held_{step}": at for step, at in self.receipt.steps.items() if step in STEPS}
        receipt = self.receipt.model_copy(
            update={
                "steps": {**first, "hold_lifted": iso(self.now)},
                "held": [],
                "kept": {},
                "kept_because": None,
                "held_by": None,
                "remaining": None,
                "verified": False,
            }
        )
        self.save(self.item.model_copy(update={"result": receipt}))

    def _records(self) -> list[RequestItem]:
        return self.p.requests.of_subject(self.tenant_id, self.subject_id)


# What a receipt counts each kind of item as; any other kind (retention's activity markers) is other_items.
RECEIPT_STORES = {"profile": "profile", "interaction": "interactions", "lookup": "lookup_items"}


def _by_kind(refs: list[ItemRef]) -> dict[str, int]:
    """A partition's items counted by what they hold."""
    counts = dict.fromkeys(("profile", "interactions", "lookup_items", "other_items"), 0)
    for ref in refs:
        counts[RECEIPT_STORES.get(ref.kind, "other_items")] += 1
    return counts


def _kind(entry: str) -> IdentifierKind:
    return "email" if entry.startswith("email:") else "phone"
