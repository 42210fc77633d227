"""Rights request records: creation with a deadline, status transitions, extension, listing."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from chatsphere.errors import Conflict, InvalidInput, JobError, NotFound
from chatsphere.logic import cursors
from chatsphere.logic.ports import BlobStore, EventPublisher, RequestStore, SettingsReader, TenantSecret
from chatsphere.models.common import iso
from chatsphere.models.requests import (
    DETAILS_BY_TYPE,
    OPEN_STATUSES,
    RECORD,
    AnyRecord,
    ExportResult,
    ExportResultView,
    ExtensionIn,
    FailureCode,
    OffboardingResult,
    OffboardingResultView,
    RequestDetails,
    RequestItem,
    RequestPage,
    RequestResult,
    RequestStatus,
    RequestType,
    StatusFilter,
    issued_shape,
    refusal,
)
from chatsphere.models.settings import TenantSettings
from chatsphere.telemetry import logger


@dataclass(frozen=True)
class RequestsPorts:
    """What reading, listing and extending request records touch."""

    requests: RequestStore
    blobs: BlobStore  # an export's download link
    secret: TenantSecret  # cursors
    settings: SettingsReader  # the extension limit


_TYPE_OF: dict[type, RequestType] = {model: type_ for type_, model in DETAILS_BY_TYPE.items()}  # type: ignore[misc]


def new_request_id(now: datetime) -> str:
    """Time-ordered (newest first is one reverse Query) and unguessable: r + 12 hex of ms + 16 random hex."""
    return f"r{int(now.timestamp() * 1000):012x}{secrets.token_hex(8)}"


def new_request(
    settings: TenantSettings,
    tenant_id: str,
    subject_id: str,
    now: datetime,
    details: RequestDetails,
    *,
    status: RequestStatus = "received",
) -> RequestItem:
    """A record of the request that `details` describes (its model names the type), due per the tenant."""
    return RequestItem(
        tenant_id=tenant_id,
        request_id=new_request_id(now),
        type=_TYPE_OF[type(details)],
        subject_id=subject_id,
        status=status,
        received_at=iso(now),
        due_at=iso(now + timedelta(days=settings.deadline_days)),
        completed_at=None if status in OPEN_STATUSES else iso(now),
        details=details,
    )


def finish(item: RequestItem, status: RequestStatus, now: datetime, result: RequestResult | None = None) -> RequestItem:
    return item.model_copy(update={"status": status, "completed_at": iso(now), "result": result})


# ------------------------------------------------------------ status events
STATUS_CHANGED = "RightsRequestStatusChanged"


def status_event(item: RequestItem, now: datetime) -> dict[str, str]:
    """Ids, type, status and time: never the subject (id or hash), never a personal value. A closed record's time
    is its completed_at, so that publishing it again (a retry) repeats the same event."""
    return {
        "tenant_id": item.tenant_id,
        "request_id": item.request_id,
        "type": item.type,
        "status": item.status,
        "time": item.completed_at if item.completed_at and not item.is_open else iso(now),
    }


def publish_status(events: EventPublisher, item: RequestItem, now: datetime, *, retried: bool) -> None:
    """Publish the record's status once its write succeeded (it never undoes the write).

    `retried`: the caller is a job step whose failure its queue retries, and whose rerun publishes the status
    again (a closed record's terminal status: at least once); a failed publish raises. Otherwise (the API,
    where the write has been answered, and `in_progress`) the event is best-effort: a failure is logged."""
    if retried:
        events.publish(STATUS_CHANGED, status_event(item, now))
        return
    try:
        events.publish(STATUS_CHANGED, status_event(item, now))
    except Exception:
        logger.exception("status event not published", extra={"request_id": item.request_id, "status": item.status})


def fail_request(
    requests: RequestStore,
    events: EventPublisher,
    item: RequestItem,
    error: BaseException,
    now: datetime,
    expected_status: tuple[str, ...],
    internal: str,
) -> RequestItem:
    """Mark a job's request `failed` with why (`result.error`: a stable code, a sentence naming no personal
    value; `internal` for any other error), log it once at ERROR (code and request id only), publish the status."""
    code, message = (error.code, error.message) if isinstance(error, JobError) else ("internal", internal)
    failed = finish(item, "failed", now, refusal(cast(FailureCode, code), message))
    requests.set_status(failed, expected_status)
    logger.error(f"{item.type} request failed", extra={"request_id": item.request_id, "code": code})
    publish_status(events, failed, now, retried=True)
    return failed


def to_record(blobs: BlobStore, item: RequestItem, now: datetime) -> AnyRecord:
    """The API view. An export's download link is signed at read time for what remains of its lifetime,
    so no credential is ever stored and the link never outlives the tenant's setting."""
    result: Any = item.result
    if isinstance(item.result, ExportResult):
        remaining = int((datetime.fromisoformat(item.result.expires_at) - now).total_seconds())
        key = item.result.package_key
        url = blobs.presign_get(key, remaining, f"{item.request_id}.zip") if remaining > 0 and key else None
        result = ExportResultView(**item.result.model_dump(exclude={"package_key"}), download_url=url)
    elif isinstance(item.result, OffboardingResult):  # its links: GET /v1/offboarding/{request_id}/manifest
        result = OffboardingResultView(**item.result.model_dump(exclude={"manifest_key"}))
    return RECORD.validate_python(
        {
            "request_id": item.request_id,
            "type": item.type,
            "subject_id": item.subject_id,
            "status": item.status,
            "received_at": datetime.fromisoformat(item.received_at),
            "due_at": datetime.fromisoformat(item.due_at),
            "completed_at": datetime.fromisoformat(item.completed_at) if item.completed_at else None,
            "details": item.details,
            "result": result,
            "extension": item.extension,
            "overdue": item.is_open and item.due_at < iso(now),
        }
    )


def get_request(ports: RequestsPorts, tenant_id: str, request_id: str, now: datetime) -> AnyRecord:
    item = ports.requests.get(tenant_id, request_id) if issued_shape(request_id) else None
    if item is None:
        raise NotFound("no such request")
    return to_record(ports.blobs, item, now)


def extend_request(
    ports: RequestsPorts, tenant_id: str, request_id: str, body: ExtensionIn, now: datetime
) -> AnyRecord:
    """Push due_at back once, by at most the tenant's extension_days, with a reason (GDPR art. 12(3))."""
    item = ports.requests.get(tenant_id, request_id) if issued_shape(request_id) else None
    if item is None:
        raise NotFound("no such request")
    limit = ports.settings.get_settings(tenant_id).extension_days
    if body.days > limit:
        raise InvalidInput(f"the extension may be at most {limit} days")
    if not item.is_open:
        raise Conflict("only an open request can be extended")
    if item.extension is not None:
        raise Conflict("a request can be extended only once")
    due = datetime.fromisoformat(item.due_at) + timedelta(days=body.days)
    extended = item.model_copy(
        update={"due_at": iso(due), "extension": {"days": body.days, "reason": body.reason, "extended_at": iso(now)}}
    )
    ports.requests.extend(extended, previous_due_at=item.due_at)  # exactly one of concurrent extensions wins
    return to_record(ports.blobs, extended, now)


# ------------------------------------------------------------------- listing
@dataclass(frozen=True)
class RequestFilter:
    """What a listing of records keeps: a status (`open`: any open one), a type, one subject's; `overdue` lists open
    records past due, most overdue first."""

    status: StatusFilter | None = None
    type_: RequestType | None = None
    subject_id: str | None = None
    overdue: bool = False

    @property
    def statuses(self) -> tuple[RequestStatus, ...] | None:
        return OPEN_STATUSES if self.status == "open" else (self.status,) if self.status else None

    def keeps(self, item: RequestItem) -> bool:
        statuses, subject = self.statuses, self.subject_id
        return (
            (statuses is None or item.status in statuses)
            and (self.type_ is None or item.type == self.type_)
            and (subject is None or (item.subject_id == subject and not item.subject_deleted))
        )

    @property
    def scope(self) -> str:
        """A cursor's scope: the listing and all its filters, so that a cursor fits only the query that issued it."""
        return "requests\n" + json.dumps(asdict(self), sort_keys=True)


def list_requests(
    ports: RequestsPorts, tenant_id: str, now: datetime, wanted: RequestFilter, *, limit: int, cursor: str | None
) -> RequestPage:
    """A page of the tenant's records that `wanted` keeps, newest first (overdue: most overdue first); a cursor
    issued for another combination of filters is refused (400)."""
    key = ports.secret(tenant_id)
    after = json.loads(cursors.verify(key, wanted.scope, cursor)) if cursor else None
    statuses = wanted.statuses
    if wanted.overdue:
        if statuses is not None and not set(statuses) & set(OPEN_STATUSES):
            return RequestPage(items=[], next_cursor=None)  # a closed request is never overdue
        items: list[RequestItem] = []
        position = (after["d"], after["r"]) if after else None
        # The index holds only open, overdue-capable items; filter the rest here, page by page.
        while len(items) < limit:
            page, position = ports.requests.overdue_page(tenant_id, iso(now), limit, position)
            items.extend(filter(wanted.keeps, page))
            if position is None:
                break
        items, more = items[:limit], position is not None or len(items) > limit
        last = items[-1] if items and more else None
        next_position = {"d": last.due_at, "r": last.request_id} if last else None
    else:
        start = after["r"] if after else None
        items, last_id = ports.requests.page(tenant_id, limit, start, statuses, wanted.type_, wanted.subject_id)
        next_position = {"r": last_id} if last_id else None
    next_cursor = cursors.sign(key, wanted.scope, json.dumps(next_position, sort_keys=True)) if next_position else None
    return RequestPage(items=[to_record(ports.blobs, i, now) for i in items], next_cursor=next_cursor)
