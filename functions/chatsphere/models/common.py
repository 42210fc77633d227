"""Shared field types and the problem body (RFC 9457)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

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


# Body fields as JSON Schema (the OpenAPI document) means them; pydantic alone would coerce the rest.
def _json_integer(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


def _date_time_text(value: Any) -> Any:
    if isinstance(value, str | datetime):
        return value
    raise ValueError("must be an RFC 3339 date-time string")


# After an int's Field(...): 7 or 7.0, never true or "7".
JSON_INTEGER = BeforeValidator(_json_integer)
# RFC 3339 text with an offset (JSON has no date type), never a number of seconds.
DateTimeText = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


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
