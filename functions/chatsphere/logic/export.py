"""Export: the subject's data as one zip (rights of access, GDPR art. 15, and portability, art. 20).

The package is streamed: interactions are read a page at a time, decrypted, written into the zip,
and the zip flows into a multipart upload. Memory holds one page and one upload part, whatever the
size of the subject's history."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import IO, Any

from chatsphere.dal.keys import export_package_key
from chatsphere.errors import Conflict
from chatsphere.logic.crypto import SubjectCipher, load_cipher
from chatsphere.logic.intake import open_interaction, open_profile
from chatsphere.logic.ports import Ports, Upload
from chatsphere.logic.requests import finish
from chatsphere.models.common import iso
from chatsphere.models.items import ProfileItem, RequestItem
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import PURPOSES, Interaction

PACKAGE_KIND = "export-package"  # the tag template.yaml's lifecycle rule expires packages by
PAGE = 25  # interactions per read; each may carry up to 1 MiB of text
MAX_ATTEMPTS = 3  # the queue's maxReceiveCount in template.yaml: the last attempt marks the request failed
CSV_COLUMNS = {
    "interaction_id": "Identifier of the interaction",
    "conversation_id": "The tenant's identifier of the conversation",
    "role": "Who wrote it: customer (the subject), agent (a person at the tenant) or bot",
    "channel": "Channel it came through (e.g. web, email)",
    "occurred_at": "When it happened (ISO 8601, UTC)",
    "policy_version": "Privacy policy version in force at that time",
    "text": "The full text of the message",
}
RIGHTS = [
    {"right": "access", "how": "Ask the tenant for an export (this package)"},
    {"right": "rectification", "how": "Ask the tenant to correct your details"},
    {"right": "objection", "how": "Object to analytics, personalisation or improvement use"},
    {"right": "portability", "how": "Ask for this package to be delivered to another controller"},
    {
        "right": "deactivation",
        "how": "Ask the tenant to deactivate your account; data is kept, not used for new interactions",
    },
    {"right": "erasure", "how": "Ask the tenant to delete your data, subject to legal exceptions"},
    {"right": "complaint", "how": "Lodge a complaint with your data protection supervisory authority"},
]


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


def processing_record(settings: TenantSettings, tenant_name: str, objections: dict[str, str]) -> dict[str, Any]:
    """What GDPR art. 15(1) says the subject is owed besides the data itself."""
    return {
        "controller": tenant_name,
        "purposes": [
            {"purpose": key, "description": text, "objected": key in objections, "applies": key not in objections}
            for key, text in PURPOSES.items()
        ],
        "data_categories": {
            "identity": ["name"],
            "contact": ["email", "phone", "contact"],
            "interactions": list(CSV_COLUMNS),
        },
        "recipients": [p.model_dump() for p in settings.processors],
        "retention": {
            "identity": f"{settings.retention.profile_inactive_days} days after the last activity",
            "contact": f"{settings.retention.profile_inactive_days} days after the last activity",
            "interactions": f"{settings.retention.interactions_days} days after they occurred",
        },
        "source": "The data subject, and the controller's agents and bots in conversations with the subject",
        "automated_decision_making": "None",
        "rights": RIGHTS,
    }


def subject_document(ports: Ports, cipher: SubjectCipher, profile: ProfileItem, now: datetime) -> dict[str, Any]:
    subject = open_profile(cipher, profile).model_dump(mode="json")
    subject["objections"] = [{"purpose": p, "since": since} for p, since in sorted(profile.objections.items())]
    subject["policy_acceptances"] = sorted(
        ({"version": v, **acc, "method": "continued_use"} for v, acc in profile.accepted_policies.items()),
        key=lambda a: a["accepted_at"],
    )
    subject["exported_at"] = iso(now)
    return subject


def interactions(ports: Ports, cipher: SubjectCipher, tenant_id: str, subject_id: str) -> Iterator[Interaction]:
    after: str | None = None
    while True:
        items, after = ports.subjects.list_interactions(tenant_id, subject_id, PAGE, after)
        for item in items:
            yield open_interaction(ports, cipher, item)
        if after is None:
            return


def write_package(
    sink: Any, fmt: str, subject: dict[str, Any], record: dict[str, Any], rows: Iterator[Interaction]
) -> dict[str, Any]:
    """Write the zip to `sink`; returns the manifest (also written, last, as manifest.json)."""
    files: dict[str, dict[str, Any]] = {}
    count = 0
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:

        def entry(name: str, data: bytes) -> None:
            with zf.open(name, "w") as raw:
                out = _Hashing(raw)
                out.write(data)
            files[name] = {"sha256": out.sha256.hexdigest(), "bytes": out.size}

        entry("subject.json", json.dumps(subject, indent=2).encode())
        entry("processing_record.json", json.dumps(record, indent=2).encode())
        name = "interactions.jsonl" if fmt == "json" else "interactions.csv"
        with zf.open(name, "w", force_zip64=True) as raw:
            out = _Hashing(raw)
            if fmt == "json":
                for row in rows:
                    out.write(row.model_dump_json().encode() + b"\n")
                    count += 1
            else:
                text = io.StringIO()
                writer = csv.DictWriter(text, fieldnames=list(CSV_COLUMNS), lineterminator="\r\n")
                writer.writeheader()
                for row in rows:
                    writer.writerow(row.model_dump(mode="json", include=set(CSV_COLUMNS)))
                    count += 1
                    out.write(text.getvalue().encode())
                    text.seek(0)
                    text.truncate()
                out.write(text.getvalue().encode())
        files[name] = {"sha256": out.sha256.hexdigest(), "bytes": out.size, "records": count}
        if fmt == "csv":
            table = io.StringIO()
            plain = csv.writer(table, lineterminator="\r\n")
            plain.writerow(["file", "column", "description"])
            plain.writerows(["interactions.csv", col, desc] for col, desc in CSV_COLUMNS.items())
            entry("data_dictionary.csv", table.getvalue().encode())
        manifest = {"format": fmt, "algorithm": "sha256", "files": files, "interaction_count": count}
        with zf.open("manifest.json", "w") as raw:
            raw.write(json.dumps(manifest, indent=2).encode())
    return manifest


def run_export(ports: Ports, tenant_id: str, request_id: str, now: datetime, attempt: int = 1) -> RequestItem | None:
    """Carry out one export request. Safe to run again: a finished request is left alone, an
    interrupted one starts over under the same package key."""
    item = ports.requests.get(tenant_id, request_id)
    if item is None or not item.is_open or item.type != "export":
        return item
    if item.status == "received":
        started = item.model_copy(update={"status": "in_progress"})
        try:
            ports.requests.save(started, expected_status=("received",))
        except Conflict:
            return ports.requests.get(tenant_id, request_id)
        item = started
    try:
        done = _build(ports, item, now)
    except Exception:
        if attempt >= MAX_ATTEMPTS:
            failed = finish(item, "failed", now, {"reason": "the export failed repeatedly; request it again"})
            ports.requests.save(failed, expected_status=("in_progress",))
        raise
    ports.requests.save(done, expected_status=("in_progress",))
    return done


def _build(ports: Ports, item: RequestItem, now: datetime) -> RequestItem:
    tenant_id, subject_id = item.tenant_id, item.subject_id
    profile = ports.subjects.get_profile(tenant_id, subject_id)
    cipher = load_cipher(ports, tenant_id, subject_id) if profile else None
    if profile is None or cipher is None:
        return finish(item, "rejected", now, {"reason": "the subject no longer exists"})
    settings = ports.tenants.get_settings(tenant_id)
    tenant = ports.tenants.get_tenant(tenant_id)
    record = processing_record(settings, tenant.name if tenant else tenant_id, profile.objections)
    key = export_package_key(tenant_id, subject_id, item.request_id)
    upload = ports.blobs.open_upload(key, PACKAGE_KIND)
    sink = _HashingUpload(upload)
    try:
        fmt = item.details.get("format", "json")
        manifest = write_package(
            sink,
            fmt,
            subject_document(ports, cipher, profile, now),
            record,
            interactions(ports, cipher, tenant_id, subject_id),
        )
        upload.close()
    except BaseException:
        upload.abort()
        raise
    result: dict[str, Any] = {
        "package_key": key,
        "expires_at": iso(now + timedelta(hours=settings.download_link_hours)),
        "sha256": sink.sha256.hexdigest(),
        "bytes": upload.size,
        "interaction_count": manifest["interaction_count"],
        "files": [*sorted(manifest["files"]), "manifest.json"],
    }
    if "deliver_to" in item.details:
        result["delivered_to"] = ports.blobs.deliver(key, item.details["deliver_to"], f"{item.request_id}.zip")
    return finish(item, "completed", now, result)
