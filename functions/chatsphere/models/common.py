"""Shared field types and the problem body (RFC 9457)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"

# A tenant's own identifier (subject, conversation): 1 to 128 characters of [A-Za-z0-9._:@-].
ExternalId = Annotated[str, StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=128)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with fixed width, so that string order is time order (sort keys rely on it)."""
    utc = ts.astimezone(UTC)
    # %Y is not zero-padded below year 1000 on glibc; a short year would break order and fromisoformat.
    return f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.%fZ")


class StrictModel(BaseModel):
    """API bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is, e.g. ['body', 'email']")
    msg: str = Field(description="What is wrong, without echoing the value")
    type: str = Field(description="Machine-readable error type")


class Problem(BaseModel):
    """application/problem+json (RFC 9457)."""

    type: str = Field(description="URI that identifies the problem type")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="The request id")
    errors: list[FieldError] | None = Field(default=None, description="The fields at fault, for validation problems")
