"""The subject's rights other than erasure: correction, objection, deactivation, and export requests.

Every change leaves a request record, written in the same transaction as the change itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatsphere.errors import InvalidInput, NotFound
from chatsphere.logic.crypto import load_cipher
from chatsphere.logic.intake import open_fields, open_profile, profile_digests, seal_fields, write_profile
from chatsphere.logic.ports import Ports
from chatsphere.logic.requests import new_request, to_record
from chatsphere.models.common import iso
from chatsphere.models.items import ProfileItem, RequestItem
from chatsphere.models.rights import ExportIn, RequestRecord, RequestType
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import ObjectablePurpose, Subject, SubjectPatch


def _require(existing: ProfileItem | None) -> ProfileItem:
    if existing is None:
        raise NotFound("no such subject")
    return existing


def _completed(
    settings: TenantSettings,
    tenant_id: str,
    type_: RequestType,
    subject_id: str,
    now: datetime,
    details: dict[str, Any],
) -> RequestItem:
    return new_request(settings, tenant_id, type_, subject_id, now, status="completed", details=details)


def correct_subject(ports: Ports, tenant_id: str, subject_id: str, patch: SubjectPatch, now: datetime) -> Subject:
    """Apply a merge patch; the record lists the names of the fields whose value changed."""
    cipher = load_cipher(ports, tenant_id, subject_id)
    if cipher is None:
        raise NotFound("no such subject")
    given = patch.model_dump(include=patch.model_fields_set)
    stamp = iso(now)
    settings = ports.tenants.get_settings(tenant_id)  # once, not on every retry of the change

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = _require(existing)
        values = open_fields(cipher, current.sealed)
        changed = sorted(f for f, v in given.items() if values.get(f) != v)
        values.update(given)
        item = current.model_copy(
            update={
                "sealed": seal_fields(cipher, values),
                "lookups": profile_digests(ports, tenant_id, values),
                "updated_at": stamp,
                "version": current.version + 1,
            }
        )
        return item, _completed(settings, tenant_id, "correction", subject_id, now, {"fields_changed": changed})

    item, _ = write_profile(ports, tenant_id, subject_id, apply)
    return open_profile(cipher, item)


def set_objection(
    ports: Ports, tenant_id: str, subject_id: str, purpose: ObjectablePurpose, objecting: bool, now: datetime
) -> Subject:
    stamp = iso(now)
    settings = ports.tenants.get_settings(tenant_id)

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = _require(existing)
        objections = dict(current.objections)
        changed = (purpose in objections) != objecting
        if objecting:
            objections.setdefault(purpose, stamp)
        else:
            objections.pop(purpose, None)
        item = current.model_copy(
            update={"objections": objections, "updated_at": stamp, "version": current.version + 1}
        )
        details = {"purpose": purpose, "action": "object" if objecting else "withdraw", "changed": changed}
        return item, _completed(settings, tenant_id, "objection", subject_id, now, details)

    item, _ = write_profile(ports, tenant_id, subject_id, apply)
    return open_profile(load_cipher(ports, tenant_id, subject_id), item)


def set_deactivated(ports: Ports, tenant_id: str, subject_id: str, deactivated: bool, now: datetime) -> Subject:
    """Deactivation keeps every datum (readable, exportable) but takes no new interactions."""
    stamp = iso(now)
    settings = ports.tenants.get_settings(tenant_id)
    status = "deactivated" if deactivated else "active"

    def apply(existing: ProfileItem | None) -> tuple[ProfileItem, RequestItem]:
        current = _require(existing)
        details = {"action": "deactivate" if deactivated else "reactivate", "changed": current.status != status}
        item = current.model_copy(update={"status": status, "updated_at": stamp, "version": current.version + 1})
        return item, _completed(settings, tenant_id, "deactivation", subject_id, now, details)

    item, _ = write_profile(ports, tenant_id, subject_id, apply)
    return open_profile(load_cipher(ports, tenant_id, subject_id), item)


def request_export(ports: Ports, tenant_id: str, subject_id: str, body: ExportIn, now: datetime) -> RequestRecord:
    """Record the request, then queue the job (ids only). A lost message is re-queued by the monitor."""
    settings = ports.tenants.get_settings(tenant_id)
    if body.deliver_to is not None and body.deliver_to not in settings.portability_destinations:
        raise InvalidInput("deliver_to is not one of the tenant's portability_destinations")
    if ports.subjects.get_profile(tenant_id, subject_id) is None:
        raise NotFound("no such subject")
    details: dict[str, Any] = {"format": body.format}
    if body.deliver_to is not None:
        details["deliver_to"] = body.deliver_to
    item = new_request(settings, tenant_id, "export", subject_id, now, details=details)
    ports.requests.create(item)
    ports.export_jobs.send(export_message(item))
    return to_record(ports, item, now)


def export_message(item: RequestItem) -> dict[str, str]:
    return {"tenant_id": item.tenant_id, "request_id": item.request_id}
