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


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"


class Unauthorized(Exception):
    """The authorizer refuses the caller; API Gateway turns this into 401 or 403."""
