"""Domain exceptions. They carry no personal values; handlers/http.py maps them to problem bodies."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller can cause. `detail` must never hold a personal value."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class DeletionInProgress(Conflict):
    slug = "erasure-in-progress"

    def __init__(self, request_id: str | None = None) -> None:
        super().__init__("the subject is being erased; it takes no change")
        self.request_id = request_id


class SubjectRestricted(Conflict):
    """The subject's erasure completed with exceptions: a legal hold keeps what it covers (GDPR art. 18). It can
    be read and exported, and takes no change; lifting the hold completes the erasure."""

    slug = "subject-restricted"

    def __init__(self, request_id: str | None = None) -> None:
        super().__init__(
            "the subject is restricted under a legal hold: its erasure (request_id) kept what the hold covers; it can"
            " be read and exported and takes no change until the hold is lifted, which completes the erasure"
        )
        self.request_id = request_id


class Gone(DomainError):
    """The subject was erased: the id answers 410 and names the deletion that erased it."""

    status = 410
    title = "Gone"
    slug = "subject-erased"

    def __init__(self, request_id: str) -> None:
        super().__init__("the subject was erased; see request_id for the deletion's record")
        self.request_id = request_id


class PreconditionFailed(DomainError):
    """If-Match named a version that is no longer the stored one (or the resource does not exist)."""

    status = 412
    title = "Precondition failed"
    slug = "precondition-failed"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key sent again with another body."""

    status = 422
    title = "Invalid input"
    slug = "idempotency-key-reused"


class IdempotencyInProgress(Conflict):
    """An Idempotency-Key whose first request has not finished yet."""

    slug = "idempotency-in-progress"


class JobError(Exception):
    """A job's step failed for a reason its record can state: a stable code (models/requests.FailureCode) and a
    sentence naming no personal value. `permanent`: no retry can succeed, so the record fails at once."""

    def __init__(self, code: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.permanent = code, message, permanent


class Unauthorized(Exception):
    """The authorizer refuses the caller; API Gateway turns this into 401 or 403."""
