"""The HTTP edge shared by every API function: one resolver shape, one error mapping, one body check.

Every error leaves as application/problem+json (RFC 9457); nothing a caller sends can make a 5xx."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from chatsphere.config import get_config
from chatsphere.errors import DomainError, Unauthorized
from chatsphere.logic.preconditions import IF_MATCH_PATTERN, etag
from chatsphere.models.common import (
    EXTERNAL_ID_SHAPE,
    ID_PATTERN,
    LAMBDA_PAYLOAD_BYTES,
    PATTERN_WORDS,
    PERSONAL_ID_RULE,
    FieldError,
    Problem,
    digit_only,
    looks_personal,
    not_a_personal_identifier,
    worded,
)
from chatsphere.observability import logger, metrics, tracer

PROBLEM_JSON = "application/problem+json"
MERGE_PATCH_JSON = "application/merge-patch+json"

# The {subject_id} path parameter of every subject route; an email address or phone number is refused before
# anything is read or written (ExternalId carries the one rule; not Path's own pattern, which Powertools would drop
# from the schema).
# A digit-only id (a numeric user id) looks like a phone number too; a tenant whose settings say
# numeric_subject_ids: true may use one. Only such an id reads the settings (one GetItem): others read nothing more.
NUMERIC_IDS_RULE = (
    "An id of digits only (e.g. 1234567) is accepted when the tenant's setting numeric_subject_ids is true"
    " (PATCH /v1/settings); a leading +, separators and email-like ids never are"
)
_event: ContextVar[Mapping[str, Any] | None] = ContextVar("chatsphere_event", default=None)


def _numeric_ids_allowed() -> bool:
    """Whether the tenant of the event being handled has numeric_subject_ids (no event or tenant: no)."""
    event = _event.get()
    context = ((event or {}).get("requestContext") or {}).get("authorizer")
    tenant = context.get("tenant_id") if isinstance(context, Mapping) else None
    if not isinstance(tenant, str) or not tenant:
        return False
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.settings import read_settings

    return read_settings(wiring().settings, tenant)[0].numeric_subject_ids


def _subject_id_rule(value: Any) -> Any:
    """ExternalId's rule, but for a digit-only id of a tenant with numeric_subject_ids; without the setting, the
    422 says that it exists. Never echoes the id."""
    if isinstance(value, str) and digit_only(value) and looks_personal(value):
        if _numeric_ids_allowed():
            return value
        raise PydanticCustomError(
            "numeric_subject_id",
            "subject_id is digits only, which looks like a phone number, and ids are stored in clear and appear in"
            " URLs and logs; a tenant whose ids are numeric user ids sets numeric_subject_ids: true in its settings"
            " (PATCH /v1/settings), else use the tenant's own pseudonymous id",
        )
    return not_a_personal_identifier(value)


_SUBJECT_ID = Annotated[
    Annotated[str, StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=128)],
    BeforeValidator(_subject_id_rule),
]
SUBJECT_ID_RULES = (
    f"The tenant's own pseudonymous user id, also in URLs: {EXTERNAL_ID_SHAPE}. {PERSONAL_ID_RULE}. {NUMERIC_IDS_RULE}"
)
SubjectId = Annotated[_SUBJECT_ID, Path(description=SUBJECT_ID_RULES, examples=["cust-001"])]
# The same id as a query parameter (a listing's filter), under the same rules.
SubjectIdQuery = Annotated[
    _SUBJECT_ID | None,
    Query(
        description=f"Only this subject's records. {SUBJECT_ID_RULES}. An erased subject's records name it by a keyed"
        " hash, so they are no longer found by its id: keep each request_id",
        examples=["cust-001"],
    ),
]
# Any string of the right length has the schema's shape; only a cursor the API signed is accepted.
CURSOR_RULES = (
    "The next_cursor of the previous page, unchanged: cursors are signed, and one this API did not return for this"
    " listing (edited, made up, from another listing or tenant) gets 400"
)
# The shape of a cursor (base64url position, a dot, base64url tag): an example can only show it, a real one is issued.
CURSOR_EXAMPLE = "MjAyNi0xMS0yOVQxMDoxNTowMFo.Vb3kQm9xT2hHc1pF"
# A request id of the issued shape (r, then 28 hex digits); no request has it, so an example names none.
REQUEST_ID_EXAMPLE = "r0123456789abcdef0123456789ab"
PROBLEM_BASE = "https://chatsphere.dev/problems/"
# Lambda's own payload limit; a 1 MiB text may grow up to 6x when JSON-escaped.
MAX_BODY_BYTES = LAMBDA_PAYLOAD_BYTES

_DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON (or repeats a key), not UTF-8, a cursor this API did not issue, or"
    " a query parameter the route does not take (unknown-query-parameter)",
    401: "No API key",
    403: "The API key is not valid",
    404: "No such resource for this tenant",
    409: "Conflicts with the resource's current state: e.g. the subject is being erased (problem type"
    " erasure-in-progress) or restricted under a legal hold (subject-restricted: readable and exportable, it takes"
    " no change until the hold is lifted); `request_id` names the deletion",
    410: "The subject was erased; `request_id` names the deletion",
    413: "Body or text too large",
    412: "If-Match does not name the current version (the ETag of a GET); nothing was written",
    415: "Body is not application/json (a PATCH also takes application/merge-patch+json)",
    422: "Fields at fault are listed in `errors`",
    500: "Backend failure; retry later",
}


def problem_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI responses for the problem bodies a route can return (401, 403, 500 and 400 always)."""
    codes = sorted({400, 401, 403, 500, *statuses})
    return {code: {"description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: {"model": Problem}}} for code in codes}


def body_response(status: int, description: str, model: Any) -> dict[int, Any]:
    """OpenAPI response for a JSON body of `model`."""
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


ACCEPTED_HEADERS = {
    "Location": {
        "description": "The request record's URL, path-absolute (the stage's base path, then "
        "/v1/requests/{request_id}): poll it for the status",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before polling the record: about how long this kind of job takes (each"
        " deployment sets it per job type)",
        "schema": {"type": "string", "pattern": worded("^[0-9]+$", "a whole number of seconds")},
    },
}


def accepted_response(description: str, model: Any) -> dict[int, Any]:
    """OpenAPI response for a 202: the record as the body, and where and when to poll it."""
    return {202: {**body_response(202, description, model)[202], "headers": ACCEPTED_HEADERS}}


def accepted(resolver: Any, record: Any) -> Response[Any]:
    """202 with the record, `Location` (its URL under the same base path as the request's) and `Retry-After`."""
    event = resolver.current_event
    full, path = event.request_context.path or "", event.path
    base = full[: -len(path)] if path and full.endswith(path) else ""  # e.g. /dev on an execute-api URL
    retry = get_config().retry_after(record.type)
    headers = {"Location": f"{base}/v1/requests/{record.request_id}", "Retry-After": str(retry)}
    return Response(status_code=202, content_type="application/json", body=to_json(record), headers=headers)


# The Idempotency-Key header of a POST that a retry could double (interactions, exports).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=worded(r"^[A-Za-z0-9._:-]{1,128}$", "1 to 128 ASCII letters, digits and the characters . _ : -"),
        examples=["a1b2c3d4-0001"],
        description="Makes retries safe for a day: the same key and body give the first answer, a different body"
        " gets 422, and a retry while the first is running gets 409",
    ),
]
# The If-Match header of a PUT or PATCH of a versioned resource (subjects, settings).
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=IF_MATCH_PATTERN,
        max_length=1024,
        examples=['"1"'],
        description="Write only if the resource is still at one of these versions: the ETag of a GET (or of the "
        "last write), or `*` for any existing version. Otherwise 412 and nothing is written; the check is the "
        "write's own condition, so of two writers holding the same ETag only one succeeds. Weak tags never match",
    ),
]
ETAG_HEADER = {
    "ETag": {
        "description": "A strong validator of this version of the resource: send it back as If-Match",
        "schema": {"type": "string", "pattern": worded(r'^"[0-9]+"$', "a version number in double quotes")},
    }
}


def versioned_response(status: int, description: str, model: Any) -> dict[int, Any]:
    """OpenAPI response for a JSON body of `model` with its ETag."""
    return {status: {**body_response(status, description, model)[status], "headers": ETAG_HEADER}}


def with_etag(body: Any, version: int, status: int = 200) -> Response[Any]:
    """A JSON answer carrying the ETag of the version it shows."""
    return Response(
        status_code=status, content_type="application/json", body=to_json(body), headers={"ETag": etag(version)}
    )


def problem(
    status: int,
    detail: str,
    slug: str | None = None,
    errors: list[FieldError] | None = None,
    request_id: str | None = None,
) -> Response[str]:
    title = HTTPStatus(status).phrase
    body = Problem(
        type=PROBLEM_BASE + (slug or title.lower().replace(" ", "-")),
        title=title,
        status=status,
        detail=detail,
        instance=logger.get_correlation_id(),
        errors=errors,
        request_id=request_id,
    )
    return Response(status_code=status, content_type=PROBLEM_JSON, body=body.model_dump_json(exclude_none=True))


def _message(err: Mapping[str, Any]) -> str:
    """What is wrong, in words: a pattern's words (PATTERN_WORDS) rather than the regular expression pydantic quotes."""
    if err.get("type") == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(str((err.get("ctx") or {}).get("pattern")))
        return f"must be {words}" if words else "does not have the documented shape"
    return str(err.get("msg") or err.get("type") or "invalid")


def _field_errors(raw: Any) -> list[FieldError]:
    """Pydantic's errors without their `input` (it may be personal), each with a msg in words."""
    out = []
    for err in raw:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append(FieldError(loc=loc, msg=_message(err), type=str(err.get("type", "invalid"))))
    return out


@contextmanager
def merged_body() -> Iterator[None]:
    """Around a merge patch's logic (PATCH): the merged document is validated as a PUT body is, and its errors are
    the body's own (422 with their fields, nothing written)."""
    try:
        yield
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None


DUPLICATE_KEY = "an object repeats a key"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A strict parser's objects: a repeated key is an error, not "the last one wins"."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise json.JSONDecodeError(DUPLICATE_KEY, "", 0)
    return data


def _json_body(text: str) -> Any:
    """json.loads for request bodies: every way a body fails to parse is a 400, and a top-level array
    is refused (Powertools would validate its first element as the body and drop the rest), and so is `null` (an
    optional body would take it as absent)."""
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise json.JSONDecodeError(error.msg if error.msg == DUPLICATE_KEY else "not valid JSON", "", 0) from None
    except (RecursionError, ValueError):  # nesting depth and the int digit limit, not only syntax errors
        raise json.JSONDecodeError("not valid JSON", "", 0) from None
    if isinstance(data, list) or data is None:  # `null` is no object either, even where the body may be left out
        raise RequestValidationError(
            [{"type": "model_attributes_type", "loc": ("body",), "msg": "Input should be an object"}]
        )
    return data


UNKNOWN_QUERY = "unknown-query-parameter"


def _declared_query_only(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A query parameter the route does not declare is a 400, not silently ignored: a misspelt filter
    (`?subjectid=`) would otherwise return everything. The answer names the declared ones, never what was sent.
    A request without a tenant is a 401 first, whatever its query."""
    tenant_id(app)
    route = app.context.get("_route")
    declared = {param.alias for param in route.dependant.query_params} if route is not None else set()
    sent = set(app.current_event.resolved_query_string_parameters or {})
    if sent - declared:
        takes = f"only {', '.join(sorted(declared))}" if declared else "none"
        return problem(400, f"the query has a parameter this route does not take (it takes {takes})", UNKNOWN_QUERY)
    return next_middleware(app)


def make_resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_json_body)
    app.use(middlewares=[_declared_query_only])

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(_: RequestUnsupportedContentType) -> Response[str]:
        return problem(415, "send the body as application/json", "unsupported-media-type")

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[str]:
        errors = _field_errors(error.errors())
        if any(e.type == "json_invalid" for e in errors):
            repeated = any((e.get("ctx") or {}).get("error") == DUPLICATE_KEY for e in error.errors())
            return problem(
                400, f"the body is not valid JSON{'; ' + DUPLICATE_KEY if repeated else ''}", "malformed-json"
            )
        return problem(422, "the request has invalid fields; see errors", "validation", errors)

    @app.exception_handler(DomainError)
    def _domain(error: DomainError) -> Response[str]:
        return problem(error.status, error.detail, error.slug, request_id=getattr(error, "request_id", None))

    @app.exception_handler(Unauthorized)
    def _unauthorized(_: Unauthorized) -> Response[str]:
        return problem(401, "no tenant in the authorizer context")

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return problem(404, "no such route")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        # The type only: messages of backend exceptions may quote data.
        logger.error("unhandled error", extra={"error_type": type(error).__name__})
        metrics.add_metric(name="UnhandledErrors", unit="Count", value=1)
        return problem(500, "the service failed; retry later", "internal")

    return app


def tenant_id(app: APIGatewayRestResolver | Router) -> str:
    """The tenant, from the authorizer's context only: never from the path, body or headers."""
    context = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer")
    value = context.get("tenant_id") if isinstance(context, Mapping) else None
    if not isinstance(value, str) or not value:
        raise Unauthorized("no tenant in context")
    logger.append_keys(tenant_id=value)
    return value


def precheck(event: dict[str, Any]) -> Response[str] | None:
    """Check the raw body before Powertools reads it: size, base64, UTF-8, media type.

    Normalises a base64 body to text in place, so that Powertools never meets bytes that are not UTF-8."""
    body = event.get("body")
    if body is None or body == "":
        return None
    raw = _raw_body(event, body)
    if isinstance(raw, Response):
        return raw
    if len(raw) > MAX_BODY_BYTES:
        return problem(413, f"the body exceeds {MAX_BODY_BYTES} bytes", "payload-too-large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return problem(400, "the body is not UTF-8", "malformed-body")
    refused = _canonical_media_type(event)
    if refused is not None:
        return refused
    event["body"], event["isBase64Encoded"] = text, False
    return None


def _raw_body(event: dict[str, Any], body: str) -> bytes | Response[str]:
    """The body's bytes as the client sent them, or the answer to a base64 body that does not decode."""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return problem(400, "the body is not valid base64", "malformed-body")


def _canonical_media_type(event: dict[str, Any]) -> Response[str] | None:
    """Refuses a body that is not JSON; otherwise writes its Content-Type as Powertools compares it."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media, _, parameters = (headers.get("content-type") or "").partition(";")
    # A PATCH is a JSON merge patch (RFC 7396), sent as such or as plain JSON.
    accepted = ("application/json", MERGE_PATCH_JSON) if event.get("httpMethod") == "PATCH" else ("application/json",)
    if media.strip().lower() not in accepted:
        return problem(415, f"send the body as {' or '.join(accepted)}", "unsupported-media-type")
    # Media types are case-insensitive (RFC 9110); Powertools compares them as written, and reads JSON only.
    canonical = "application/json" + (";" + parameters if parameters else "")
    for name in [k for k in event.get("headers") or {} if k.lower() == "content-type"]:
        event["headers"][name] = canonical
    for name in [k for k in event.get("multiValueHeaders") or {} if k.lower() == "content-type"]:
        event["multiValueHeaders"][name] = [canonical]
    return None


# Percent-escapes of the characters an id may hold ([A-Za-z0-9._:@-]); clients encode ':' and '@' in paths.
_ID_CHAR_ESCAPE = re.compile(r"%(2[DEde]|3[0-9Aa]|40|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff])")


def decode_path(event: dict[str, Any]) -> None:
    """A REST API hands over the path as sent, percent-encoded, and Powertools reads path parameters from it:
    decode the escapes of id characters (u%40x is u@x). Others stay encoded: %2F must not split a segment,
    and no id holds them, so they fail validation (422) rather than routing (404)."""
    path = event.get("path")
    if isinstance(path, str) and "%" in path:
        event["path"] = _ID_CHAR_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path)


def no_store(response: dict[str, Any]) -> None:
    """Every answer may carry personal data or describe it: no cache along the way may keep it."""
    if "multiValueHeaders" in response:
        response["multiValueHeaders"]["Cache-Control"] = ["no-store"]
    else:
        response.setdefault("headers", {})["Cache-Control"] = "no-store"


def api_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point for a resolver: observability decorators, then the body check, then routing."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        decode_path(event)
        early = precheck(event)
        if early is not None:
            response: dict[str, Any] = {
                "statusCode": early.status_code,
                "headers": {"Content-Type": PROBLEM_JSON},
                "body": early.body,
                "isBase64Encoded": False,
            }
        else:
            token = _event.set(event)  # for the subject id's rule (numeric_subject_ids)
            try:
                response = app.resolve(event, context)
            finally:
                _event.reset(token)
        no_store(response)
        # The route template, never the path: paths hold subject ids.
        logger.info(
            "handled",
            extra={"method": event.get("httpMethod"), "route": event.get("resource"), "status": response["statusCode"]},
        )
        return response

    return lambda_handler  # type: ignore[no-any-return]


def to_json(model: Any) -> Any:
    """A pydantic model as JSON-ready data (datetimes as ISO strings)."""
    return json.loads(model.model_dump_json())
