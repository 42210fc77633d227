"""Export: the subject's data as one zip (rights of access, GDPR art. 15, and portability, art. 20):
the request (Rights function), the job (Export function) and the package.

The package is streamed: interactions are read a page at a time, decrypted, written into the zip,
and the zip flows into a multipart upload. Memory holds one page and one upload part, whatever the
size of the subject's history."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from chatsphere.errors import Conflict, InvalidInput, JobError
from chatsphere.logic import access_page, idempotency
from chatsphere.logic.codec import open_interaction, open_profile
from chatsphere.logic.crypto import Keyring, SubjectCipher
from chatsphere.logic.object_keys import export_package_key
from chatsphere.logic.ports import (
    BlobStore,
    EventPublisher,
    JobQueue,
    RequestStore,
    SubjectStore,
    TenantDirectory,
    TenantSecret,
    Upload,
)
from chatsphere.logic.processing import CSV_COLUMNS, csv_cell, processing_record
from chatsphere.logic.requests import fail_request, finish, new_request, publish_status, to_record
from chatsphere.logic.tombstones import Tombstones
from chatsphere.models.common import iso
from chatsphere.models.export import ExportIn, ExportJob, bucket_of
from chatsphere.models.items import ProfileItem
from chatsphere.models.refs import InteractionPosition
from chatsphere.models.requests import AnyRecord, ExportDetails, ExportResult, RequestItem, refusal
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import Interaction

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

OWN_BUCKET = "deliver_to names one of the service's own buckets; deliveries go to other controllers only"
PACKAGE_KIND = "export-package"  # the tag template.yaml's lifecycle rule expires packages by
PAGE = 25  # interactions per read; each may carry up to 1 MiB of text
MAX_ATTEMPTS = 3  # ExportQueue's maxReceiveCount (tests/infra ties the two): the last attempt marks it failed


@dataclass(frozen=True)
class ExportPorts:
    """What an export's request (RightsFunction) and its job (ExportFunction) touch."""

    requests: RequestStore
    subjects: SubjectStore
    keyring: Keyring
    blobs: BlobStore  # the package, its link or delivery
    tenants: TenantDirectory  # the settings (destinations, due date) and the tenant's name in the package
    events: EventPublisher
    tombstones: Tombstones
    jobs: JobQueue[ExportJob]
    own_buckets: frozenset[str]  # every bucket of the stack: never a delivery destination
    secret: TenantSecret  # the keyed names of open exports and of Idempotency-Key bodies
    idempotency_layer: Callable[[str, str], BasePersistenceLayer]  # Idempotency-Key, in the subject's partition


# ------------------------------------------------------------------- request
def open_export_name(secret: bytes, subject_id: str, body: ExportIn) -> str:
    """The keyed name of an export of this subject, format and destination while one is open: no subject id in a
    key (domain-separated from the other digests that share the secret)."""
    what = json.dumps([subject_id, body.format, body.deliver_to]).encode()
    return "export#" + hmac.new(secret, b"open-export\n" + what, hashlib.sha256).hexdigest()[:32]


def request_export(
    ports: ExportPorts, tenant_id: str, subject_id: str, body: ExportIn, now: datetime
) -> tuple[AnyRecord, bool]:
    """Record the request, then queue the job (ids only): (record, whether it is new). While an identical export
    (same subject, format and destination) is open, that one is the answer; of concurrent identical requests, one
    makes the record (a conditional marker in its transaction) and the others answer it. A lost message is
    re-queued by the monitor."""
    settings = ports.tenants.get_settings(tenant_id)
    if body.deliver_to is not None and body.deliver_to not in settings.portability_destinations:
        raise InvalidInput("deliver_to is not one of the tenant's portability_destinations")
    if body.deliver_to is not None and bucket_of(body.deliver_to) in ports.own_buckets:
        raise InvalidInput(OWN_BUCKET)
    # a restricted subject is exported too: what its legal hold kept (GDPR art. 18 allows it to be read)
    profile = ports.subjects.get_profile(tenant_id, subject_id)
    ports.tombstones.require_current(tenant_id, subject_id, profile, reading=True)
    name = open_export_name(ports.secret(tenant_id), subject_id, body)
    replaces = ports.requests.marked(tenant_id, name)
    existing = ports.requests.get(tenant_id, replaces) if replaces else None
    if existing is not None and existing.is_open:
        return to_record(ports.blobs, existing, now), False
    item = new_request(
        settings, tenant_id, subject_id, now, ExportDetails(format=body.format, deliver_to=body.deliver_to)
    )
    try:
        ports.requests.create(item, once_as=name, replaces=replaces)
    except Conflict:  # an identical request made its record between our reads
        current = ports.requests.marked(tenant_id, name)
        found = ports.requests.get(tenant_id, current) if current else None
        if found is None or not found.is_open:
            raise
        return to_record(ports.blobs, found, now), False
    publish_status(ports.events, item, now, retried=False)
    ports.jobs.send(ExportJob.for_request(item))
    return to_record(ports.blobs, item, now), True


def request_export_once(
    ports: ExportPorts, tenant_id: str, subject_id: str, idempotency_key: str, body: ExportIn, now: datetime
) -> tuple[AnyRecord, bool]:
    """request_export, at most once per (tenant, subject, Idempotency-Key): a retry gets the same request, as it
    stands now, and whether the first answer made it (logic/idempotency.at_most_once)."""

    def run() -> dict[str, Any]:
        record, new = request_export(ports, tenant_id, subject_id, body, now)
        return {"request_id": record.request_id, "new": new}  # ids only: what the idempotency record keeps

    digest = idempotency.body_digest(ports.secret(tenant_id), body)
    request = idempotency.KeyedRequest(
        tenant_id=tenant_id, subject_id=subject_id, idempotency_key=idempotency_key, body_digest=digest
    )
    answer = idempotency.at_most_once(ports.idempotency_layer(tenant_id, subject_id), "export", request, run)
    item = ports.requests.get(tenant_id, answer["request_id"])
    if item is None:  # cannot be: a record is never deleted, and an erasure removes the key's record too
        raise RuntimeError("an Idempotency-Key names a request that does not exist")
    return to_record(ports.blobs, item, now), bool(answer["new"])


# ------------------------------------------------------------------- package
class _Hashing:
    """Counts and hashes what passes through to a zip entry."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.sha256, self.size = target, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        self.target.write(data)


class _HashingUpload:
    """The whole package's SHA-256 and size, on the way into storage."""

    def __init__(self, upload: Upload) -> None:
        self.upload, self.sha256 = upload, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.upload.write(data)

    def tell(self) -> int:
        return self.upload.tell()

    def flush(self) -> None:
        self.upload.flush()


def subject_document(cipher: SubjectCipher, profile: ProfileItem, now: datetime) -> dict[str, Any]:
    subject = open_profile(cipher, profile).model_dump(mode="json")
    subject["objections"] = [{"purpose": p, "since": since} for p, since in sorted(profile.objections.items())]
    subject["policy_acceptances"] = sorted(
        ({"version": v, **acc, "method": "continued_use"} for v, acc in profile.accepted_policies.items()),
        key=lambda a: a["accepted_at"],
    )
    subject["exported_at"] = iso(now)
    return subject


def interactions(
    subjects: SubjectStore, blobs: BlobStore, cipher: SubjectCipher, tenant_id: str, subject_id: str
) -> Iterator[Interaction]:
    after: InteractionPosition | None = None
    while True:
        items, after = subjects.list_interactions(tenant_id, subject_id, PAGE, after)
        for item in items:
            yield open_interaction(blobs, cipher, item)
        if after is None:
            return


# What each field of subject.json means (data_dictionary.json; interactions.jsonl's are CSV_COLUMNS').
SUBJECT_FIELDS = {
    "subject_id": "The controller's identifier of the subject (a pseudonym)",
    "name": "Name",
    "email": "Email address",
    "phone": "Phone number (E.164)",
    "contact": "Other contact details, by kind (e.g. telegram)",
    "status": "active; deactivated (kept, not used for new interactions); restricted (kept by a legal hold only)",
    "objections": "The purposes the subject objected to, and since when (ISO 8601, UTC)",
    "processing": "Each purpose, and whether the subject's data may be used for it",
    "created_at": "When the profile was created (ISO 8601, UTC)",
    "updated_at": "When the profile last changed (ISO 8601, UTC)",
    "legal_hold": "The legal hold that keeps data from erasure, if any: its reason, categories, since when",
    "policy_acceptances": "Each privacy policy version the subject accepted, when, and how",
    "exported_at": "When this package was made (ISO 8601, UTC)",
}
JSONL_TEXT = "The full text of the message, exactly as written"


def data_dictionary(fmt: str) -> tuple[str, bytes]:
    """The package's data dictionary: a CSV of interactions.csv's columns, or a JSON of every field of subject.json
    and interactions.jsonl."""
    if fmt == "csv":
        table = io.StringIO()
        plain = csv.writer(table, lineterminator="\r\n")
        plain.writerow(["file", "column", "description"])
        plain.writerows(["interactions.csv", col, desc] for col, desc in CSV_COLUMNS.items())
        return "data_dictionary.csv", table.getvalue().encode()
    fields = {**CSV_COLUMNS, "text": JSONL_TEXT}
    document = {"subject.json": SUBJECT_FIELDS, "interactions.jsonl": {k: fields[k] for k in Interaction.model_fields}}
    return "data_dictionary.json", json.dumps(document, indent=2).encode()


def _member(name: str, now: datetime) -> zipfile.ZipInfo:
    """A zip member dated when the export was made (UTC), not 1980."""
    info = zipfile.ZipInfo(name, date_time=now.astimezone(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # a plain file, readable once unpacked
    return info


def _write_interactions(out: _Hashing, fmt: str, rows: Iterator[Interaction]) -> int:
    count = 0
    if fmt == "json":
        for row in rows:
            out.write(row.model_dump_json().encode() + b"\n")
            count += 1
        return count
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(CSV_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        cells = row.model_dump(mode="json", include=set(CSV_COLUMNS))
        writer.writerow({column: csv_cell(value) for column, value in cells.items()})
        count += 1
        out.write(text.getvalue().encode())
        text.seek(0)
        text.truncate()
    out.write(text.getvalue().encode())
    return count


def write_package(
    sink: Any,
    fmt: str,
    subject: dict[str, Any],
    record: dict[str, Any],
    rows: Callable[[], Iterator[Interaction]],
    now: datetime,
) -> dict[str, Any]:
    """Write the zip to `sink`; returns the manifest (also written, last, as manifest.json). `rows` gives the
    interactions from the first, once for the data file and once for index.html: two streamed passes, never the
    whole history in memory."""
    files: dict[str, dict[str, Any]] = {}
    dictionary, dictionary_data = data_dictionary(fmt)
    name = "interactions.jsonl" if fmt == "json" else "interactions.csv"
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:

        def entry(member: str, data: bytes) -> None:
            with zf.open(_member(member, now), "w") as raw:
                out = _Hashing(raw)
                out.write(data)
            files[member] = {"sha256": out.sha256.hexdigest(), "bytes": out.size}

        entry("subject.json", json.dumps(subject, indent=2).encode())
        entry("processing_record.json", json.dumps(record, indent=2).encode())
        with zf.open(_member(name, now), "w", force_zip64=True) as raw:
            out = _Hashing(raw)
            count = _write_interactions(out, fmt, rows())
        files[name] = {"sha256": out.sha256.hexdigest(), "bytes": out.size, "records": count}
        entry(dictionary, dictionary_data)
        with zf.open(_member("index.html", now), "w", force_zip64=True) as raw:
            out = _Hashing(raw)
            out.write(access_page.start(subject, record, now).encode())
            shown = 0
            for row in rows():
                out.write(access_page.interaction_row(row).encode())
                shown += 1
            names = ["index.html", "subject.json", name, "processing_record.json", dictionary, "manifest.json"]
            out.write(access_page.end(record, shown, names).encode())
        files["index.html"] = {"sha256": out.sha256.hexdigest(), "bytes": out.size, "records": shown}
        manifest = {"format": fmt, "algorithm": "sha256", "files": files, "interaction_count": count}
        with zf.open(_member("manifest.json", now), "w") as raw:
            raw.write(json.dumps(manifest, indent=2).encode())
    return manifest


# ----------------------------------------------------------------------- job
def run_export(ports: ExportPorts, job: ExportJob, now: datetime, *, attempt: int = 1) -> RequestItem | None:
    """Carry out one export request. Safe to run again: an interrupted one starts over under the same package
    key, and a closed one publishes its status again (a publish that failed made its queue retry the job).

    A failure no retry can mend (JobError.permanent: the destination is missing or refuses) fails the record at
    once; any other is retried, and the last attempt fails the record (`internal`) before its message goes to
    the DLQ."""
    requests, events, blobs = ports.requests, ports.events, ports.blobs
    item = requests.get(job.tenant_id, job.request_id)
    if item is None or item.type != "export":
        return item
    if not item.is_open:
        publish_status(events, item, now, retried=True)
        return item
    if item.status == "received":
        started = item.model_copy(update={"status": "in_progress"})
        try:
            requests.set_status(started, expected_status=("received",))
        except Conflict:
            return requests.get(job.tenant_id, job.request_id)
        item = started
        publish_status(events, item, now, retried=False)
    written: list[str] = []  # the package version this attempt created, if it got that far
    try:
        done = _build(ports, item, now, written)
        requests.set_status(done, expected_status=("in_progress",))
    except Exception as error:
        # No record will point at what this attempt wrote: remove it (a retry builds the package again).
        key = export_package_key(item.tenant_id, item.subject_id, item.request_id)
        for version in written:
            blobs.delete_version(key, version)
        if isinstance(error, Conflict):  # finished or cancelled meanwhile, by another worker or a deletion
            return requests.get(job.tenant_id, job.request_id)
        permanent = isinstance(error, JobError) and error.permanent
        if permanent or attempt >= MAX_ATTEMPTS:
            failed = fail_request(requests, events, item, error, now, ("in_progress",), INTERNAL)
            if permanent:
                return failed  # the record says why; a retry could not help
        raise
    publish_status(events, done, now, retried=True)
    return done


INTERNAL = "the export failed repeatedly; request it again"


@dataclass(frozen=True)
class Package:
    """A package as written: its object version, digest, size and manifest."""

    version: str | None
    sha256: str
    bytes: int
    manifest: dict[str, Any]


@dataclass(frozen=True)
class PackageSpec:
    """Whose package, in which format, under which key; and the tenant's settings and name it describes."""

    tenant_id: str
    subject_id: str
    format: str
    key: str
    settings: TenantSettings
    controller: str


def build_package(ports: ExportPorts, spec: PackageSpec, now: datetime) -> tuple[Package, ProfileItem] | None:
    """Write the subject's package to `spec.key`, streamed (one page of interactions in memory), and return it with
    the profile it was built from; None if the subject (or its key) is gone. An export's, and each subject's return
    package of an offboarding."""
    tenant_id, subject_id = spec.tenant_id, spec.subject_id
    profile = ports.subjects.get_profile(tenant_id, subject_id)
    cipher = ports.keyring.cipher(tenant_id, subject_id) if profile else None
    if profile is None or cipher is None:
        return None
    record = processing_record(spec.settings, spec.controller, profile.objections)
    key, fmt = spec.key, spec.format
    upload = ports.blobs.open_upload(key, PACKAGE_KIND)
    sink = _HashingUpload(upload)
    try:
        manifest = write_package(
            sink,
            fmt,
            subject_document(cipher, profile, now),
            record,
            lambda: interactions(ports.subjects, ports.blobs, cipher, tenant_id, subject_id),
            now,
        )
        version = upload.close()
    except BaseException:
        upload.abort()
        raise
    return Package(version=version, sha256=sink.sha256.hexdigest(), bytes=upload.size, manifest=manifest), profile


def _build(ports: ExportPorts, item: RequestItem, now: datetime, written: list[str]) -> RequestItem:
    """The finished record; `written` receives the package version created, so that a failure after it
    can remove it."""
    tenant_id, subject_id = item.tenant_id, item.subject_id
    assert isinstance(item.details, ExportDetails)  # RequestItem validates details by type
    if item.details.deliver_to is not None and bucket_of(item.details.deliver_to) in ports.own_buckets:
        return finish(item, "rejected", now, refusal("own_bucket", OWN_BUCKET))  # settings from before the check
    key = export_package_key(tenant_id, subject_id, item.request_id)
    settings = ports.tenants.get_settings(tenant_id)
    tenant = ports.tenants.get_tenant(tenant_id)
    spec = PackageSpec(tenant_id, subject_id, item.details.format, key, settings, tenant.name if tenant else tenant_id)
    built = build_package(ports, spec, now)
    if built is None:
        return finish(item, "rejected", now, refusal("subject_gone", "the subject no longer exists"))
    package, _ = built
    if package.version is not None:
        written.append(package.version)
    delivered_to = None
    if item.details.deliver_to is not None:
        delivered_to = ports.blobs.deliver(key, item.details.deliver_to, f"{item.request_id}.zip")
    result = ExportResult(
        package_key=key,
        expires_at=iso(now + timedelta(hours=settings.download_link_hours)),
        sha256=package.sha256,
        bytes=package.bytes,
        interaction_count=package.manifest["interaction_count"],
        files=[*sorted(package.manifest["files"]), "manifest.json"],
        delivered_to=delivered_to,
    )
    return finish(item, "completed", now, result)
