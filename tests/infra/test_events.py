"""events/ holds one sample per event in template.yaml (and the authorizer's), shaped as AWS sends it,
and each sample is a request its handler accepts: `make invoke` and `sam local invoke -e` can use them."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from infra import template
from infra.local import samples
from infra.local.run import DEMO_TENANTS

EVENTS = template.ROOT / "events"


def demo_tenant(index: int) -> str:
    return DEMO_TENANTS[index][1].removeprefix("cs_").split(".", 1)[0]


# The samples name the local stack's first demo tenant, whose id and key are the same on every `make run`,
# so that `make invoke ... EVENT=events/<file>.json` works against it as the files stand.
DEMO_TENANT = demo_tenant(0)
# But the offboarding samples name the second: a confirmed offboarding ends its tenant, and the first one is the
# tenant every other sample and the README use (infra/local/samples.py seeds the second one's offboarding).
OFFBOARDING_SAMPLES = {"RequestOffboarding", "GetOffboardingManifest", "ExtendRequest", "ConfirmOffboarding"}
# What would end a seeded record or subject that other samples name: run after every other route sample.
LAST = ("DeleteSubject", "ConfirmOffboarding")


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def other_events() -> list[tuple[str, str, str]]:
    """(function, event name, type) of every event that is not an API route."""
    return [
        (fn.logical_id, name, event["Type"])
        for fn in template.functions().values()
        for name, event in fn.events.items()
        if event["Type"] != "Api"
    ]


def test_every_event_of_the_template_and_the_authorizer_has_a_sample_and_no_sample_is_stale() -> None:
    declared = {name for fn in template.functions().values() for name in fn.events} | {"Authorizer"}
    assert {path.stem for path in EVENTS.glob("*.json")} == declared


@pytest.mark.parametrize("route", template.routes(), ids=lambda route: route.event)
def test_each_route_sample_is_a_rest_proxy_event_for_its_route(route: template.Route) -> None:
    event = sample(route.event)
    context = event["requestContext"]
    assert (event["resource"], event["httpMethod"]) == (route.path, route.method)
    assert (context["resourcePath"], context["httpMethod"]) == (route.path, route.method)
    match = route.pattern.match(event["path"])
    assert match is not None, event["path"]
    assert (event["pathParameters"] or {}) == match.groupdict()
    tenant = demo_tenant(1) if route.event in OFFBOARDING_SAMPLES else DEMO_TENANT
    assert context["authorizer"] == {"tenant_id": tenant, "principalId": tenant}
    if event["body"] is not None:
        assert not event["isBase64Encoded"]
        json.loads(event["body"])
        # A PATCH is a JSON merge patch, and says so (application/json is taken too).
        merge_patch = ("application/merge-patch+json",) if route.method == "PATCH" else ()
        assert event["headers"]["Content-Type"] in ("application/json", *merge_patch)


def test_the_authorizer_sample_is_a_token_event_the_gateway_would_pass_on() -> None:
    _, spec = template.authorizer()
    event = sample("Authorizer")
    assert spec["FunctionPayloadType"] == event["type"] == "TOKEN"
    # API Gateway answers 401 itself, without calling the authorizer, when the header fails this expression.
    assert re.fullmatch(spec["Identity"]["ValidationExpression"], event["authorizationToken"])
    method, path = event["methodArn"].split("/", 3)[2:]
    assert any(r.method == method and r.pattern.match(f"/{path}") for r in template.routes()), event["methodArn"]


@pytest.mark.parametrize(("function", "name", "kind"), other_events(), ids=lambda value: str(value))
def test_queue_and_schedule_samples_have_their_sources_shape(function: str, name: str, kind: str) -> None:
    event = sample(name)
    if kind == "SQS":
        assert event["Records"], function
        for record in event["Records"]:
            assert record["eventSource"] == "aws:sqs"
            assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324 (SQS's own)
            assert json.loads(record["body"])["tenant_id"] == DEMO_TENANT
    elif kind == "DynamoDB":
        assert event["Records"], function
        for record in event["Records"]:
            assert record["eventSource"] == "aws:dynamodb" and record["eventName"] == "INSERT"
            assert record["dynamodb"]["Keys"]["pk"]["S"] == f"T#{DEMO_TENANT}"
    elif kind in ("Schedule", "ScheduleV2"):
        schedule_input = template.functions()[function].events[name]["Properties"].get("Input")
        if schedule_input is None:
            assert event["detail-type"] == "Scheduled Event"
        else:  # EventBridge Scheduler delivers the Input itself as the event
            assert isinstance(event, dict), function
            if json.loads(schedule_input) == {}:
                assert set(event) <= {"as_of"}, function
    else:
        pytest.fail(f"no shape check for {kind} events yet ({function}/{name})")


def test_the_subject_the_samples_name_is_the_one_make_run_seeds_with_the_put_samples_profile() -> None:
    put = sample("PutSubject")
    assert put["pathParameters"] == {"subject_id": samples.EXPORTED}
    assert json.loads(put["body"]) == samples.PEOPLE[samples.EXPORTED]  # so that the PUT sample changes nothing


def test_every_sample_answers_2xx_on_the_seeded_demo_tenants(aws: template.Resolver) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant_with_key
    from infra.local import Functions, function_specs, workers
    from infra.local.gateway import Gateway

    keys = [create_tenant_with_key(wiring().tenants, name, key)[1] for name, key in DEMO_TENANTS]  # as `make run`
    functions = Functions(function_specs())  # `make invoke`'s runtime: each function's own context
    pollers = [w for w in workers.from_template(functions, aws, 0) if not isinstance(w, workers.Schedule)]
    seeded = samples.seed(Gateway.from_template(functions, aws.ref("Stage")), keys[0], keys[1], pollers)
    assert seeded == {
        "GetRequest": "completed",
        "GetReceipt": "completed",
        "GetOffboardingManifest": "awaiting_confirmation",
    }
    # A well-formed key of a tenant that exists nowhere: the authorizer denies it, even with the demo tenants there.
    assert functions.invoke("AuthorizerFunction", sample("Authorizer"))["policyDocument"]["Statement"][0] == {
        "Action": "execute-api:Invoke",
        "Effect": "Deny",
        "Resource": "arn:aws:execute-api:us-east-1:123456789012:local/dev/*/*",
    }

    def run_job(function: str, name: str, kind: str, request_id: str | None) -> Any:
        event = sample(name)
        if kind == "SQS" and request_id is not None:
            for record in event["Records"]:
                body = json.loads(record["body"])
                if "request_id" in body:  # a job about a request the samples made
                    record["body"] = json.dumps({**body, "request_id": request_id})
        return functions.invoke(function, event)

    answers: dict[str, dict[str, Any]] = {}
    # The subject first (the seeded one: the PUT replaces it as it is); then every route but LAST, then LAST.
    routes = sorted(
        template.routes(),
        key=lambda route: (route.event != "PutSubject", LAST.index(route.event) if route.event in LAST else -1),
    )
    jobs = {name: (function, kind) for function, name, kind in other_events()}
    for route in routes:
        if route.event == "DeleteSubject":  # the export the CreateExport sample asked for runs before it
            export_id = json.loads(answers["CreateExport"]["body"])["request_id"]
            function, kind = jobs.pop("ExportJobs")
            assert run_job(function, "ExportJobs", kind, export_id) == {"batchItemFailures": []}
            record = wiring().adapters.requests.get(DEMO_TENANT, export_id)
            assert record is not None and record.status == "completed"
        answers[route.event] = functions.invoke(route.function, sample(route.event))  # as the file stands
    refused = {
        name: (answer["statusCode"], answer["body"])
        for name, answer in answers.items()
        if not 200 <= answer["statusCode"] < 300
    }
    assert refused == {}
    assert json.loads(answers["GetReceipt"]["body"])["entry"]["entry_id"].startswith(samples.DELETION_ID)
    assert json.loads(answers["RequestOffboarding"]["body"])["request_id"] == samples.OFFBOARDING_ID  # the open one

    # The deletion the DeleteSubject sample asked for, run by the DeletionJobs sample's shape; then the rest, as the
    # files stand (the jobs of seeded requests, which find them done).
    deletion_id = json.loads(answers["DeleteSubject"]["body"])["request_id"]
    function, kind = jobs.pop("DeletionJobs")
    assert run_job(function, "DeletionJobs", kind, deletion_id) == {"batchItemFailures": []}
    record = wiring().adapters.requests.get(DEMO_TENANT, deletion_id)
    assert record is not None and record.status == "completed"
    for name, (function, kind) in jobs.items():
        assert run_job(function, name, kind, None) is not None, name
