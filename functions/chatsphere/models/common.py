"""Shared field types and the problem body (RFC 9457)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
)
from pydantic_core import PydanticCustomError

# ------------------------------------------------------------------ patterns, and what they mean in words
# Every pattern of the contract, with what it asks for in words: a 422 names the words, never the regular expression
# (a reader is not a regex engine). tests/unit/test_contract_patterns.py breaks every pattern of the document.
PATTERN_WORDS: dict[str, str] = {}


def worded(pattern: str, words: str) -> str:
    """`pattern`, registered with what it asks for in words (PATTERN_WORDS): "must be <words>"."""
    PATTERN_WORDS[pattern] = words
    return pattern


# Not made of dots alone: "." and ".." are path segments that clients and S3 consoles normalise away.
ID_PATTERN = worded(
    r"^[A-Za-z0-9._:@-]*[A-Za-z0-9_:@-][A-Za-z0-9._:@-]*$",  # lengths: min_length/max_length
    "ASCII letters, digits and the characters . _ : @ - only, and not dots alone",
)

# A subject id travels in URLs and logs, a conversation id and a channel are stored in clear (a channel also names an
# analytics cell): none may be a personal identifier. What looks like one:
# an email address: a character, then "@", then a "." somewhere after it (u@example.com; not slack:@ada);
_EMAIL_LIKE = re.compile(r"[^@]@.*[.]")
# a phone number: only digits (7 to 15, E.164's most), with at most a leading "+" and spaces, "-", "." or
# parentheses between them (4155550100, 415-555-0100, +14155550100; not 123456 nor 1234567890123456).
_PHONE_LIKE = re.compile(r"[+]?[ ().-]*(?:[0-9][ ().-]*){7,15}")
PERSONAL_ID_RULE = (
    "It is stored and logged in clear, so it must not be a personal identifier: an id that looks like an email"
    " address (a character, then @, then a dot somewhere after it) or a phone number (only digits, 7 to 15 of them,"
    " with at most a leading + and spaces, dashes, dots or parentheses between them) gets 422"
)


def looks_personal(value: str) -> bool:
    """Whether an id looks like an email address or a phone number (PERSONAL_ID_RULE)."""
    return bool(_EMAIL_LIKE.search(value) or _PHONE_LIKE.fullmatch(value))


def digit_only(value: str) -> bool:
    """Whether an id is ASCII digits and nothing else (no +, no separators): a tenant's numeric user id, which
    looks like a phone number but that a tenant with numeric_subject_ids may use as a subject id."""
    return value.isascii() and value.isdigit()


def not_a_personal_identifier(value: Any) -> Any:
    """Before the id's pattern: refuses an id that looks like an email address or a phone number, without echoing it."""
    if isinstance(value, str) and looks_personal(value):
        raise PydanticCustomError(
            "personal_identifier",
            "ids are stored in clear and appear in URLs and logs, so they must not be personal identifiers: this one"
            " looks like an email address or a phone number; use the tenant's own pseudonymous id",
        )
    return value


# THE rule of every id stored, logged or used as a name in clear (subject id, conversation id, channel), over the id's
# own shape: ClearId[Annotated[str, StringConstraints(...)]] (the shape inside, so that the schema keeps its pattern),
# with PERSONAL_ID_RULE stated in the field's description (tests/infra/test_openapi.py checks every model for both).
_Shape = TypeVar("_Shape")
ClearId = Annotated[_Shape, BeforeValidator(not_a_personal_identifier)]
# A tenant's own identifier (subject, conversation): 1 to 128 characters of [A-Za-z0-9._:@-], not only dots.
ExternalId = ClearId[Annotated[str, StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=128)]]
EXTERNAL_ID_SHAPE = "1 to 128 ASCII letters, digits and the characters . _ : @ -, not dots alone"


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


# RFC 3339's date-time (the contract's format: date-time); pydantic alone would also read a space or "_" for the T,
# "+0100", "00:00" without seconds and even "1700000000" as a time. Ranges (month 13, hour 24) are pydantic's.
_RFC_3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _date_time_text(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC_3339.fullmatch(value)):
        return value
    raise ValueError("must be an RFC 3339 date-time string")


def _in_utc_range(value: datetime) -> datetime:
    """Stored times are UTC: 0001-01-01T00:00+01:00 lies before the year 1 there, and would overflow."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must lie between the years 1 and 9999 in UTC") from None
    return value


DATE_TIME_RULES = (
    "RFC 3339 with an offset (Z, +hh:mm or -hh:mm); it must fall within the years 1 to 9999 once converted to UTC,"
    " and a leap second (second 60) is refused"
)
# After an int's Field(...): 7 or 7.0, never true or "7".
JSON_INTEGER = BeforeValidator(_json_integer)
# RFC 3339 text with an offset (JSON has no date type), never a number of seconds, within UTC's years 1 to 9999.
DateTimeText = Annotated[
    AwareDatetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_in_utc_range),
    Field(description=DATE_TIME_RULES),
]


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _date_text(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and _DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date, YYYY-MM-DD")


# A calendar day as text, YYYY-MM-DD; never a number of seconds (pydantic's lax `date` takes "0" for 1970-01-01).
DateText = Annotated[date, BeforeValidator(_date_text), Field(description="A date, YYYY-MM-DD")]


# ------------------------------------------------------------------ JSON merge patch (RFC 7396), for every PATCH
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: an object merges key by key, all the way down; null removes a key; anything else (arrays too)
    replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


_Document = TypeVar("_Document", bound=BaseModel)


def merge_patched(model: type[_Document], current: dict[str, Any], patch: dict[str, Any]) -> _Document:
    """`patch` merged onto `current` (JSON data), validated as a PUT body of `model` is: a member removed by null
    goes back to its default, or is missing (a ValidationError) if `model` requires it."""
    return model.model_validate_json(json.dumps(merge_patch(current, patch)))


def _without_none(annotation: Any) -> Any:
    """X for X | None (and Optional[X]); the annotation itself otherwise."""
    if get_origin(annotation) in (Union, UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _patch_type(annotation: Any, metadata: list[Any]) -> Any:
    """The type of a member's value in a merge patch: a model becomes its patch, a map takes null for an entry (that
    removes it), anything else is the member's own type; the same constraints either way."""
    inner = _without_none(annotation)
    if isinstance(inner, type) and issubclass(inner, StrictModel):
        return merge_patch_model(inner)
    extra: tuple[Any, ...] = ()
    if get_origin(inner) is Annotated:
        inner, *rest = get_args(inner)
        extra = tuple(rest)
    if get_origin(inner) is dict:
        key, value = get_args(inner)
        entry = _patch_type(value, []) | None
        inner = dict[key, entry]  # type: ignore[valid-type]
    parts = (*extra, *metadata)
    return Annotated[(inner, *parts)] if parts else inner


def merge_patch_model(model: type[StrictModel]) -> type[StrictModel]:
    """The JSON merge patch (RFC 7396) of `model`: every member optional and nullable (null removes it), objects
    patched member by member all the way down (a nested model's fields, a map's entries), arrays replaced whole,
    each value under the same constraints as in `model`. Derived, not written out, so that the two cannot drift;
    the merged document is validated as `model` itself (merge_patched)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        patched = _patch_type(info.annotation, info.metadata)
        extra = info.json_schema_extra
        fields[name] = (patched | None, Field(default=None, description=info.description, json_schema_extra=extra))
    return create_model(
        f"{model.__name__}Patch",
        __base__=StrictModel,
        __doc__=f"A JSON merge patch of {model.__name__}: null removes a member (back to its default, if it has one)",
        **fields,
    )


# ------------------------------------------------------------------ response size
# Lambda's payload limit of a synchronous invocation, its event and its response alike (6 MB).
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
# What a response carries besides a page's items: the page's other members (a cursor), the proxy envelope and its
# headers. Measured on a real answer by tests/integration/test_intake_api.py, and many times what they take.
RESPONSE_OVERHEAD_BYTES = 64 * 1024
# What the items of one page may add to a response: a page ends before its items pass it. With the overhead, safely
# under Lambda's limit (tests/unit/test_models.py ties the three).
PAGE_BYTE_BUDGET = 5 * 1024 * 1024


def response_bytes(value: BaseModel | str) -> int:
    """What `value` adds to a Lambda proxy response: its JSON as the resolver writes it (compact, anything not ASCII
    as a \\u escape), inside the body string that the runtime writes as JSON once more (each quote and backslash
    escaped again)."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    text = json.dumps(data, separators=(",", ":"))
    return len(text) + text.count('"') + text.count("\\")


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
    request_id: str | None = Field(
        default=None,
        description="For an erased subject (410), one being erased or one restricted under a legal hold (409): the"
        " deletion's record",
    )
