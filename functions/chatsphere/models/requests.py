"""Rights request records: every export, correction, objection, deactivation and deletion leaves one.

The literals (types, statuses, what counts as open) are defined here once; the stored record and the
API view both use them. `details` and `result` have one model per request type."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, TypeAdapter, model_validator

from chatsphere.models.common import JSON_INTEGER, StrictModel, worded
from chatsphere.models.subjects import ObjectablePurpose

RequestType = Literal["export", "correction", "objection", "deactivation", "deletion", "legal_hold", "offboarding"]
RequestStatus = Literal[
    "received",
    "in_progress",
    "awaiting_confirmation",  # an offboarding whose data is returned, waiting for the controller's go-ahead
    "completed",
    "completed_with_exceptions",
    "rejected",
    "failed",
]
OPEN_STATUSES: tuple[RequestStatus, ...] = ("received", "in_progress", "awaiting_confirmation")
# A listing's status filter: one status, or `open` for any open one.
StatusFilter = RequestStatus | Literal["open"]
WHOLE_TENANT = "*"  # the subject_id of a record about the whole tenant (offboarding): never a subject's id
REQUEST_ID_PATTERN = worded(r"^r[0-9a-f]{28}$", "r and 28 lowercase hex digits, as issued")
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def issued_shape(request_id: str) -> bool:
    """Whether `request_id` has the shape of an issued id: one that has not names no request (404, nothing read)."""
    return bool(_REQUEST_ID.fullmatch(request_id))


Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]


# ----------------------------------------------------------- per-type details
class _Part(BaseModel):
    """A part of a stored record: exact fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ExportFormat = Literal["json", "csv"]


class ExportDetails(_Part):
    format: ExportFormat = "json"
    deliver_to: str | None = None


class CorrectionDetails(_Part):
    fields_changed: list[str]


class ObjectionDetails(_Part):
    purpose: ObjectablePurpose
    action: Literal["object", "withdraw"]
    changed: bool


class DeactivationDetails(_Part):
    action: Literal["deactivate", "reactivate"]
    changed: bool


class DeletionDetails(_Part):
    initiated_by: Literal["api", "retention", "hold_lifted", "offboarding"] = "api"
    follows: str | None = None  # the deletion a legal hold interrupted, when this one completes it


class LegalHoldDetails(_Part):
    action: Literal["place", "lift"]
    categories: list[str]
    reason: str | None = None  # tenant text, given when the hold is placed


class OffboardingDetails(_Part):
    format: ExportFormat = "json"
    deliver_to: str | None = None
    initiated_by: Literal["api", "operator"] = "api"


RequestDetails = (
    ExportDetails
    | CorrectionDetails
    | ObjectionDetails
    | DeactivationDetails
    | DeletionDetails
    | LegalHoldDetails
    | OffboardingDetails
)
DETAILS_BY_TYPE: dict[str, type[_Part]] = {
    "export": ExportDetails,
    "correction": CorrectionDetails,
    "objection": ObjectionDetails,
    "deactivation": DeactivationDetails,
    "deletion": DeletionDetails,
    "legal_hold": LegalHoldDetails,
    "offboarding": OffboardingDetails,
}


# ----------------------------------------------------------- per-type results
FailureCode = Literal[
    "destination_not_found",  # the delivery bucket does not exist
    "access_denied",  # the delivery role may not assume, or may not write to the destination
    "package_too_large",  # the package is over a limit of S3 (a copy's 5 GiB, a multipart upload's parts)
    "own_bucket",  # deliver_to names one of the service's own buckets
    "subject_gone",  # the subject no longer exists
    "subject_erased",  # an open export of a subject being erased
    "residue_found",  # an erasure's read-back found what it must remove
    "internal",  # anything else: the job failed on every attempt
]


class RequestError(_Part):
    """A stable `code` to act on, and a sentence that names no personal value."""

    code: FailureCode
    message: str


class Refusal(_Part):
    """Why a request was rejected or failed; the sentence names no personal value. `reason` is `error.message`,
    kept for readers from before `error` (records written then have no `error`)."""

    reason: str
    error: RequestError | None = None


def refusal(code: FailureCode, message: str) -> Refusal:
    return Refusal(reason=message, error=RequestError(code=code, message=message))


class ExportResult(_Part):
    package_key: str | None = None  # None once the package is gone (retention, or with the erased subject)
    package_removed_at: str | None = None  # when retention removed the package (export_packages)
    expires_at: str
    sha256: str
    bytes: int
    interaction_count: int
    files: list[str]
    delivered_to: str | None = None


class DeletionReceipt(_Part):
    """The proof of an erasure: what each store held and lost, the read-back, when each step finished.
    While the job runs it is its progress; it never holds a personal value (counts and times only)."""

    removed: dict[str, int] = {}  # store -> items removed (the inventory taken before anything is deleted)
    remaining: dict[str, int] | None = None  # store -> what the read-back found (all zero to complete)
    verified: bool = False
    steps: dict[str, str] = {}  # step -> when it finished
    lookup_digests: list[str] = []  # the index keys to read back; dropped from the final receipt
    held: list[str] = []  # the categories a legal hold covered when the erasure took its inventory
    kept: dict[str, int] = {}  # store -> items a legal hold keeps (completed_with_exceptions)
    kept_because: str | None = None  # the hold's reason and the request that placed it
    held_by: str | None = None  # that request: the completing write is conditioned on its hold still standing
    policy_version: str | None = None  # the tenant's privacy policy in force when the erasure completed


class KeptSubject(_Part):
    """A subject an offboarding could not erase: a legal hold keeps it (its erasure completed with exceptions)."""

    subject_id: str
    subject_hash: str  # the keyed hash: what the ledger's receipt names
    deletion_request_id: str | None  # the erasure that kept it
    hold_request_id: str | None


class OffboardingResult(_Part):
    """An offboarding's progress and, once closed, its receipt: counts per store, times per step, no personal value
    but the ids of the subjects a hold kept (the tenant's own pseudonymous ids; the ledger holds their hashes)."""

    steps: dict[str, str] = {}  # step -> when it finished; `confirmed` starts the delete phase
    shard: int = 0  # where the walk over the tenant's subjects stands: its shard and the last subject done there
    after: str | None = None
    packages: int = 0
    package_bytes: int = 0
    interactions: int = 0
    manifest_key: str | None = None
    manifest_sha256: str | None = None
    expires_at: str | None = None  # the manifest's and the packages' links last until then
    delivered_to: str | None = None
    erased: int = 0
    kept: list[KeptSubject] = []
    removed: dict[str, int] = {}  # store -> items removed: the erasures' receipts summed, then the tenant's own
    remaining: dict[str, int] | None = None  # the read-back (all zero to complete)
    policy_version: str | None = None


RequestResult = ExportResult | DeletionReceipt | OffboardingResult | Refusal
RESULT_BY_TYPE: dict[str, type[_Part]] = {
    "export": ExportResult,
    "deletion": DeletionReceipt,
    "offboarding": OffboardingResult,
}


def _typed_result(type_: Any, status: Any, raw: dict[str, Any]) -> _Part:
    model = RESULT_BY_TYPE.get(type_) if status not in ("rejected", "failed") else None
    return model.model_validate(raw) if model is not None else Refusal.model_validate(raw)


class RequestItem(BaseModel):
    """A rights request as stored (RequestsTable, pk = T#<tenant>, sk = R#<request_id>)."""

    tenant_id: str
    request_id: str
    type: RequestType
    subject_id: str
    status: RequestStatus
    received_at: str
    due_at: str
    completed_at: str | None = None
    details: RequestDetails
    result: RequestResult | None = None
    extension: dict[str, Any] | None = None
    subject_deleted: bool = False  # then subject_id holds the subject's keyed hash, never the id

    @model_validator(mode="before")
    @classmethod
    def _by_type(cls, data: Any) -> Any:
        """Each type's details (and a result, by status) validate against that type's own model."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        model = DETAILS_BY_TYPE.get(data.get("type", ""))
        details = data.get("details", {})
        if model is not None and isinstance(details, dict):
            data["details"] = model.model_validate(details)
        result = data.get("result")
        if isinstance(result, dict):
            data["result"] = _typed_result(data.get("type"), data.get("status"), result)
        return data

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


# What a profile change writes in its own transaction: no record, one, or several (a lift and the deletion it opens).
ProfileRecords = RequestItem | Sequence[RequestItem] | None


def as_records(records: ProfileRecords) -> list[RequestItem]:
    if records is None:
        return []
    return [records] if isinstance(records, RequestItem) else list(records)


# ------------------------------------------------------------------- API views
class Extension(BaseModel):
    days: int
    reason: str
    extended_at: datetime


class ExportResultView(_Part):
    """A completed export: its package and, while the package lasts, a link to it."""

    expires_at: datetime = Field(description="When the package and its link expire")
    sha256: str = Field(description="Of the package (a zip)")
    bytes: int
    interaction_count: int
    files: list[str] = Field(description="The package's files, each with its own checksum in manifest.json")
    delivered_to: str | None = Field(default=None, description="The tenant's bucket it was copied to, if any")
    package_removed_at: datetime | None = Field(default=None, description="When retention removed the package")
    download_url: str | None = Field(
        description="A presigned link to the package, signed at each read for what remains of its lifetime; null"
        " once it expired or the package is gone"
    )


class OffboardingResultView(_Part):
    """An offboarding's progress and, once closed, its receipt (the manifest: GET /v1/offboarding/{id}/manifest)."""

    steps: dict[str, str] = Field(description="Each step done, with when it finished")
    shard: int
    after: str | None
    packages: int
    package_bytes: int
    interactions: int
    manifest_sha256: str | None
    expires_at: str | None
    delivered_to: str | None
    erased: int
    kept: list[KeptSubject]
    removed: dict[str, int]
    remaining: dict[str, int] | None
    policy_version: str | None


REFUSED = (
    "For a rejected or failed request: `error` ({code, message}; code is one of "
    + ", ".join(get_args(FailureCode))
    + ") and `reason` (the same message)"
)


class RecordView(BaseModel):
    """The record a tenant reads, whatever its type. `details` names fields and counts, never personal values."""

    request_id: str = Field(description="Keep it: after an erasure, it is what names the subject's records")
    subject_id: str = Field(
        description="The subject's id; once the subject is erased, its keyed hash instead (the id is gone), and `*`"
        " for a record about the whole tenant (offboarding)"
    )
    status: RequestStatus
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None = None
    extension: Extension | None = None
    overdue: bool = Field(description="Open and past due_at")


class ExportRecord(RecordView):
    type: Literal["export"]
    details: ExportDetails
    result: ExportResultView | Refusal | None = Field(default=None, description=f"The package. {REFUSED}")


class CorrectionRecord(RecordView):
    type: Literal["correction"]
    details: CorrectionDetails
    result: Refusal | None = Field(default=None, description=REFUSED)


class ObjectionRecord(RecordView):
    type: Literal["objection"]
    details: ObjectionDetails
    result: Refusal | None = Field(default=None, description=REFUSED)


class DeactivationRecord(RecordView):
    type: Literal["deactivation"]
    details: DeactivationDetails
    result: Refusal | None = Field(default=None, description=REFUSED)


class DeletionRecord(RecordView):
    type: Literal["deletion"]
    details: DeletionDetails
    result: DeletionReceipt | Refusal | None = Field(
        default=None, description=f"The erasure's progress, then its receipt (counts and times only). {REFUSED}"
    )


class LegalHoldRecord(RecordView):
    type: Literal["legal_hold"]
    details: LegalHoldDetails
    result: Refusal | None = Field(default=None, description=REFUSED)


class OffboardingRecord(RecordView):
    type: Literal["offboarding"]
    details: OffboardingDetails
    result: OffboardingResultView | Refusal | None = Field(default=None, description=REFUSED)


# One record per type (a discriminated union on `type`), so that a client knows each one's details and result.
AnyRecord = Annotated[
    ExportRecord
    | CorrectionRecord
    | ObjectionRecord
    | DeactivationRecord
    | DeletionRecord
    | LegalHoldRecord
    | OffboardingRecord,
    Field(discriminator="type"),
]
RECORD: TypeAdapter[AnyRecord] = TypeAdapter(AnyRecord)


class RequestRecord(RootModel[AnyRecord]):
    """A rights request record: one shape per `type`, each with that type's details and result."""


class RequestPage(BaseModel):
    items: list[RequestRecord]
    next_cursor: str | None


class ExtensionIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"days": 30, "reason": "The export spans ten years of conversations"}]}
    )

    days: Annotated[
        int,
        Field(ge=1, le=365, description="At most the tenant's extension_days (GET /v1/settings); more gets 422"),
        JSON_INTEGER,
    ]
    reason: Reason
