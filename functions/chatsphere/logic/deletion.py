"""Deletion (the right to erasure, GDPR art. 17): the request (Intake function) and the job (Deletion function).

The job destroys the subject's data key first, so that every copy of the subject's data, in backups
too, is unreadable from that instant; then it removes every item, object version and idempotency record,
sweeps once more, reads every store back, and signs off a receipt. Each step records when it finished
in the request record, so that a rerun (a retry, a continuation, a redelivery) resumes where the last
one stopped and removes nothing twice; the counts are taken before anything is removed, so that a
receipt counts every item exactly once whatever was interrupted."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chatsphere.dal.keyspace import subject_prefix
from chatsphere.errors import Conflict
from chatsphere.logic.codec import write_profile
from chatsphere.logic.ports import (
    BlobStore,
    DataKeyStore,
    EventPublisher,
    IdempotencyRecords,
    JobQueue,
    RequestStore,
    SubjectStore,
    TenantStore,
)
from chatsphere.logic.requests import finish, new_request, to_record
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.items import IdentifierKind, ProfileItem, TombstoneItem
from chatsphere.models.requests import DeletionDetails, DeletionReceipt, Refusal, RequestItem, RequestRecord

EVENT_TYPE = "SubjectDeleted"
CHUNK = 1000  # items, object versions or records removed per step of one invocation; then it continues
EVERYTHING = 10**9
STEPS = ("inventory", "key_destroyed", "exports_cancelled", "items", "objects", "idempotency", "swept", "verified")


# ------------------------------------------------------------------ request
def request_deletion(
    subjects: SubjectStore,
    tenants: TenantStore,
    requests: RequestStore,
    jobs: JobQueue[DeletionJob],
    blobs: BlobStore,
    tombstones: Tombstones,
    tenant_id: str,
    subject_id: str,
    now: datetime,
    initiated_by: Literal["api", "retention", "hold_lifted"] = "api",
) -> tuple[RequestRecord, bool]:
    """Close the subject (status `erasing`, in the same transaction as the record) and queue the job.
    Returns the record and whether it is new: a deletion already open is returned, not doubled."""
    settings = tenants.get_settings(tenant_id)
    opened: list[RequestItem] = []

    def close(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem | None]:
        if existing is None:
            raise tombstones.absent(tenant_id, subject_id)
        if existing.status == "erasing" and existing.deletion_request_id not in failed:
            return existing, None
        record = new_request(settings, tenant_id, subject_id, now, DeletionDetails(initiated_by=initiated_by))
        opened[:] = [record]
        closed = existing.model_copy(
            update={"status": "erasing", "deletion_request_id": record.request_id, "version": existing.version + 1}
        )
        return closed, record

    failed: set[str] = set()  # a deletion that failed is requested anew, on the subject that stays closed
    profile = subjects.get_profile(tenant_id, subject_id)
    if profile is not None and profile.status != "erasing":
        tombstones.require_current(tenant_id, subject_id, profile)  # not a restored copy of an erased subject
    if profile is not None and profile.status == "erasing" and profile.deletion_request_id:
        current = requests.get(tenant_id, profile.deletion_request_id)
        if current is None or current.is_open:
            return _open_record(requests, blobs, tenant_id, profile.deletion_request_id, now), False
        failed.add(profile.deletion_request_id)
    item, _ = write_profile(subjects, tenant_id, subject_id, close)
    if not opened:  # another caller closed it between our reads
        assert item.deletion_request_id is not None
        return _open_record(requests, blobs, tenant_id, item.deletion_request_id, now), False
    jobs.send(deletion_job(opened[0]))
    return to_record(blobs, opened[0], now), True


def _open_record(
    requests: RequestStore, blobs: BlobStore, tenant_id: str, request_id: str, now: datetime
) -> RequestRecord:
    record = requests.get(tenant_id, request_id)
    if record is None:
        raise Conflict("the subject is being erased; its record is not readable yet, retry")
    return to_record(blobs, record, now)


def deletion_job(item: RequestItem) -> DeletionJob:
    return DeletionJob(tenant_id=item.tenant_id, request_id=item.request_id)


# ---------------------------------------------------------------------- job
@dataclass(frozen=True)
class DeletionPorts:
    """What the job touches: every store that holds a copy of the subject."""

    requests: RequestStore
    subjects: SubjectStore
    data_keys: DataKeyStore
    blobs: BlobStore
    idempotency: IdempotencyRecords
    events: EventPublisher
    tombstones: Tombstones


Outcome = Literal["done", "continue", "skipped"]


MAX_ATTEMPTS = 5  # DeletionQueue's maxReceiveCount (tests/infra ties the two): the last attempt marks it failed


def run_deletion(
    ports: DeletionPorts, job: DeletionJob, now: datetime, chunk: int = CHUNK, attempt: int = 1
) -> Outcome:
    """One invocation's share of an erasure: `continue` when more is left for another invocation."""
    item = ports.requests.get(job.tenant_id, job.request_id)
    if item is None or item.type != "deletion" or not item.is_open or item.subject_erased:
        return "skipped"
    run = _Run(ports, item, now, chunk)
    try:
        if item.status == "received":
            run.save(item.model_copy(update={"status": "in_progress", "result": DeletionReceipt()}), ("received",))
        return run.resume()
    except Exception:
        if attempt >= MAX_ATTEMPTS:  # the message goes to the DLQ (alarmed); the record says so
            reason = "the erasure failed repeatedly; the subject stays closed and may be erased again"
            ports.requests.set_status(finish(run.item, "failed", now, Refusal(reason=reason)), ("in_progress",))
        raise


class _Run:
    """The steps of one erasure over its record; each finished step is written before the next starts."""

    def __init__(self, ports: DeletionPorts, item: RequestItem, now: datetime, chunk: int) -> None:
        self.p, self.item, self.now, self.chunk = ports, item, now, chunk
        self.tenant_id, self.subject_id = item.tenant_id, item.subject_id
        self.prefix = subject_prefix(item.tenant_id, item.subject_id)

    @property
    def receipt(self) -> DeletionReceipt:
        result = self.item.result
        return result if isinstance(result, DeletionReceipt) else DeletionReceipt()

    def save(self, item: RequestItem, expected: tuple[str, ...] = ("in_progress",)) -> None:
        self.p.requests.set_status(item, expected)
        self.item = item

    def step_done(self, step: str, **changes: object) -> None:
        receipt = self.receipt.model_copy(update={"steps": {**self.receipt.steps, step: iso(self.now)}, **changes})
        self.save(self.item.model_copy(update={"result": receipt}))

    def resume(self) -> Outcome:
        for step in STEPS:
            if step in self.receipt.steps:
                continue
            if not getattr(self, f"_{step}")():
                return "continue"
        self._complete()
        return "done"

    # Each step returns False when it stopped at its chunk and more is left.
    def _inventory(self) -> bool:
        """Counts before anything is removed (so a receipt counts each item once), and the tombstone that
        refuses the id from here on, written before the profile can go."""
        p = self.p
        keys = p.subjects.partition_keys(self.tenant_id, self.subject_id, EVERYTHING)
        versions = p.blobs.versions(self.prefix, EVERYTHING)
        profile = p.subjects.get_profile(self.tenant_id, self.subject_id)
        removed = {
            "profile": sum(1 for k in keys if k["sk"] == "PROFILE"),
            "interactions": sum(1 for k in keys if k["sk"].startswith("I#")),
            "lookup_items": sum(1 for k in keys if k["sk"].startswith("LOOKUP#")),
            "other_items": sum(1 for k in keys if not k["sk"].startswith(("PROFILE", "I#", "LOOKUP#"))),
            "object_versions": sum(1 for *_, marker in versions if not marker),
            "delete_markers": sum(1 for *_, marker in versions if marker),
            "idempotency_records": len(p.idempotency.record_keys(self.tenant_id, self.subject_id, EVERYTHING)),
            "data_key": int(p.data_keys.get(self.tenant_id, self.subject_id) is not None),
            "exports_cancelled": sum(1 for r in self._records() if r.type == "export" and r.is_open),
        }
        digests = [f"{kind}:{digest}" for kind, digest in sorted(profile.lookups.items())] if profile else []
        subject_hash = p.tombstones.hash(self.tenant_id, self.subject_id)
        started = TombstoneItem(
            tenant_id=self.tenant_id,
            subject_hash=subject_hash,
            request_id=self.item.request_id,
            started_at=iso(self.now),
        )
        p.requests.put_tombstone(started)
        self.step_done("inventory", removed=removed, lookup_digests=digests)
        return True

    def _key_destroyed(self) -> bool:
        self.p.data_keys.delete(self.tenant_id, self.subject_id)  # crypto-shredding: from here, nothing opens
        self.step_done("key_destroyed")
        return True

    def _exports_cancelled(self) -> bool:
        for record in self._records():
            if record.type == "export" and record.is_open:
                cancelled = finish(record, "rejected", self.now, Refusal(reason="the subject was erased"))
                with suppress(Conflict):  # it finished meanwhile: the sweep removes any package it left
                    self.p.requests.set_status(cancelled, ("received", "in_progress"))
        self.step_done("exports_cancelled")
        return True

    def _items(self) -> bool:
        return self._remove_items("items")

    def _remove_items(self, step: str, **done: object) -> bool:
        keys = self.p.subjects.partition_keys(self.tenant_id, self.subject_id, self.chunk)
        self.p.subjects.delete_keys(keys)  # sort-key order: interactions, lookups, and the profile last
        if len(keys) == self.chunk:
            return False
        self.step_done(step, **done)
        return True

    def _objects(self) -> bool:
        versions = self.p.blobs.versions(self.prefix, self.chunk)
        self.p.blobs.delete_versions([(key, version) for key, version, _ in versions])
        if len(versions) == self.chunk:
            return False
        self.step_done("objects")
        return True

    def _idempotency(self) -> bool:
        keys = self.p.idempotency.record_keys(self.tenant_id, self.subject_id, self.chunk)
        self.p.idempotency.delete_keys(keys)
        if len(keys) == self.chunk:
            return False
        self.step_done("idempotency")
        return True

    def _swept(self) -> bool:
        """Once more, for writes that passed their status check just before the subject was closed, and a
        package an export that was running may have left: counted as they go (they were not inventoried)."""
        keys = self.p.subjects.partition_keys(self.tenant_id, self.subject_id, self.chunk)
        versions = self.p.blobs.versions(self.prefix, self.chunk)
        if keys or versions:
            self.p.subjects.delete_keys(keys)
            self.p.blobs.delete_versions([(key, version) for key, version, _ in versions])
            removed = dict(self.receipt.removed)
            removed["swept_items"] = removed.get("swept_items", 0) + len(keys)
            removed["swept_object_versions"] = removed.get("swept_object_versions", 0) + len(versions)
            self.save(self.item.model_copy(update={"result": self.receipt.model_copy(update={"removed": removed})}))
            return False  # sweep again until a pass finds nothing
        self.step_done("swept")
        return True

    def _verified(self) -> bool:
        """Only an empty read-back of every store the job touched completes the request."""
        p, tenant, subject = self.p, self.tenant_id, self.subject_id
        remaining = {
            "subject_items": len(p.subjects.partition_keys(tenant, subject, 1)),
            "object_versions": len(p.blobs.versions(self.prefix, 1)),
            "idempotency_records": len(p.idempotency.record_keys(tenant, subject, 1)),
            "data_key": int(p.data_keys.get(tenant, subject) is not None),
            "identifier_index": sum(
                p.subjects.index_holds(tenant, _kind(entry), entry.partition(":")[2], subject)
                for entry in self.receipt.lookup_digests
            ),
        }
        if any(remaining.values()):
            raise RuntimeError(
                f"the read-back found what the erasure must remove: {sorted(k for k, v in remaining.items() if v)}"
            )
        self.step_done("verified", remaining=remaining, verified=True)
        return True

    def _complete(self) -> None:
        """Records keep their proof with the subject's keyed hash; the tombstone outlives everything; the
        tenant's processors hear of it (art. 19); and the record itself completes, last."""
        subject_hash = self.p.tombstones.hash(self.tenant_id, self.subject_id)
        for record in self._records():
            if record.request_id != self.item.request_id:
                self.p.requests.pseudonymise(record, subject_hash)
        deleted_at = iso(self.now)
        self.p.requests.put_tombstone(
            TombstoneItem(
                tenant_id=self.tenant_id,
                subject_hash=subject_hash,
                request_id=self.item.request_id,
                started_at=self.receipt.steps.get("inventory", deleted_at),
                deleted_at=deleted_at,
            )
        )
        detail = {
            "tenant_id": self.tenant_id,
            "subject_id": self.subject_id,
            "request_id": self.item.request_id,
            "deleted_at": deleted_at,
        }
        self.p.events.publish(EVENT_TYPE, detail)
        receipt = self.receipt.model_copy(update={"lookup_digests": []})
        done = finish(self.item, "completed", self.now, receipt)
        self.save(done.model_copy(update={"subject_id": subject_hash, "subject_erased": True}))

    def _records(self) -> list[RequestItem]:
        return self.p.requests.of_subject(self.tenant_id, self.subject_id)


def _kind(entry: str) -> IdentifierKind:
    return "email" if entry.startswith("email:") else "phone"
