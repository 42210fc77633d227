"""An API Gateway (REST API, Lambda proxy integration) stand-in for the local stack, configured from template.yaml.

It does what API Gateway does around a function: route by method and path, the 10 MB payload limit, the TOKEN
authorizer (header, validation expression, policy cached per token), the proxy event, the function's reply, and
API Gateway's own error replies as template.yaml's GatewayResponses shape them (problem+json). Beside the API, and
without authentication, it serves the local stack's own pages (`ApiDocs`): `/openapi.json`, the reference at `/docs`
(Swagger UI, from an installed package) and `/`, which points to both; the deployed API has none of them.
werkzeug's server reads HTTP (`LocalServer`); this module turns its WSGI environ into a `Request` and back."""

from __future__ import annotations

import base64
import binascii
import importlib.util
import io
import json
import logging
import mimetypes
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import unquote

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.serving import DechunkedInput, WSGIRequestHandler, make_server
from werkzeug.wsgi import get_input_stream

from infra import template
from infra.events import method_arn, rest_event, token_event
from infra.local import ROOT, Functions
from infra.template import Route

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("infra.local.gateway")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request limit
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://chatsphere.dev/problems/"  # as the functions' problems (handlers/http.py)
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as on the request line
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    resource: str | None = None  # the matched route's path, for the access log (never the real path)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Authorized:
    """An authorizer's answer stated in advance, for tests that say what the authorizer answered.

    Given to `Gateway.handle`, the gateway skips its TOKEN authorizer (header check, policy, cache) and hands
    `context` to the function as requestContext.authorizer; None hands on no authorizer context at all."""

    context: Mapping[str, Any] | None


EventHook = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AuthorizerConfig:
    function: str  # logical id
    header: str = "Authorization"
    validation: re.Pattern[str] | None = None
    ttl_s: float = 300

    @classmethod
    def from_template(cls) -> AuthorizerConfig:
        logical_id, spec = template.authorizer()
        identity = spec.get("Identity", {})
        expression = identity.get("ValidationExpression")
        return cls(
            logical_id,
            identity.get("Header", "Authorization"),
            re.compile(expression) if expression else None,
            float(identity.get("ReauthorizeEvery", 300)),
        )


# The one answer of the local gateway that API Gateway has no response type for, so that the template cannot
# declare it: a method no route of a declared path serves. A REST API answers it as MISSING_AUTHENTICATION_TOKEN
# (the template's 404 no-such-route); locally it is 405 with Allow, which is what an HTTP client (and the fuzzer's
# unsupported-method check) expects. Shaped as the template's own answers, no-store included.
METHOD_NOT_ALLOWED = {
    "StatusCode": 405,
    "ResponseTemplates": {
        "application/json": '{"type":"https://chatsphere.dev/problems/method-not-allowed","title":"Method not allowed",'
        '"status":405,"detail":$context.error.messageString,"instance":"$context.requestId"}'
    },
    "ResponseParameters": {"Headers": {"Content-Type": "'application/problem+json'", "Cache-Control": "'no-store'"}},
}


@dataclass(frozen=True)
class GatewayResponses:
    """API Gateway's own replies (401, 403, 404, 413, 5xx...), shaped by the API's GatewayResponses."""

    specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_template(cls) -> GatewayResponses:
        (api,) = template.resources("AWS::Serverless::Api").values()
        return cls({"METHOD_NOT_ALLOWED": METHOD_NOT_ALLOWED, **api["Properties"].get("GatewayResponses", {})})

    def render(
        self, kind: str, status: int, message: str, request_id: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Reply:
        own = self.specs.get(kind, {})
        family = self.specs.get("DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX", {})
        status = int(own.get("StatusCode", status))
        templates = own.get("ResponseTemplates") or family.get("ResponseTemplates") or {}
        text = templates.get("application/json") or next(iter(templates.values()), None)
        if text is None:
            body = _problem(status, message).decode()
        else:
            values = {
                "error.statusCode": str(status),
                "error.message": message,
                "error.messageString": json.dumps(message),
                "error.responseType": kind,
                "requestId": request_id,
            }
            body = re.sub(r"\$context\.([A-Za-z]+(?:\.[A-Za-z]+)*)", lambda m: values.get(m.group(1), ""), text)
        out = [("Content-Type", PROBLEM_JSON), ("Cache-Control", "no-store")]
        for source in (family, own):
            for name, value in source.get("ResponseParameters", {}).get("Headers", {}).items():
                if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'":  # static values only
                    out = [(k, v) for k, v in out if k.lower() != name.lower()] + [(name, value[1:-1])]
        return Reply(status, [*out, *headers, ("x-amzn-RequestId", request_id)], body.encode())


DOCS_TITLE = "ChatSphere privacy-data API"
# The reference page loads nothing but this server's own files: no CDN, and it works offline.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} (local stack)</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""
# deepLinking gives each operation an address: /docs#/default/<operationId>.
_DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayOperationId: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


@dataclass(frozen=True)
class ApiDocs:
    """The local stack's own pages, served without authentication: not routes of the API (template.yaml has none of
    them), so the deployed API answers each with its 404 problem."""

    openapi: Path  # the OpenAPI document, served as it is
    assets: Path  # Swagger UI's dist files, from the swagger-ui-py package (requirements-dev.txt)

    @classmethod
    def installed(cls) -> ApiDocs:
        # Found, not imported: the package's own code (framework adapters, jinja2, yaml) is of no use here.
        spec = importlib.util.find_spec("swagger_ui")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("swagger-ui-py is not installed: make .venv/.installed (requirements-dev.txt)")
        return cls(ROOT / "infra" / "openapi.json", Path(spec.submodule_search_locations[0]) / "static")

    def page(self, path: str) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """(the page's name for the access log, headers, body) for a GET of `path`; None if it is not one of ours."""
        if path == "/":
            body = {
                "title": DOCS_TITLE,
                "docs": "/docs",
                "openapi": "/openapi.json",
                "detail": "The local stack: the API reference is at /docs, the OpenAPI document at /openapi.json.",
            }
            return "/", [("Content-Type", "application/json")], json.dumps(body, indent=2).encode()
        if path == "/openapi.json":
            return path, [("Content-Type", "application/json")], self.openapi.read_bytes()
        if path in ("/docs", "/docs/"):
            html = _DOCS_PAGE.format(title=DOCS_TITLE).encode()
            return "/docs", [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", _DOCS_CSP)], html
        if path == "/docs/init.js":
            return path, [("Content-Type", "text/javascript; charset=utf-8")], _DOCS_INIT.encode()
        name = path.removeprefix("/docs/assets/")
        if name != path and name in self._asset_names():  # a file of the package's own listing: no ../ reaches further
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            return path, [("Content-Type", kind)], (self.assets / name).read_bytes()
        return None

    def _asset_names(self) -> set[str]:
        return {p.name for p in self.assets.iterdir() if p.is_file()}


def _glob(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: * is any run of characters, ? is one."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z")


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def allows(policy: Mapping[str, Any], arn: str) -> bool:
    """IAM evaluation of an authorizer's policy for one method ARN: an explicit Deny wins, else an Allow is needed."""
    effects = set()
    statements = policy.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        if not any(_glob(a).match("execute-api:Invoke") for a in _listed(statement.get("Action"))):
            continue
        if any(_glob(r).match(arn) for r in _listed(statement.get("Resource"))):
            effects.add(statement.get("Effect"))
    return "Allow" in effects and "Deny" not in effects


def _policy_problem(policy: Any) -> str | None:
    """Why an authorizer's answer is unusable, if it is."""
    if not isinstance(policy, dict) or not isinstance(policy.get("principalId"), str):
        return "no principalId"
    if not isinstance(policy.get("policyDocument"), dict):
        return "no policyDocument"
    context = policy.get("context") or {}
    if not isinstance(context, dict) or not all(isinstance(v, str | int | float | bool) for v in context.values()):
        return "context values must be strings, numbers or booleans"
    return None


def _context_value(value: str | int | float | bool) -> str:
    # API Gateway hands the authorizer's context to the proxy event as strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _event_body(raw: bytes) -> bytes | str | None:
    """Text if it is UTF-8; else bytes, which the event carries base64-encoded (API Gateway's binary handling)."""
    if not raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _specificity(path: str) -> list[int]:
    # API Gateway prefers a literal segment over {param}, and {param} over {proxy+}.
    return [2 if seg.endswith("+}") else 1 if seg.startswith("{") else 0 for seg in path.strip("/").split("/")]


class Gateway:
    def __init__(
        self,
        routes: Iterable[Route],
        functions: Functions,
        authorizer: AuthorizerConfig | None,
        responses: GatewayResponses | None = None,
        stage: str = "dev",
        clock: Callable[[], float] = time.monotonic,
        docs: ApiDocs | None = None,
    ) -> None:
        self.resources: dict[str, dict[str, Route]] = {}
        for route in sorted(routes, key=lambda r: _specificity(r.path)):
            self.resources.setdefault(route.path, {})[route.method] = route
        self.functions = functions
        self.authorizer = authorizer
        self.responses = responses or GatewayResponses()
        self.stage = stage
        self.clock = clock
        self.docs = docs
        self._policies: dict[str, tuple[float, dict[str, Any]]] = {}
        self._policies_lock = threading.Lock()

    @classmethod
    def from_template(cls, functions: Functions, stage: str) -> Gateway:
        return cls(
            template.routes(),
            functions,
            AuthorizerConfig.from_template(),
            GatewayResponses.from_template(),
            stage,
            docs=ApiDocs.installed(),
        )

    # ------------------------------------------------------------------ request

    def _no_resource(self, method: str, raw_path: str, request_id: str) -> Reply:
        """A path no route of the template matches: a page of the served docs, or API Gateway's 404."""
        page = self.docs.page(raw_path) if self.docs is not None else None
        if page is not None:
            return self._page(method, page, request_id)
        # The template's RESOURCE_NOT_FOUND response gives the body; the message is for a template without one.
        return self.responses.render("RESOURCE_NOT_FOUND", 404, "No route matches this path", request_id)

    def handle(
        self, request: Request, *, authorized: Authorized | None = None, before_invoke: EventHook | None = None
    ) -> Reply:
        """One request, as API Gateway would answer it.

        Two hooks serve the in-process integration tests (the HTTP server uses neither): `authorized` states the
        authorizer's answer instead of running the authorizer, and `before_invoke` edits the finished proxy event
        just before the function gets it, for events no HTTP request can produce (a body flagged base64 that is
        not base64, a body base64-encoded as for a binary media type)."""
        request_id = str(uuid.uuid4())
        raw_path, _, query = request.target.partition("?")
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return self.too_large(request_id)
        found = self._resource(raw_path)
        if found is None:
            return self._no_resource(request.method, raw_path, request_id)
        resource, params, methods = found
        route = methods.get(request.method.upper())
        if route is None:
            allowed = ", ".join(sorted(methods))
            return self.responses.render(
                "METHOD_NOT_ALLOWED", 405, f"Allowed methods: {allowed}", request_id, [("Allow", allowed)]
            )
        # A REST API hands the function the path as sent (still percent-encoded), its parameters decoded.
        path = raw_path
        headers: dict[str, str] = {}  # the last value of each, as API Gateway does; all of them in multi
        multi: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value
            multi.setdefault(name, []).append(value)
        context: dict[str, Any] | None = None
        if authorized is not None:
            context = dict(authorized.context) if authorized.context is not None else None
        elif self.authorizer is not None:
            decision = self._authorize(self.authorizer, headers, route.method, path, request_id)
            if isinstance(decision, Reply):
                return replace(decision, resource=resource)
            context = decision
        event = rest_event(
            route.method,
            route.path,
            path,
            path_parameters=params,
            query=query,
            headers=headers,
            body=_event_body(request.body),
            authorizer=context,
            stage=self.stage,
            source_ip=request.source_ip,
        )
        event["multiValueHeaders"] = multi or None
        event["requestContext"]["requestId"] = request_id
        # Served at the root, as behind a custom domain with no base path: the path the client sent is the whole
        # of it (an execute-api URL would put /<stage> before it), and so are the Location headers built on it.
        event["requestContext"]["path"] = path
        if before_invoke is not None:
            before_invoke(event)
        try:
            result = self.functions.invoke(route.function, event)
        except Exception:
            log.exception("%s failed", route.function)
            return self.responses.render("DEFAULT_5XX", 502, "Internal server error", request_id)
        return self._proxy_reply(result, request_id, resource)

    def _page(self, method: str, page: tuple[str, list[tuple[str, str]], bytes], request_id: str) -> Reply:
        name, headers, body = page
        if method.upper() not in ("GET", "HEAD"):
            reply = self.responses.render(
                "METHOD_NOT_ALLOWED", 405, "Allowed methods: GET, HEAD", request_id, [("Allow", "GET, HEAD")]
            )
            return replace(reply, resource=name)
        common = [("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")]
        return Reply(200, [*headers, *common, ("x-amzn-RequestId", request_id)], body, name)

    def too_large(self, request_id: str | None = None) -> Reply:
        return self.responses.render(
            "REQUEST_TOO_LARGE", 413, "Request Entity Too Large", request_id or str(uuid.uuid4())
        )

    def _resource(self, raw_path: str) -> tuple[str, dict[str, str], dict[str, Route]] | None:
        for resource, methods in self.resources.items():
            match = next(iter(methods.values())).pattern.match(raw_path)
            if match:
                return resource, {k: unquote(v) for k, v in match.groupdict().items()}, methods
        return None

    # --------------------------------------------------------------- authorizer

    def _authorize(
        self, config: AuthorizerConfig, headers: Mapping[str, str], method: str, path: str, request_id: str
    ) -> dict[str, Any] | Reply:
        token = next((v for k, v in headers.items() if k.lower() == config.header.lower()), "")
        if not token or (config.validation is not None and not config.validation.fullmatch(token)):
            return self.responses.render("UNAUTHORIZED", 401, "Unauthorized", request_id)
        policy = self._cached_policy(token)
        if policy is None:
            try:
                policy = self.authorizer_answer(token, method, path)
            except Exception:
                # API Gateway says 401 when the authorizer raises "Unauthorized", and 500 for other failures.
                log.exception("%s failed", config.function)
                return self.responses.render("UNAUTHORIZED", 401, "Unauthorized", request_id)
            problem = _policy_problem(policy)
            if problem is not None:
                log.error("%s returned an unusable answer: %s", config.function, problem)
                return self.responses.render("AUTHORIZER_CONFIGURATION_ERROR", 500, "Internal server error", request_id)
            self._remember_policy(token, policy, config.ttl_s)
        if not allows(policy["policyDocument"], method_arn(self.stage, method, path)):
            return self.responses.render("ACCESS_DENIED", 403, "Forbidden", request_id)
        context = {k: _context_value(v) for k, v in (policy.get("context") or {}).items()}
        return {**context, "principalId": policy["principalId"]}

    def authorizer_answer(self, token: str, method: str, path: str) -> Any:
        """The TOKEN authorizer's own answer for one token and method (no header check, no cache, no evaluation)."""
        if self.authorizer is None:
            raise LookupError("this gateway has no authorizer")
        return self.functions.invoke(self.authorizer.function, token_event(token, self.stage, method, path))

    def _cached_policy(self, token: str) -> dict[str, Any] | None:
        with self._policies_lock:
            entry = self._policies.get(token)
            return entry[1] if entry is not None and entry[0] > self.clock() else None

    def _remember_policy(self, token: str, policy: dict[str, Any], ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        now = self.clock()
        with self._policies_lock:
            self._policies = {k: v for k, v in self._policies.items() if v[0] > now}
            self._policies[token] = (now + ttl_s, policy)

    # -------------------------------------------------------------------- reply

    def _proxy_reply(self, result: Any, request_id: str, resource: str) -> Reply:
        try:
            status = result["statusCode"]
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise TypeError("statusCode must be an HTTP status")
            text = result.get("body") or ""
            if not isinstance(text, str):
                raise TypeError("body must be a string")
            body = base64.b64decode(text, validate=True) if result.get("isBase64Encoded") else text.encode()
            headers = [(k, str(v)) for k, values in (result.get("multiValueHeaders") or {}).items() for v in values]
            for name, value in (result.get("headers") or {}).items():
                if (name.lower(), str(value)) not in {(k.lower(), v) for k, v in headers}:
                    headers.append((name, str(value)))
        except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
            log.error("malformed Lambda proxy response: %s", exc)
            return self.responses.render("DEFAULT_5XX", 502, "Internal server error", request_id)
        headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return Reply(status, [*headers, ("x-amzn-RequestId", request_id)], body, resource)


# ------------------------------------------------------------------------ HTTP


class Worker(Protocol):
    """Something that runs beside the gateway for as long as it serves: an SQS poller, an EventBridge schedule.

    Such workers get the stack's `Functions` and call `invoke(logical_id, event)`, as the gateway does."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _Dechunked(DechunkedInput):
    """werkzeug's chunked reader with RFC 9112's chunk-size grammar (7.1): hex digits, optional extensions.

    werkzeug's own reads the size with int(..., 16), which takes "+5", "0x5" and "1_0" and then waits for bytes
    the client never sends, holding the thread until it leaves; and it refuses chunk extensions and trailers."""

    def read_chunk_len(self) -> int:
        rfile = cast(io.BufferedReader, self._rfile)
        token = rfile.readline(1024).split(b";")[0].strip(b" \t\r\n")
        if not _CHUNK_SIZE.fullmatch(token):
            raise OSError("malformed chunk size")
        size = int(token, 16)
        if size == 0:  # the last chunk: skip its trailer fields, up to the blank line that werkzeug reads itself
            while (ahead := rfile.peek(1)[:1]) and ahead not in (b"\r", b"\n"):
                rfile.readline(1024)
        return size


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")
_HEADERS = "chatsphere.headers"  # the request's header fields as sent: names in their case, every repeat


def _problem(status: int, detail: str) -> bytes:
    """The server's own 400s (a request it cannot read) as problem+json, typed by their status (`bad-request`,
    `http-version-not-supported`); the gateway's own errors are the template's."""
    title = HTTPStatus(status).phrase
    kind = PROBLEM_BASE + title.lower().replace(" ", "-")
    return json.dumps({"type": kind, "title": title, "status": status, "detail": detail}).encode()


def _access_log(method: str, resource: str | None, status: int, started: float) -> None:
    # Like the template's access log: no path or query, they may hold identifiers.
    log.info("%s %s %s %.0fms", method, resource or "-", status, (time.monotonic() - started) * 1000)


class _Handler(WSGIRequestHandler):
    """werkzeug's request handler, told what the gateway needs beside WSGI's environ, and logging as the gateway."""

    protocol_version = "HTTP/1.1"

    def handle_one_request(self) -> None:
        self.started = time.monotonic()
        super().handle_one_request()

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        environ[_HEADERS] = self.headers.items()  # WSGI's HTTP_* keys join repeats and drop names with "_"
        if isinstance(environ["wsgi.input"], DechunkedInput):
            environ["wsgi.input"] = _Dechunked(cast("IO[bytes]", self.rfile))
        return environ

    def handle_expect_100(self) -> bool:
        return True  # werkzeug's run_wsgi sends the 100 Continue; http.server would send a second one

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line or header block) as problem+json too; its message
        can quote the request line (and so the path), which neither the answer nor the log repeats."""
        body = _problem(code, HTTPStatus(code).description)
        # A request line it could not read leaves http.server taking the client for HTTP/0.9, which gets no head.
        self.request_version = self.protocol_version
        _access_log(self.command or "-", None, code, self.started)  # first: a client with the answer finds the line
        self.send_response(code)
        self.send_header("Content-Type", PROBLEM_JSON)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the application logs each request itself, without its path

    def log_message(self, format: str, *args: Any) -> None:
        log.warning(format, *args)


def _read_body(environ: WSGIEnvironment) -> bytes:
    """The request body. RequestEntityTooLarge past the payload limit: a declared length before any of it is read, a
    chunked body one byte past it. BadRequest if it cannot be read: a Content-Length that is not digits, a
    malformed chunk (_Dechunked), a client gone before the end of its body (werkzeug's ClientDisconnected)."""
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's dechunked stream ends by itself
        # LimitedStream stops quietly at a maximum: one byte more tells a body over the limit from one at it.
        body = get_input_stream(environ, max_content_length=MAX_PAYLOAD_BYTES + 1).read()
        if len(body) > MAX_PAYLOAD_BYTES:
            raise RequestEntityTooLarge
        return body
    length = environ.get("CONTENT_LENGTH") or "0"
    if not _CONTENT_LENGTH.fullmatch(length):
        raise BadRequest  # werkzeug would read a negative or unreadable length as 0
    if int(length) > MAX_PAYLOAD_BYTES:
        raise RequestEntityTooLarge
    return get_input_stream(environ).read()


def _application(gateway: Gateway) -> WSGIApplication:
    """The gateway as a WSGI application: werkzeug reads HTTP, this builds the gateway's Request and sends its Reply."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method = environ["REQUEST_METHOD"]
        try:
            body = _read_body(environ)
        except RequestEntityTooLarge:
            reply = gateway.too_large()
        except BadRequest:
            reply = Reply(
                400,
                [("Content-Type", PROBLEM_JSON), ("Cache-Control", "no-store")],
                _problem(400, "Malformed Content-Length or chunked body"),
            )
        else:
            # werkzeug hands on the request target as http.server read it (latin-1), re-encoded for WSGI.
            target = environ["RAW_URI"].encode("latin-1").decode()
            request = Request(method, target, list(environ[_HEADERS]), body, environ["REMOTE_ADDR"])
            try:
                reply = gateway.handle(request)
            except Exception:
                log.exception("the gateway failed")
                reply = gateway.responses.render("DEFAULT_5XX", 500, "Internal server error", str(uuid.uuid4()))
        _access_log(method, reply.resource, reply.status, started)  # before werkzeug writes the answer, as above
        start_response(
            f"{reply.status} {HTTP_STATUS_CODES.get(reply.status, 'UNKNOWN')}",
            [*reply.headers, ("Content-Length", str(len(reply.body)))],
        )
        return [] if method == "HEAD" else [reply.body]

    return app


class LocalServer:
    """The gateway over HTTP (werkzeug's server, a thread per request), with the workers that live as long as it
    does. Binds at construction: OSError if it cannot."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 3000, workers: Sequence[Worker] = ()):
        # Bound here, not by werkzeug: on a taken port werkzeug prints to stderr and exits the process.
        with socket.create_server((host, port)) as listening:
            self.httpd = make_server(
                host, port, _application(gateway), threaded=True, request_handler=_Handler, fd=listening.fileno()
            )
        self.workers = list(workers)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="gateway", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in reversed(self.workers):
            worker.stop()
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()
