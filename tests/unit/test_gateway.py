"""The local gateway does what API Gateway does around a function, so local behaviour matches the deployed API.

Stub functions stand in for the handlers: these tests are about routing, the authorizer, the proxy event and
the reply, not about intake."""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import re
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra import template
from infra.local import AWS_ENV, ROOT, FakeContext, Functions, FunctionSpec
from infra.local.gateway import (
    MAX_PAYLOAD_BYTES,
    ApiDocs,
    Authorized,
    AuthorizerConfig,
    Gateway,
    GatewayResponses,
    LocalServer,
    Reply,
    Request,
    allows,
)
from infra.local.run import ConflictingEnvironment, shared_environment
from infra.template import Route

PROBLEMS = "https://chatsphere.dev/problems/"
PROBLEM_JSON = "application/problem+json"  # handlers/http.py's PROBLEM_BASE

KEY = "Bearer cs_good"
ROUTES = [
    Route("GET", "/v1/things/{thing_id}", "ThingFunction", "GetThing"),
    Route("PUT", "/v1/things/{thing_id}", "ThingFunction", "PutThing"),
    Route("GET", "/v1/things/special", "SpecialFunction", "GetSpecial"),
    Route("POST", "/v1/things/{thing_id}/notes", "ThingFunction", "AddNote"),
]


def allow_all(event: dict[str, Any], _: Any) -> dict[str, Any]:
    stage = event["methodArn"].split("/dev/")[0] + "/dev/*"  # every method and path of the stage
    return {
        "principalId": "t1",
        "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": stage}]},
        "context": {"tenant_id": "t1", "tier": 2, "beta": True},
    }


def deny(event: dict[str, Any], _: Any) -> dict[str, Any]:
    return {
        "principalId": "anonymous",
        "policyDocument": {
            "Statement": [{"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": event["methodArn"]}]
        },
    }


class Recorder:
    """A function that records what it was called with and answers what it is told."""

    def __init__(self, answer: Callable[[dict[str, Any], Any], Any]) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        return self.answer(event, context)


def ok(event: dict[str, Any], _: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stack:
    def __init__(
        self, authorizer: Callable[..., Any] = allow_all, handler: Callable[..., Any] = ok, docs: ApiDocs | None = None
    ) -> None:
        self.authorizer = Recorder(authorizer)
        self.things = Recorder(handler)
        self.special = Recorder(handler)
        self.clock = Clock()
        specs = {
            name: FunctionSpec(name, f"stub.{name}", 256, 5)
            for name in ("AuthFunction", "ThingFunction", "SpecialFunction")
        }
        handlers = {"AuthFunction": self.authorizer, "ThingFunction": self.things, "SpecialFunction": self.special}
        self.functions = Functions(specs, handlers)
        self.gateway = Gateway(
            ROUTES,
            self.functions,
            AuthorizerConfig("AuthFunction", "Authorization", re.compile(r"^Bearer [A-Za-z0-9_.-]+$"), 300),
            GatewayResponses.from_template(),
            stage="dev",
            clock=self.clock,
            docs=docs,
        )

    def send(
        self, method: str, target: str, body: bytes = b"", auth: str | None = KEY, **headers: str
    ) -> tuple[Reply, Any]:
        sent = [("Content-Type", "application/json"), *headers.items()]
        if auth is not None:
            sent.append(("Authorization", auth))
        reply = self.gateway.handle(Request(method, target, sent, body))
        return reply, json.loads(reply.body) if reply.body else None


@pytest.fixture
def stack() -> Stack:
    return Stack()


def gateway_response(kind: str) -> dict[str, Any]:
    (api,) = template.resources("AWS::Serverless::Api").values()
    body: dict[str, Any] = json.loads(
        api["Properties"]["GatewayResponses"][kind]["ResponseTemplates"]["application/json"]
    )
    return body


# ------------------------------------------------------------------- routing


def test_routes_to_the_declared_function_with_decoded_path_parameters(stack: Stack) -> None:
    reply, body = stack.send("GET", "/v1/things/a%40b?limit=5&tag=x&tag=y")

    assert (reply.status, body) == (200, {"ok": True})
    (event,) = stack.things.events
    assert event["resource"] == "/v1/things/{thing_id}"
    assert event["path"] == "/v1/things/a%40b"  # as sent, like API Gateway's REST APIs
    assert event["pathParameters"] == {"thing_id": "a@b"}
    assert event["httpMethod"] == "GET"
    assert event["queryStringParameters"] == {"limit": "5", "tag": "y"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"], "tag": ["x", "y"]}
    assert event["requestContext"]["stage"] == "dev"
    assert event["requestContext"]["resourcePath"] == "/v1/things/{thing_id}"
    assert reply.header("x-amzn-RequestId") == event["requestContext"]["requestId"]


def test_a_literal_segment_wins_over_a_path_parameter(stack: Stack) -> None:
    reply, _ = stack.send("GET", "/v1/things/special")

    assert reply.status == 200
    assert len(stack.special.events) == 1
    assert stack.things.events == []


def test_an_unknown_path_is_a_404_problem_before_any_authorization(stack: Stack) -> None:
    for target in ("/v1/nothing", "/v1/things", "/v1/things/a/b", "/v1/things//notes"):
        reply, body = stack.send("GET", target, auth=None)

        assert reply.status == 404, target
        assert reply.header("Content-Type") == "application/problem+json"
        assert body["status"] == 404
        assert {"type", "title", "detail"} <= body.keys()
    assert stack.authorizer.events == []
    assert stack.things.events == []


def test_an_unknown_path_is_the_apis_own_no_such_route_problem_naming_nothing_of_the_request(stack: Stack) -> None:
    reply, body = stack.send("GET", "/v1/people/ada@example.com?phone=%2B4915112345678", auth=None)

    assert reply.status == 404
    assert reply.header("Content-Type") == "application/problem+json"
    assert body == {
        "type": PROBLEMS + "no-such-route",
        "title": "No such route",
        "status": 404,
        "detail": "No route of this API matches this method and path.",
        "instance": reply.header("x-amzn-RequestId"),  # the request id, as the handlers' problems have it
    }
    assert reply.resource is None  # the access log says "-", never the path
    assert b"ada" not in reply.body and b"4915" not in reply.body


@pytest.mark.parametrize("kind", ["RESOURCE_NOT_FOUND", "MISSING_AUTHENTICATION_TOKEN"])
def test_deployed_api_gateway_answers_an_unknown_path_with_the_same_problem(kind: str) -> None:
    """API Gateway answers a path (or method) of no route as MISSING_AUTHENTICATION_TOKEN, a 403 by default."""
    (api,) = template.resources("AWS::Serverless::Api").values()
    spec = api["Properties"]["GatewayResponses"][kind]
    local = Stack().send("GET", "/nowhere", auth=None)[0]

    deployed = json.loads(spec["ResponseTemplates"]["application/json"].replace("$context.requestId", "r-1"))

    assert spec["StatusCode"] == 404
    assert spec["ResponseParameters"]["Headers"]["Content-Type"] == "'application/problem+json'"
    assert deployed == {**json.loads(local.body), "instance": "r-1"}


def test_an_undeclared_method_is_a_405_that_lists_the_declared_ones(stack: Stack) -> None:
    reply, body = stack.send("DELETE", "/v1/things/x")

    assert reply.status == 405
    assert reply.header("Allow") == "GET, PUT"
    assert body["status"] == 405
    assert body["type"] == PROBLEMS + "method-not-allowed" and body["detail"] == "Allowed methods: GET, PUT"
    assert reply.header("Content-Type") == "application/problem+json"
    assert stack.things.events == []


def _raises(event: dict[str, Any], _: Any) -> Any:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("auth", "method", "target", "body", "handler", "status"),
    [
        (None, "GET", "/v1/things/x", b"", ok, 401),
        ("Bearer cs_bad", "GET", "/v1/things/x", b"", ok, 403),
        (KEY, "GET", "/nowhere", b"", ok, 404),
        (KEY, "DELETE", "/v1/things/x", b"", ok, 405),
        (KEY, "PUT", "/v1/things/x", b"x" * (MAX_PAYLOAD_BYTES + 1), ok, 413),
        (KEY, "GET", "/v1/things/x", b"", _raises, 502),
    ],
)
def test_every_answer_of_the_gateway_itself_is_a_typed_problem_no_cache_keeps(
    auth: str | None, method: str, target: str, body: bytes, handler: Callable[..., Any], status: int
) -> None:
    def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return deny(event, context) if event["authorizationToken"] == "Bearer cs_bad" else allow_all(event, context)

    reply, problem = Stack(authorizer=authorizer, handler=handler).send(method, target, body, auth=auth)

    assert (reply.status, problem["status"]) == (status, status)
    assert reply.header("Content-Type") == PROBLEM_JSON and reply.header("Cache-Control") == "no-store"
    assert problem["type"].startswith(PROBLEMS) and problem["title"] and problem["detail"]


def test_every_gateway_response_of_the_template_says_no_store() -> None:
    (api,) = template.resources("AWS::Serverless::Api").values()
    for kind, spec in api["Properties"]["GatewayResponses"].items():
        headers = spec["ResponseParameters"]["Headers"]
        assert headers.get("Cache-Control") == "'no-store'", kind
        assert "about:blank" not in json.dumps(spec["ResponseTemplates"]), kind


# ---------------------------------------------------------------- authorizer


def test_no_authorization_header_is_the_templates_401_without_calling_the_authorizer(stack: Stack) -> None:
    reply, body = stack.send("GET", "/v1/things/x", auth=None)

    assert reply.status == 401
    assert body == gateway_response("UNAUTHORIZED")
    assert reply.header("WWW-Authenticate") == "Bearer"
    assert reply.header("Content-Type") == "application/problem+json"
    assert stack.authorizer.events == []


@pytest.mark.parametrize("header", ["", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "bearer cs_good", "Bearer ü"])
def test_a_header_failing_the_validation_expression_is_a_401(stack: Stack, header: str) -> None:
    reply, _ = stack.send("GET", "/v1/things/x", auth=header)

    assert reply.status == 401
    assert stack.authorizer.events == []


def test_deny_is_the_templates_403_and_the_function_never_runs() -> None:
    stack = Stack(authorizer=deny)

    reply, body = stack.send("GET", "/v1/things/x")

    assert reply.status == 403
    assert body == gateway_response("ACCESS_DENIED")
    assert stack.things.events == []


def test_an_authorizer_that_fails_is_a_401() -> None:
    def broken(event: dict[str, Any], _: Any) -> Any:
        raise RuntimeError("Unauthorized")

    stack = Stack(authorizer=broken)
    reply, _ = stack.send("GET", "/v1/things/x")

    assert reply.status == 401
    assert stack.things.events == []


def test_an_unusable_authorizer_answer_is_a_500() -> None:
    stack = Stack(authorizer=lambda event, _: {"principalId": "t1", "policyDocument": {}, "context": {"a": [1]}})

    reply, body = stack.send("GET", "/v1/things/x")

    assert reply.status == 500
    assert body["status"] == 500
    assert stack.things.events == []


def test_the_authorizer_gets_a_token_event_and_the_function_its_context(stack: Stack) -> None:
    stack.send("PUT", "/v1/things/x", b"{}")

    (token_event,) = stack.authorizer.events
    assert token_event["type"] == "TOKEN"
    assert token_event["authorizationToken"] == KEY
    assert token_event["methodArn"].endswith("/dev/PUT/v1/things/x")
    (event,) = stack.things.events
    # API Gateway hands context values to the proxy event as strings.
    assert event["requestContext"]["authorizer"] == {
        "tenant_id": "t1",
        "tier": "2",
        "beta": "true",
        "principalId": "t1",
    }


def test_answers_are_cached_per_token_for_reauthorize_every_seconds(stack: Stack) -> None:
    stack.send("GET", "/v1/things/a")
    stack.send("PUT", "/v1/things/b", b"{}")
    stack.clock.now += 299
    stack.send("GET", "/v1/things/c")
    assert len(stack.authorizer.events) == 1

    stack.send("GET", "/v1/things/c", auth="Bearer cs_other")
    assert len(stack.authorizer.events) == 2

    stack.clock.now += 2
    stack.send("GET", "/v1/things/c")
    assert len(stack.authorizer.events) == 3
    assert len(stack.things.events) == 5


def test_a_cached_deny_is_not_asked_again() -> None:
    stack = Stack(authorizer=deny)

    first, _ = stack.send("GET", "/v1/things/x")
    second, _ = stack.send("GET", "/v1/things/x")

    assert (first.status, second.status) == (403, 403)
    assert len(stack.authorizer.events) == 1


def test_a_cached_policy_is_evaluated_against_each_requests_method_arn() -> None:
    def get_only(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = allow_all(event, context)
        answer["policyDocument"]["Statement"][0]["Resource"] = event["methodArn"].split("/dev/")[0] + "/dev/GET/*"
        return answer

    stack = Stack(authorizer=get_only)

    assert stack.send("GET", "/v1/things/x")[0].status == 200
    assert stack.send("PUT", "/v1/things/x", b"{}")[0].status == 403
    assert len(stack.authorizer.events) == 1


def test_policy_evaluation_follows_iam() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:local/dev/GET/v1/things/x"
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:local/dev/*/*"}
    deny_get = {"Effect": "Deny", "Action": ["execute-api:*"], "Resource": [arn]}

    assert allows({"Statement": [allow]}, arn)
    assert allows({"Statement": allow}, arn)
    assert not allows({"Statement": [allow, deny_get]}, arn)
    assert not allows({"Statement": []}, arn)
    assert not allows({"Statement": [{**allow, "Action": "s3:GetObject"}]}, arn)
    assert not allows({"Statement": [{**allow, "Resource": "arn:aws:execute-api:*:*:local/prod/*"}]}, arn)


def test_the_authorizer_settings_come_from_template_yaml() -> None:
    config = AuthorizerConfig.from_template()

    _, spec = template.authorizer()
    assert config.function in template.functions()
    assert config.header == "Authorization"
    assert config.ttl_s == float(spec["Identity"]["ReauthorizeEvery"])
    assert config.validation is not None
    assert config.validation.fullmatch("Bearer cs_t0.abc-_")


def test_a_stated_authorizer_answer_replaces_the_authorizer_and_reaches_the_event_as_given(stack: Stack) -> None:
    # The integration tests' hook: "the authorizer answered this", or "no authorizer context at all"
    for context in ({"tenant_id": "t9", "principalId": "p9"}, None):
        stack.send("GET", "/v1/things/x", auth=None)  # without the hook: the 401, no call
        request = Request("GET", "/v1/things/x", [("Content-Type", "application/json")])
        reply = stack.gateway.handle(request, authorized=Authorized(context))

        assert reply.status == 200
        assert stack.things.events[-1]["requestContext"]["authorizer"] == context
    assert stack.authorizer.events == []
    assert len(stack.things.events) == 2


def test_the_authorizers_own_answer_is_the_functions_answer_for_the_gateways_stage(stack: Stack) -> None:
    answer = stack.gateway.authorizer_answer(KEY, "GET", "/v1/things/x")

    assert answer == allow_all(stack.authorizer.events[-1], None)
    assert stack.authorizer.events[-1] == {
        "type": "TOKEN",
        "authorizationToken": KEY,
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:local/dev/GET/v1/things/x",
    }


def test_an_event_hook_edits_the_event_just_before_the_function_gets_it(stack: Stack) -> None:
    def flag_base64(event: dict[str, Any]) -> None:
        event["body"], event["isBase64Encoded"] = "not base64!", True

    request = Request("PUT", "/v1/things/x", [("Content-Type", "application/json"), ("Authorization", KEY)], b"{}")
    reply = stack.gateway.handle(request, before_invoke=flag_base64)

    assert reply.status == 200
    (event,) = stack.things.events
    assert (event["body"], event["isBase64Encoded"]) == ("not base64!", True)
    assert event["requestContext"]["authorizer"]["tenant_id"] == "t1"  # the authorizer still ran


# --------------------------------------------------------------------- event


def test_a_utf8_body_is_sent_as_text(stack: Stack) -> None:
    stack.send("PUT", "/v1/things/x", '{"name": "Zoë"}'.encode())

    (event,) = stack.things.events
    assert event["body"] == '{"name": "Zoë"}'
    assert event["isBase64Encoded"] is False


def test_a_body_that_is_not_utf8_is_sent_base64_encoded(stack: Stack) -> None:
    raw = b'{"name": "\xff\xfe"}'
    stack.send("PUT", "/v1/things/x", raw)

    (event,) = stack.things.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_no_body_is_none(stack: Stack) -> None:
    stack.send("GET", "/v1/things/x")

    (event,) = stack.things.events
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_repeated_headers_reach_multi_value_headers(stack: Stack) -> None:
    stack.gateway.handle(Request("GET", "/v1/things/x", [("Authorization", KEY), ("X-Tag", "a"), ("X-Tag", "b")], b""))

    (event,) = stack.things.events
    assert event["headers"]["X-Tag"] == "b"
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]


def test_the_function_gets_a_lambda_context(stack: Stack) -> None:
    stack.send("GET", "/v1/things/x")
    stack.send("GET", "/v1/things/y")

    first, second = stack.things.contexts
    assert first.function_name == "ThingFunction"
    assert first.memory_limit_in_mb == 256
    assert 0 < first.get_remaining_time_in_millis() <= 5000
    assert first.invoked_function_arn.endswith(":function:ThingFunction")
    assert first.aws_request_id != second.aws_request_id


def test_invocations_hold_the_functions_lock(stack: Stack) -> None:
    seen: list[bool] = []

    def answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(stack.functions.lock.locked())
        return ok(event, context)

    stack.things.answer = answer
    stack.send("GET", "/v1/things/x")

    assert seen == [True]


def test_a_body_over_10_mb_is_a_413_and_the_function_never_runs(stack: Stack) -> None:
    reply, body = stack.send("PUT", "/v1/things/x", b"x" * (MAX_PAYLOAD_BYTES + 1))

    assert reply.status == 413
    assert body["status"] == 413
    assert stack.authorizer.events == []
    assert stack.things.events == []


# --------------------------------------------------------------------- reply


def test_the_functions_reply_is_passed_through() -> None:
    def answer(event: dict[str, Any], _: Any) -> dict[str, Any]:
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-One": ["1"]},
            "body": base64.b64encode(b"\x00\xffbinary").decode(),
            "isBase64Encoded": True,
        }

    stack = Stack(handler=answer)
    reply = stack.gateway.handle(Request("GET", "/v1/things/x", [("Authorization", KEY)]))

    assert reply.status == 201
    assert reply.body == b"\x00\xffbinary"
    assert [v for k, v in reply.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert [v for k, v in reply.headers if k == "X-One"] == ["1"]
    assert reply.header("Content-Type") == "text/plain"


def test_a_reply_without_content_type_is_json(stack: Stack) -> None:
    stack.things.answer = lambda event, _: {"statusCode": 204}

    reply, _ = stack.send("GET", "/v1/things/x")

    assert (reply.status, reply.body, reply.header("Content-Type")) == (204, b"", "application/json")


@pytest.mark.parametrize(
    "answer",
    [
        lambda event, _: (_ for _ in ()).throw(ValueError("boom")),
        lambda event, _: None,
        lambda event, _: {"body": "{}"},
        lambda event, _: {"statusCode": "200", "body": "{}"},
        lambda event, _: {"statusCode": 200, "body": {"not": "a string"}},
        lambda event, _: {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
    ids=["raises", "none", "no-status", "status-str", "body-dict", "bad-base64"],
)
def test_a_failing_or_malformed_function_is_a_502_problem(answer: Callable[..., Any]) -> None:
    stack = Stack(handler=answer)

    reply, body = stack.send("GET", "/v1/things/x")

    assert reply.status == 502
    assert reply.header("Content-Type") == "application/problem+json"
    assert body["status"] == 502
    assert body["title"]
    assert body["type"]


def test_without_gateway_responses_the_gateways_own_errors_are_still_problems() -> None:
    reply = GatewayResponses().render("RESOURCE_NOT_FOUND", 404, "No resource", "r-1")

    assert reply.header("Content-Type") == "application/problem+json"
    assert json.loads(reply.body) == {
        "type": PROBLEMS + "not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "No resource",
    }


# --------------------------------------------------- the local stack's own pages


@pytest.fixture
def docs_stack() -> Stack:
    return Stack(docs=ApiDocs.installed())


def test_the_root_points_to_the_reference_and_the_document_without_a_key(docs_stack: Stack) -> None:
    reply, body = docs_stack.send("GET", "/", auth=None)

    assert (reply.status, reply.header("Content-Type")) == (200, "application/json")
    assert (body["docs"], body["openapi"]) == ("/docs", "/openapi.json")
    assert docs_stack.authorizer.events == []


def test_openapi_json_is_the_committed_document_as_it_is(docs_stack: Stack) -> None:
    reply = docs_stack.gateway.handle(Request("GET", "/openapi.json"))

    assert (reply.status, reply.header("Content-Type")) == (200, "application/json")
    assert reply.body == (ROOT / "infra" / "openapi.json").read_bytes()


def test_the_reference_page_loads_only_files_the_gateway_serves_itself(docs_stack: Stack) -> None:
    page = docs_stack.gateway.handle(Request("GET", "/docs"))
    html = page.body.decode()
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    init = docs_stack.gateway.handle(Request("GET", "/docs/init.js"))

    assert (page.status, page.header("Content-Type")) == (200, "text/html; charset=utf-8")
    assert "default-src 'self'" in (page.header("Content-Security-Policy") or "")  # the browser loads no CDN
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/init.js"} <= set(loaded)
    for url in loaded:
        assert url.startswith("/"), url
        served = docs_stack.gateway.handle(Request("GET", url))
        assert served.status == 200 and served.body, url
    assert (init.status, init.header("Content-Type")) == (200, "text/javascript; charset=utf-8")
    assert 'url: "/openapi.json"' in init.body.decode()
    assert "http" not in init.body.decode()
    assert docs_stack.authorizer.events == []


@pytest.mark.parametrize(
    "target",
    [
        "/docs/assets/",
        "/docs/assets/nothing.js",
        "/docs/assets/../__init__.py",
        "/docs/assets/%2e%2e/__init__.py",
        "/docs/assets/..%2f__init__.py",
        "/docs/assets/static/swagger-ui.css",
        "/docs/other",
        "/openapi.yaml",
    ],
)
def test_nothing_beside_the_packages_own_files_is_served(docs_stack: Stack, target: str) -> None:
    reply, body = docs_stack.send("GET", target, auth=None)

    assert reply.status == 404, target
    assert body["type"] == PROBLEMS + "no-such-route"


def test_the_pages_answer_only_get_and_head(docs_stack: Stack) -> None:
    reply, body = docs_stack.send("POST", "/docs", auth=None)
    head = docs_stack.gateway.handle(Request("HEAD", "/openapi.json"))

    assert (reply.status, reply.header("Allow"), body["status"]) == (405, "GET, HEAD", 405)
    assert head.status == 200


def test_the_deployed_api_has_none_of_the_pages() -> None:
    """They are the local stack's: the template declares no route for them (the gateway without docs: 404)."""
    assert not [r for r in template.routes() if not r.path.startswith("/v1/")]
    assert Stack().send("GET", "/docs", auth=None)[0].status == 404


# ---------------------------------------------------------------------- HTTP


@pytest.fixture
def server(stack: Stack) -> Iterator[tuple[Stack, int]]:
    local = LocalServer(stack.gateway, "127.0.0.1", 0)
    local.start()
    yield stack, local.httpd.server_address[1]
    local.stop()


def test_http_requests_reach_the_gateway_one_after_another_from_one_client(server: tuple[Stack, int]) -> None:
    stack, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # werkzeug closes each; the client reconnects

    conn.request("PUT", "/v1/things/x", body=b'{"a": 1}', headers={"Authorization": KEY})
    first = conn.getresponse()
    assert (first.status, json.loads(first.read())) == (200, {"ok": True})
    conn.request("HEAD", "/v1/things/x", headers={"Authorization": KEY})
    head = conn.getresponse()
    assert (head.status, head.read(), head.getheader("Allow")) == (405, b"", "GET, PUT")

    assert stack.things.events[0]["body"] == '{"a": 1}'
    conn.close()


def test_a_chunked_body_is_read_whole(server: tuple[Stack, int]) -> None:
    stack, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    conn.request("PUT", "/v1/things/x", body=iter([b'{"a": ', b"1}"]), headers={"Authorization": KEY})

    assert conn.getresponse().status == 200
    assert stack.things.events[0]["body"] == '{"a": 1}'
    conn.close()


@pytest.mark.parametrize("size", [b"-5", b"+5", b"0x5", b"", b"zz", b" -1"])
def test_a_malformed_chunk_size_is_a_400_at_once(server: tuple[Stack, int], size: bytes) -> None:
    stack, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            b"PUT /v1/things/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + b"Authorization: "
            + KEY.encode()
            + b"\r\n\r\n"
            + size
            + b"\r\n{}"
        )
        # the connection stays open on our side: the answer must come without it closing
        head = raw.recv(4096)
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert stack.things.events == []


def test_an_oversized_content_length_is_refused_unread(server: tuple[Stack, int]) -> None:
    stack, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("PUT", "/v1/things/x")
    conn.putheader("Content-Length", str(MAX_PAYLOAD_BYTES + 1))
    conn.putheader("Authorization", KEY)
    conn.endheaders()

    reply = conn.getresponse()

    assert reply.status == 413
    assert reply.getheader("Content-Type") == "application/problem+json"
    assert stack.things.events == []
    conn.close()


def test_any_method_is_routed_even_one_http_server_does_not_know(server: tuple[Stack, int]) -> None:
    _, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    conn.request("QUERY", "/v1/things/x")
    reply = conn.getresponse()

    assert reply.status == 405
    assert reply.getheader("Allow") == "GET, PUT"
    assert json.loads(reply.read())["status"] == 405
    conn.close()


def test_a_malformed_request_is_a_problem_too(server: tuple[Stack, int]) -> None:
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"PUT /v1/things/x HTTP/1.1\r\nContent-Length: many\r\n\r\n")
        answer = raw.makefile("rb").read()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 400


def _raw(port: int, request: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request sent as these bytes: the answer's status, headers and body, read as http.client reads them."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(request)
        answer = http.client.HTTPResponse(raw)
        answer.begin()
        return answer.status, answer.headers, answer.read()


AUTH = b"Authorization: " + KEY.encode() + b"\r\n"


def test_chunk_extensions_and_trailer_fields_are_read_past(server: tuple[Stack, int]) -> None:
    stack, port = server
    chunks = b'4;name=value\r\n{"a"\r\n4\r\n: 1}\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n'

    status, _, body = _raw(
        port, b"PUT /v1/things/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" + AUTH + b"\r\n" + chunks
    )

    assert status == 200, body
    assert stack.things.events[0]["body"] == '{"a": 1}'


def test_a_chunked_body_at_the_limit_is_served_and_one_byte_past_it_is_a_413(server: tuple[Stack, int]) -> None:
    stack, port = server
    answers = []
    for size in (MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        chunks = iter([b"x" * (size // 2), b"x" * (size - size // 2)])
        conn.request("PUT", "/v1/things/x", body=chunks, headers={"Authorization": KEY})
        reply = conn.getresponse()
        answers.append((reply.status, reply.getheader("Content-Type"), json.loads(reply.read()).get("status")))
        conn.close()

    assert answers == [(200, "application/json", None), (413, "application/problem+json", 413)]
    (event,) = stack.things.events  # the body at the limit arrived whole; the one past it reached no function
    assert len(event["body"]) == MAX_PAYLOAD_BYTES


def test_a_body_over_10_mb_sent_whole_with_its_length_is_a_413_problem(server: tuple[Stack, int]) -> None:
    stack, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    conn.request("PUT", "/v1/things/x", body=b"x" * (MAX_PAYLOAD_BYTES + 1), headers={"Authorization": KEY})
    reply = conn.getresponse()

    assert (reply.status, reply.getheader("Content-Type")) == (413, "application/problem+json")
    assert json.loads(reply.read())["status"] == 413
    assert stack.authorizer.events == [] and stack.things.events == []
    conn.close()


@pytest.mark.parametrize("length", [b"-1", b"many", b"1_0", b"0x2"])
def test_a_content_length_that_is_not_digits_is_a_400_problem_at_once(server: tuple[Stack, int], length: bytes) -> None:
    stack, port = server
    # The client sends no body and keeps its side open: the answer must not wait for one.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"PUT /v1/things/x HTTP/1.1\r\nContent-Length: " + length + b"\r\n" + AUTH + b"\r\n")
        head = raw.recv(4096)

    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"Content-Type: application/problem+json" in head
    assert stack.authorizer.events == [] and stack.things.events == []


@pytest.mark.parametrize(
    "line", [b"GET /v1/ada@example.com HTTP/9.9", b"GET /v1/ada@example.com x HTTP/1.1", b"GET /v1/ada@example.com x"]
)
def test_a_malformed_request_line_is_a_problem_that_repeats_none_of_it(
    server: tuple[Stack, int], caplog: pytest.LogCaptureFixture, line: bytes
) -> None:
    _, port = server
    caplog.set_level(logging.INFO)

    status, headers, body = _raw(port, line + b"\r\n\r\n")

    problem = json.loads(body)
    assert (status, headers["Content-Type"]) in ((400, PROBLEM_JSON), (505, PROBLEM_JSON)), body
    assert problem["status"] == status and problem["title"] and problem["type"].startswith(PROBLEMS)
    assert headers["Cache-Control"] == "no-store"
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and re.fullmatch(r"\S+ - (400|505) \d+ms", logged[0]), logged
    assert b"ada" not in body and "ada" not in logged[0]


def test_expect_100_continue_is_answered_once(server: tuple[Stack, int]) -> None:
    stack, port = server
    sent = b"PUT /v1/things/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n" + AUTH + b"\r\n{}"

    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(sent)
        answer = raw.makefile("rb")
        lines = [answer.readline(), answer.readline(), answer.readline()]

    assert lines == [b"HTTP/1.1 100 Continue\r\n", b"\r\n", b"HTTP/1.1 200 OK\r\n"]
    assert stack.things.events[0]["body"] == "{}"


def test_head_answers_the_length_of_the_page_without_its_body() -> None:
    stack = Stack(docs=ApiDocs.installed())
    local = LocalServer(stack.gateway, "127.0.0.1", 0)
    local.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", local.httpd.server_address[1], timeout=10)
        conn.request("HEAD", "/openapi.json")
        reply = conn.getresponse()
        length = (reply.status, reply.getheader("Content-Length"), reply.read())
        conn.close()
    finally:
        local.stop()

    assert length == (200, str(len((ROOT / "infra" / "openapi.json").read_bytes())), b"")


def test_header_fields_reach_the_event_as_sent_over_http(server: tuple[Stack, int]) -> None:
    stack, port = server
    sent = b"GET /v1/things/a%40b HTTP/1.1\r\nX-Tag: a\r\nx-tag: b\r\nX_Under: 1\r\n" + AUTH + b"\r\n"

    status, _, body = _raw(port, sent)

    assert status == 200, body
    (event,) = stack.things.events
    assert (event["path"], event["pathParameters"]) == ("/v1/things/a%40b", {"thing_id": "a@b"})
    assert event["multiValueHeaders"]["X-Tag"] == ["a"] and event["multiValueHeaders"]["x-tag"] == ["b"]
    assert event["headers"]["X_Under"] == "1"  # WSGI's environ has no place for it; the event does


def test_a_client_slow_to_send_its_body_holds_up_no_other_request(server: tuple[Stack, int]) -> None:
    stack, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"PUT /v1/things/x HTTP/1.1\r\nContent-Length: 10\r\n" + AUTH + b"\r\n{}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/things/y", headers={"Authorization": KEY})
        assert conn.getresponse().status == 200
        conn.close()
        slow.sendall(b'"12345678"'[:8])

        assert slow.makefile("rb").readline().startswith(b"HTTP/1.1 200 ")
    assert [e["httpMethod"] for e in stack.things.events] == ["GET", "PUT"]


def test_a_failure_of_the_gateway_itself_is_a_500_problem(
    server: tuple[Stack, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, port = server

    def broken(request: Request) -> Reply:
        raise RuntimeError("a defect in the gateway")

    monkeypatch.setattr(stack.gateway, "handle", broken)
    status, headers, body = _raw(port, b"GET /v1/things/x HTTP/1.1\r\n" + AUTH + b"\r\n")

    assert (status, headers["Content-Type"], json.loads(body)["status"]) == (500, PROBLEM_JSON, 500)


def test_a_taken_port_is_an_os_error_for_the_caller_to_report(server: tuple[Stack, int]) -> None:
    stack, port = server

    with pytest.raises(OSError, match="in use") as raised:
        LocalServer(stack.gateway, "127.0.0.1", port)

    assert raised.value.strerror


def test_the_access_log_has_one_line_per_request_with_the_route_template_only(
    server: tuple[Stack, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    caplog.set_level(logging.INFO, logger="infra.local.gateway")
    caplog.set_level(logging.DEBUG, logger="werkzeug")

    for target in ("/v1/things/ada%40example.com?email=ada%40example.com", "/v1/bob@example.com"):
        conn.request("GET", target, headers={"Authorization": KEY})
        conn.getresponse().read()
    conn.close()

    lines = [r.getMessage() for r in caplog.records if r.name == "infra.local.gateway"]
    assert len(lines) == 2, lines
    assert re.fullmatch(r"GET /v1/things/\{thing_id\} 200 \d+ms", lines[0]), lines
    assert re.fullmatch(r"GET - 404 \d+ms", lines[1]), lines
    assert "example" not in " ".join(lines)
    assert [r.getMessage() for r in caplog.records if r.name != "infra.local.gateway"] == []  # werkzeug says nothing


# ------------------------------------------------------------- the template


def test_the_gateway_serves_every_route_of_template_yaml() -> None:
    gateway = Gateway.from_template(Functions({}), "dev")

    declared = {(r.method, r.path) for r in template.routes()}
    served = {(m, path) for path, methods in gateway.resources.items() for m in methods}
    assert served == declared
    assert gateway.authorizer is not None
    assert gateway.authorizer.function in template.functions()


def test_functions_print_to_their_output_while_imported_and_invoked(capsys: pytest.CaptureFixture[str]) -> None:
    def talk(event: dict[str, Any], _: Any) -> dict[str, Any]:
        print('{"level":"INFO","message":"handled"}')
        return {"statusCode": 200}

    output = io.StringIO()
    functions = Functions({"Talk": FunctionSpec("Talk", "stub.talk")}, {"Talk": talk}, output=output)

    assert functions.invoke("Talk", {}) == {"statusCode": 200}
    print("the terminal's own line")

    assert output.getvalue() == '{"level":"INFO","message":"handled"}\n'
    assert capsys.readouterr().out == "the terminal's own line\n"
    assert sys.stdout is not output


def test_functions_that_disagree_on_a_variable_cannot_share_the_process() -> None:
    assert shared_environment({"A": {"X": "1", "Y": "2"}, "B": {"X": "1"}}) == {"X": "1", "Y": "2"}
    with pytest.raises(ConflictingEnvironment, match="B sets X"):
        shared_environment({"A": {"X": "1"}, "B": {"X": "2"}})


def test_the_fake_context_counts_down_from_the_functions_timeout() -> None:
    context = FakeContext("IntakeFunction", 512, 29)

    assert 28_000 < context.get_remaining_time_in_millis() <= 29_000
    assert context.log_group_name == "/aws/lambda/IntakeFunction"


def test_local_env_file_covers_every_function_and_every_variable_it_declares() -> None:
    """infra/env/local.json is what `sam local invoke --env-vars` gets: it must not miss a function or a name."""
    env_file = json.loads((ROOT / "infra" / "env" / "local.json").read_text())
    shared = env_file.get("Parameters", {})

    assert set(env_file) - {"Parameters"} == set(template.functions())
    for logical_id, fn in template.functions().items():
        given = {**shared, **env_file[logical_id]}
        assert set(fn.environment) <= set(given), f"{logical_id} misses {set(fn.environment) - set(given)}"
        assert given["AWS_ENDPOINT_URL"].startswith("http://host.docker.internal:")
        assert given["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == AWS_ENV["AWS_ACCOUNT_ID_ENDPOINT_MODE"]
        assert all(isinstance(v, str) for v in given.values())
