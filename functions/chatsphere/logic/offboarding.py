"""Offboarding (GDPR art. 28(3)(g)): at the end of its contract a tenant gets all its data back, then every copy is
deleted. One request record of type `offboarding` carries both phases; the job runs on DeletionQueue, chunk by
chunk, and each chunk's progress is written before the next starts, so any failure resumes where it stopped.

1. **Return.** Every subject's package, as an export builds it (held subjects included), one line per package, and
   a manifest of the lines (with its SHA-256); delivered to an allowed destination, or linked. The record then
   stands `awaiting_confirmation`: nothing is deleted yet.
2. **Delete**, once the controller confirms: every subject through the deletion path (its own deletion record and
   receipt: key destroyed first, read-back), then the return packages, the tenant's request records and package
   lines, settings, policies, analytics, retention state and API keys; a read-back of all of it; and last, in one
   write, the record's receipt (a sealing ledger entry: its own signed tree head) and the tenant `offboarded`, its
   identifier secret destroyed. A subject under a legal hold is kept and reported: `completed_with_exceptions`.

The subjects come from the tenant's own MemberIndex partitions, never a Scan. Counts are exact across retries: the
return's are taken from the lines once all are written, each erasure is counted from its own closed record, and
every other store is inventoried before anything in it is removed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from chatsphere.day_index import DAY_SHARDS
from chatsphere.errors import Conflict, InvalidInput, NotFound, SubjectRestricted
from chatsphere.logic import cursors, deletion
from chatsphere.logic.deletion import DeletionPorts
from chatsphere.logic.export import OWN_BUCKET, ExportPorts, PackageSpec, build_package
from chatsphere.logic.object_keys import offboarding_prefix
from chatsphere.logic.ports import (
    BlobStore,
    JobQueue,
    OffboardingStore,
    PolicyStore,
    SettingsReader,
    TenantSecret,
)
from chatsphere.logic.requests import fail_request, finish, new_request, publish_status, to_record
from chatsphere.models.common import iso
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.export import bucket_of
from chatsphere.models.items import PolicyItem
from chatsphere.models.offboarding import ManifestLink, ManifestView, OffboardingIn, PackageLine
from chatsphere.models.requests import (
    WHOLE_TENANT,
    AnyRecord,
    DeletionDetails,
    DeletionReceipt,
    KeptSubject,
    OffboardingDetails,
    OffboardingResult,
    RequestItem,
    issued_shape,
)
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import LegalHold

PAGE = 25  # subjects per page of the walk (and package lines per batch write)
SUBJECTS_PER_RUN = 50  # subjects one invocation handles before it continues through a new message
LEFTOVERS_PER_RUN = 5000  # items one invocation removes of what the tenant leaves, LEFTOVERS_PAGE at a time
LEFTOVERS_PAGE = 100
MANIFEST_PAGE = 100  # lines read at a time into the manifest
MANIFEST = "manifest.json"
RETURN_STEPS = ("packages", "manifest")
DELETE_STEPS = ("subjects", "tallied", "packages_removed", "leftovers", "verified")
Outcome = Literal["done", "continue", "skipped", "awaiting_confirmation"]
INTERNAL = "the offboarding failed repeatedly; it may be requested again"


class _InlineJobs:
    """The erasures an offboarding opens run inside its own job, one after another: they are not queued."""

    def send(self, job: DeletionJob) -> None:
        return None


class _ReadOnce:
    """The tenant's settings and the policy in force, read once per invocation of the job and shared by every
    erasure it runs (a tenant being offboarded changes neither); the policy store's other methods pass through."""

    def __init__(self, settings: SettingsReader, policies: PolicyStore) -> None:
        self._settings, self._policies = settings, policies
        self._read: dict[str, TenantSettings] = {}
        self._in_force: dict[str, PolicyItem | None] = {}

    def get_settings(self, tenant_id: str) -> TenantSettings:
        if tenant_id not in self._read:
            self._read[tenant_id] = self._settings.get_settings(tenant_id)
        return self._read[tenant_id]

    def policy_in_force(self, tenant_id: str, at: str) -> PolicyItem | None:
        if tenant_id not in self._in_force:
            self._in_force[tenant_id] = self._policies.policy_in_force(tenant_id, at)
        return self._in_force[tenant_id]

    def add_policy(self, policy: PolicyItem) -> None:
        self._policies.add_policy(policy)

    def get_policy(self, tenant_id: str, version: str) -> PolicyItem | None:
        return self._policies.get_policy(tenant_id, version)

    def mark_announced(self, policy: PolicyItem) -> None:
        self._policies.mark_announced(policy)

    def list_policies(self, tenant_id: str) -> list[PolicyItem]:
        return self._policies.list_policies(tenant_id)


@dataclass(frozen=True)
class OffboardingPorts:
    offboarding: OffboardingStore
    export: ExportPorts  # the packages (subjects, keyring, blobs, tenants) and the records
    deletion: DeletionPorts  # each subject's erasure
    jobs: JobQueue[DeletionJob]  # this job's own continuation (DeletionQueue)
    own_buckets: frozenset[str]
    secret: TenantSecret  # the manifest's page cursors

    @property
    def blobs(self) -> BlobStore:
        return self.export.blobs

    def erasures(self) -> DeletionPorts:
        """The deletion path, its erasures run inline, sharing one read of the settings and the policy in force."""
        once = _ReadOnce(self.deletion.settings, self.deletion.policies)
        return replace(self.deletion, jobs=_InlineJobs(), settings=once, policies=once)


# ------------------------------------------------------------------ requests
def request_offboarding(
    ports: OffboardingPorts,
    tenant_id: str,
    body: OffboardingIn,
    now: datetime,
    initiated_by: Literal["api", "operator"] = "api",
) -> tuple[AnyRecord, bool]:
    """Open the tenant's offboarding and queue its return phase; the open one (or a finished one) if it has one
    already: (record, whether it is new). A failed one is replaced by a new request."""
    requests = ports.export.requests
    settings = ports.export.tenants.get_settings(tenant_id)
    if body.deliver_to is not None and body.deliver_to not in settings.portability_destinations:
        raise InvalidInput("deliver_to is not one of the tenant's portability_destinations")
    if body.deliver_to is not None and bucket_of(body.deliver_to) in ports.own_buckets:
        raise InvalidInput(OWN_BUCKET)
    replaces = ports.offboarding.current(tenant_id)
    if replaces is not None:
        existing = requests.get(tenant_id, replaces)
        if existing is not None and existing.status != "failed":
            return to_record(ports.blobs, existing, now), False
    details = OffboardingDetails(format=body.format, deliver_to=body.deliver_to, initiated_by=initiated_by)
    item = new_request(settings, tenant_id, WHOLE_TENANT, now, details)
    item = item.model_copy(update={"result": OffboardingResult()})
    try:
        ports.offboarding.create(item, replaces)
    except Conflict:  # another request opened it between our reads
        current = ports.offboarding.current(tenant_id)
        found = requests.get(tenant_id, current) if current else None
        if found is None:
            raise
        return to_record(ports.blobs, found, now), False
    publish_status(ports.export.events, item, now, retried=False)
    ports.jobs.send(DeletionJob.for_request(item))
    return to_record(ports.blobs, item, now), True


def _offboarding(ports: OffboardingPorts, tenant_id: str, request_id: str) -> RequestItem:
    item = ports.export.requests.get(tenant_id, request_id) if issued_shape(request_id) else None
    if item is None or item.type != "offboarding":
        raise NotFound("no such offboarding")
    return item


def confirm_offboarding(
    ports: OffboardingPorts, tenant_id: str, request_id: str, now: datetime
) -> tuple[AnyRecord, bool]:
    """Start phase 2 (delete) of an offboarding whose data is returned: (record, whether this call started it).
    Confirming again returns the record."""
    item = _offboarding(ports, tenant_id, request_id)
    result = _result(item)
    if item.status == "awaiting_confirmation":
        started = item.model_copy(
            update={"status": "in_progress", "result": result.model_copy(update=_step(result, "confirmed", now))}
        )
        try:
            ports.export.requests.set_status(started, ("awaiting_confirmation",))
        except Conflict:
            return to_record(ports.blobs, _offboarding(ports, tenant_id, request_id), now), False
        publish_status(ports.export.events, started, now, retried=False)
        ports.jobs.send(DeletionJob.for_request(started))
        return to_record(ports.blobs, started, now), True
    if item.is_open and "confirmed" not in result.steps:
        raise Conflict("the tenant's data is still being returned: confirm once the record is awaiting_confirmation")
    return to_record(ports.blobs, item, now), False


def manifest(
    ports: OffboardingPorts, tenant_id: str, request_id: str, now: datetime, limit: int, cursor: str | None
) -> ManifestView:
    """The manifest's digest and link, and a page of its packages, each with a link signed now for what remains of
    their lifetime (no credential is ever stored)."""
    item = _offboarding(ports, tenant_id, request_id)
    result = _result(item)
    if result.manifest_key is None or result.manifest_sha256 is None or result.expires_at is None:
        raise Conflict("the manifest is not written yet: it is once the record is awaiting_confirmation")
    remaining = int((datetime.fromisoformat(result.expires_at) - now).total_seconds())
    live = remaining > 0 and "packages_removed" not in result.steps

    def link(key: str, name: str) -> str | None:
        return ports.blobs.presign_get(key, remaining, name) if live else None

    scope = f"offboarding\n{request_id}"
    after = cursors.verify(ports.secret(tenant_id), scope, cursor) if cursor else None
    lines, next_after = ports.offboarding.lines(tenant_id, request_id, limit, after)
    prefix = offboarding_prefix(tenant_id, request_id)
    return ManifestView(
        request_id=request_id,
        manifest_sha256=result.manifest_sha256,
        manifest_url=link(result.manifest_key, MANIFEST),
        expires_at=result.expires_at,
        packages=[
            ManifestLink(**line.model_dump(exclude={"status"}), download_url=link(prefix + line.file, line.file))
            for line in lines
        ],
        next_cursor=cursors.sign(ports.secret(tenant_id), scope, next_after) if next_after else None,
    )


# ----------------------------------------------------------------------- job
def _result(item: RequestItem) -> OffboardingResult:
    return item.result if isinstance(item.result, OffboardingResult) else OffboardingResult()


def _step(result: OffboardingResult, step: str, now: datetime, **changes: object) -> dict[str, object]:
    return {"steps": {**result.steps, step: iso(now)}, **changes}


MAX_ATTEMPTS = deletion.MAX_ATTEMPTS  # DeletionQueue's: the last attempt marks the record failed


def run_offboarding(ports: OffboardingPorts, job: DeletionJob, now: datetime, attempt: int = 1) -> Outcome:
    """One invocation's share of an offboarding: `continue` when more is left for another invocation."""
    requests = ports.export.requests
    item = requests.get(job.tenant_id, job.request_id)
    if item is None or item.type != "offboarding":
        return "skipped"
    if not item.is_open:
        publish_status(ports.export.events, item, now, retried=True)
        return "skipped"
    if item.status == "awaiting_confirmation":
        return "awaiting_confirmation"
    run = _Run(ports, item, now)
    try:
        if item.status == "received":
            run.save(item.model_copy(update={"status": "in_progress"}), ("received",))
        return run.resume()
    except Exception as error:
        if attempt >= MAX_ATTEMPTS:
            fail_request(requests, ports.export.events, run.item, error, now, ("received", "in_progress"), INTERNAL)
        raise


class _Run:
    def __init__(self, ports: OffboardingPorts, item: RequestItem, now: datetime) -> None:
        self.p, self.item, self.now = ports, item, now
        self.tenant_id = item.tenant_id
        self.prefix = offboarding_prefix(item.tenant_id, item.request_id)
        self.erasures = ports.erasures()

    @property
    def result(self) -> OffboardingResult:
        return _result(self.item)

    @property
    def details(self) -> OffboardingDetails:
        assert isinstance(self.item.details, OffboardingDetails)
        return self.item.details

    def save(self, item: RequestItem, expected: tuple[str, ...] = ("in_progress",)) -> None:
        self.p.export.requests.set_status(item, expected)
        changed = item.status != self.item.status
        self.item = item
        if changed:
            publish_status(self.p.export.events, item, self.now, retried=not item.is_open)

    def update(self, **changes: object) -> None:
        self.save(self.item.model_copy(update={"result": self.result.model_copy(update=changes)}))

    def step_done(self, step: str, **changes: object) -> None:
        self.update(**_step(self.result, step, self.now, **changes))

    def resume(self) -> Outcome:
        confirmed = "confirmed" in self.result.steps
        for step in DELETE_STEPS if confirmed else RETURN_STEPS:
            if step in self.result.steps:
                continue
            if not getattr(self, f"_{step}")():
                return "continue"
        if not confirmed:
            self.save(self.item.model_copy(update={"status": "awaiting_confirmation"}))
            return "awaiting_confirmation"
        self._complete()
        return "done"

    # ------------------------------------------------------------ the walk
    def _page(self) -> tuple[list[str], bool]:
        """The next page of the tenant's subjects from where the walk stands, and whether its shard ends with it."""
        ids, more = self.p.export.subjects.subject_ids(self.tenant_id, self.result.shard, PAGE, self.result.after)
        return ids, more is None or not ids

    def _advance(self, last: str | None, shard_done: bool, **changes: object) -> None:
        position = {"shard": self.result.shard + 1, "after": None} if shard_done else {"after": last}
        self.update(**position, **changes)

    # ------------------------------------------------------------ phase 1: return
    def _packages(self) -> bool:
        """A page of subjects at a time: each package built (and delivered), then the page's lines and the new
        position in one save. A page retried builds its packages again under the same keys; lines replace
        themselves."""
        export = self.p.export
        settings = export.tenants.get_settings(self.tenant_id)
        tenant = export.tenants.get_tenant(self.tenant_id)
        name = tenant.name if tenant else self.tenant_id
        handled = 0
        while self.result.shard < DAY_SHARDS and handled < SUBJECTS_PER_RUN:
            ids, shard_done = self._page()
            lines = [
                line
                for subject_id in ids
                if (
                    line := self._package(
                        PackageSpec(
                            self.tenant_id,
                            subject_id,
                            self.details.format,
                            f"{self.prefix}{subject_id}.zip",
                            settings,
                            name,
                        )
                    )
                )
            ]
            if lines:
                self.p.offboarding.put_lines(self.tenant_id, self.item.request_id, lines)
            self._advance(ids[-1] if ids else None, shard_done)
            handled += len(ids)
        if self.result.shard < DAY_SHARDS:
            return False
        self.step_done("packages", shard=0, after=None)
        return True

    def _package(self, spec: PackageSpec) -> PackageLine | None:
        built = build_package(self.p.export, spec, self.now)
        if built is None:  # erased meanwhile
            return None
        package, profile = built
        file = spec.key.removeprefix(self.prefix)
        if self.details.deliver_to is not None:
            self.p.blobs.deliver(spec.key, self.details.deliver_to, file)
        return PackageLine(
            subject_id=spec.subject_id,
            file=file,
            sha256=package.sha256,
            bytes=package.bytes,
            interaction_count=package.manifest["interaction_count"],
            status=profile.status,
        )

    def _manifest(self) -> bool:
        """manifest.json, streamed from the lines (one page in memory), and the return's counts, taken from them."""
        upload = self.p.blobs.open_upload(self.prefix + MANIFEST, "export-package")
        digest = hashlib.sha256()
        packages = interactions = size = 0

        def write(data: bytes) -> None:
            digest.update(data)
            upload.write(data)

        try:
            write(
                b'{"format": "chatsphere-offboarding-manifest/1", "request_id": '
                + json.dumps(self.item.request_id).encode()
            )
            write(b', "algorithm": "sha256", "packages": [')
            after: str | None = None
            while True:
                lines, after = self.p.offboarding.lines(self.tenant_id, self.item.request_id, MANIFEST_PAGE, after)
                for line in lines:
                    write((b", " if packages else b"") + line.model_dump_json().encode())
                    packages, interactions, size = (
                        packages + 1,
                        interactions + line.interaction_count,
                        size + line.bytes,
                    )
                if after is None:
                    break
            write(f'], "package_count": {packages}, "interaction_count": {interactions}}}'.encode())
            upload.close()
        except BaseException:
            upload.abort()
            raise
        delivered_to = None
        if self.details.deliver_to is not None:
            delivered_to = self.p.blobs.deliver(self.prefix + MANIFEST, self.details.deliver_to, MANIFEST)
        settings = self.p.export.tenants.get_settings(self.tenant_id)
        self.step_done(
            "manifest",
            packages=packages,
            interactions=interactions,
            package_bytes=size,
            manifest_key=self.prefix + MANIFEST,
            manifest_sha256=digest.hexdigest(),
            expires_at=iso(self.now + timedelta(hours=settings.download_link_hours)),
            delivered_to=delivered_to,
            shard=0,
            after=None,
        )
        return True

    # ------------------------------------------------------------ phase 2: delete
    def _subjects(self) -> bool:
        """Each subject through the deletion path, one at a time, run to its end here. An erased subject leaves the
        index, so the walk saves its position only past the subjects a hold keeps; a rerun finds an erasure it
        left open and finishes it (request_deletion returns the open one)."""
        handled = 0
        while self.result.shard < DAY_SHARDS and handled < SUBJECTS_PER_RUN:
            ids, shard_done = self._page()
            kept = [subject_id for subject_id in ids if not self._erase(subject_id)]
            handled += len(ids)
            if shard_done:
                self._advance(None, shard_done)
            elif kept:
                self.update(after=kept[-1])
        if self.result.shard < DAY_SHARDS:
            return False
        self.step_done("subjects", shard=0, after=None)
        return False  # the tally and the removals in a fresh invocation, with all its time and memory

    def _erase(self, subject_id: str) -> bool:
        """Whether the subject is erased; False when a legal hold keeps it (now, or since an earlier erasure)."""
        ports = self.erasures
        try:
            record, _ = deletion.request_deletion(
                ports, self.tenant_id, subject_id, self.now, initiated_by="offboarding"
            )
        except SubjectRestricted:  # an earlier erasure kept it for a hold that still stands
            return False
        return self._run_erasure(record.request_id).status == "completed"

    def _run_erasure(self, request_id: str) -> RequestItem:
        """The erasure run to its end here; its closed record."""
        ports = self.erasures
        job = DeletionJob(tenant_id=self.tenant_id, request_id=request_id)
        while deletion.run_deletion(ports, job, self.now) == "continue":
            pass
        closed = ports.requests.get(self.tenant_id, request_id)
        if closed is None or closed.is_open:
            raise Conflict("the subject's erasure did not close")
        return closed

    def _tallied(self) -> bool:
        """The erasures' counts, added from their own closed records (newest first, back to the confirmation or the
        last tally: a rerun never counts one twice), and the subjects a hold keeps, from the index. An erasure still
        open is one a failure interrupted once its profile was gone (its subject left the index): it is finished
        here first."""
        requests = self.p.export.requests
        since = self.result.steps.get("last_tally", self.result.steps["confirmed"])
        removed = dict(self.result.removed)
        erased, after, done = self.result.erased, None, False
        while not done:
            records, after = requests.page(self.tenant_id, PAGE, after, None, "deletion")
            for record in records:
                if record.received_at < since:
                    done = True
                    break
                if not isinstance(record.details, DeletionDetails) or record.details.initiated_by != "offboarding":
                    continue
                if record.is_open:
                    record = self._run_erasure(record.request_id)
                receipt = record.result if isinstance(record.result, DeletionReceipt) else DeletionReceipt()
                for store, n in receipt.removed.items():
                    removed[store] = removed.get(store, 0) + n
                erased += record.status == "completed"
            done = done or after is None
        steps = {**self.result.steps, "last_tally": iso(self.now)}
        self.update(
            **_step(
                self.result.model_copy(update={"steps": steps}),
                "tallied",
                self.now,
                erased=erased,
                removed=removed,
                kept=self._kept(),
            )
        )
        return True

    def _kept(self) -> list[KeptSubject]:
        subjects, kept = self.p.export.subjects, []
        for shard in range(DAY_SHARDS):
            after: str | None = None
            while True:
                ids, after = subjects.subject_ids(self.tenant_id, shard, 1000, after)
                for subject_id in ids:
                    profile = subjects.get_profile(self.tenant_id, subject_id)
                    hold = LegalHold.model_validate(profile.legal_hold) if profile and profile.legal_hold else None
                    kept.append(
                        KeptSubject(
                            subject_id=subject_id,
                            subject_hash=self.p.deletion.tombstones.hash(self.tenant_id, subject_id),
                            deletion_request_id=profile.deletion_request_id if profile else None,
                            hold_request_id=hold.request_id if hold else None,
                        )
                    )
                if after is None:
                    break
        return kept

    def _packages_removed(self) -> bool:
        """Every version of the return's objects (the packages and the manifest): inventoried, then removed."""
        blobs = self.p.blobs
        if "packages_counted" not in self.result.steps:
            # The objects (each package, the manifest) and their versions: a page the return retried wrote its
            # packages again, so the versions can outnumber the objects.
            objects, versions = blobs.version_counts(self.prefix)
            removed = {**self.result.removed, "return_objects": objects, "return_object_versions": versions}
            self.update(**_step(self.result, "packages_counted", self.now, removed=removed))
        found = blobs.versions(self.prefix, deletion.CHUNK)
        blobs.delete_versions([(key, version) for key, version, _ in found])
        if len(found) == deletion.CHUNK:
            return False
        self.step_done("packages_removed")
        return True

    def _leftovers(self) -> bool:
        """What the tenant holds besides its subjects: inventoried by kind, then removed."""
        store, request_id = self.p.offboarding, self.item.request_id
        if "leftovers_counted" not in self.result.steps:
            removed = dict(self.result.removed)
            for kind, n in store.leftover_counts(self.tenant_id, request_id).items():
                removed[kind] = removed.get(kind, 0) + n
            self.update(**_step(self.result, "leftovers_counted", self.now, removed=removed))
        for _ in range(LEFTOVERS_PER_RUN // LEFTOVERS_PAGE):
            found = store.leftovers(self.tenant_id, request_id, LEFTOVERS_PAGE)
            store.remove(self.tenant_id, found)
            if len(found) < LEFTOVERS_PAGE:
                self.step_done("leftovers")
                return True
        return False

    def _verified(self) -> bool:
        """Only an empty read-back completes it: no subject but those kept, no return object, nothing left."""
        subjects = self.p.export.subjects.count_subjects(self.tenant_id)
        remaining = {
            "subjects": subjects - len(self.result.kept),
            "return_object_versions": len(self.p.blobs.versions(self.prefix, 1)),
            "tenant_items": len(self.p.offboarding.leftovers(self.tenant_id, self.item.request_id, 1)),
        }
        if remaining["subjects"] > 0:  # subjects created meanwhile: walk, tally and remove what they left again
            redo = ("subjects", "tallied", "leftovers_counted", "leftovers", "verified")
            self.update(steps={k: v for k, v in self.result.steps.items() if k not in redo}, shard=0, after=None)
            return False
        if any(remaining.values()):
            found = ", ".join(sorted(k for k, v in remaining.items() if v))
            raise Conflict(f"the read-back found what the offboarding must remove in: {found}")
        self.step_done("verified", remaining=remaining)
        return True

    def _complete(self) -> None:
        policy = self.p.deletion.policies.policy_in_force(self.tenant_id, iso(self.now))
        result = self.result.model_copy(update={"policy_version": policy.version if policy else None})
        done = finish(self.item, "completed_with_exceptions" if result.kept else "completed", self.now, result)
        self.p.offboarding.close(done, ("in_progress",))
        self.item = done
        publish_status(self.p.export.events, done, self.now, retried=True)
