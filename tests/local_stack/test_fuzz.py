"""The running stack against its own contract: schemathesis generates requests from infra/openapi.json (valid and
invalid ones) and runs every check it has on each answer: no 5xx, documented status codes, content types, headers
and bodies, valid data accepted, invalid data rejected, the key actually enforced, 405 + Allow on other methods.

Every phase `schemathesis run` has: the schema's examples, coverage (each keyword's boundaries and violations, other
methods), fuzzing (hypothesis, capped per operation), and stateful (sequences that feed one answer's ids into the
next request, along the links schemathesis infers from the document's names: subject_id, request_id).

The requests carry the second demo tenant's key: the first one's data belongs to test_local_stack.py and to the
banner's examples."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable, MutableMapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import phonenumbers
import pytest
import schemathesis
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import Bundle, initialize
from requests.structures import CaseInsensitiveDict
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Err
from schemathesis.generation.meta import TestPhase
from schemathesis.generation.stateful.state_machine import StepInput

from chatsphere.logic import reports
from chatsphere.logic.analytics import MAX_RANGE_DAYS
from chatsphere.models.common import looks_personal
from chatsphere.models.settings import TenantSettings
from tests.local_stack.conftest import ROOT, RunningStack, http

if TYPE_CHECKING:  # a case of an OpenAPI operation, as schemathesis types it
    from schemathesis.specs.openapi.schemas import OpenApiCase
else:
    OpenApiCase = schemathesis.Case

# Bounds on a shared 2-core machine: fuzzing cases per operation, stateful scenarios and steps per scenario.
FUZZ_EXAMPLES = 30
STATEFUL_SCENARIOS = 25
STATEFUL_STEPS = 8
DEFAULT_EXTENSION_DAYS = TenantSettings().extension_days
CONFIG = schemathesis.Config.from_dict(
    {
        # Every check. max_response_time is not among them until it is given a limit, and a time limit would be
        # a timed assert on a shared machine.
        # 410 joins 404 and 409 as an answer that depends on state, not on the request: an earlier case
        # may have erased the subject a valid request names.
        "checks": {
            "enabled": True,
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]
            },
            # A subject's id may be used again after its DELETE, by design: a PUT with Reuse-Erased-Subject-Id:
            # true creates a new person under it, and a legal hold keeps a deleted subject readable (restricted).
            # use_after_free cannot know either; that an erasure leaves nothing is proven by tests/residue.py.
            "use_after_free": {"enabled": False},
        },
        # The same examples on every run, and no example database written into the tree.
        "generation": {"deterministic": True, "database": "none"},
        # All four, as `schemathesis run` does (they are on by default; said here so that none goes quietly).
        # Stateful scenarios are capped below, in test_stateful_workflows.
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS},
        },
    }
)
schema = schemathesis.openapi.from_path(ROOT / "infra" / "openapi.json", config=CONFIG)
# Cases are built at collection, before the stack runs: they carry this, and the test puts the real key in its place.
KEY_PLACEHOLDER = "second-demo-tenant-key"


@schema.auth()
class DemoTenantKey:
    """The bearer key, through schemathesis's auth so that cases testing a missing key really go without one."""

    def get(self, case: OpenApiCase, ctx: Any) -> str:
        return KEY_PLACEHOLDER

    def set(self, case: OpenApiCase, data: str, ctx: Any) -> None:
        headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(case.headers or {})  # a copy: cases share none
        headers["Authorization"] = f"Bearer {data}"
        case.headers = headers


# ------------------------------------------- valid cases, within the rules JSON Schema cannot state
# "Valid data is accepted" is checked on cases valid by the schema. Where the API also applies a rule the schema
# cannot state, the valid cases are made to keep it, so that the check stays on for everything else. Invalid
# cases are left alone: those rules are still fuzzed, and breaking them must still be rejected.


def _example_mobile(region: str) -> str:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert number is not None, region  # libphonenumber has an example for each region listed below
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


PLAN_VALID_PHONES = [_example_mobile(region) for region in ("US", "GB", "DE", "FR", "JP", "BR", "IN", "AU")]


def _pick(values: list[str], seed: str) -> str:
    return values[int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(values)]


def _email_ok(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _after_now(text: str) -> bool:
    try:
        return datetime.fromisoformat(text.upper()) > datetime.now(UTC)
    except (ValueError, TypeError):
        return False  # not a date-time the API would read either: its answer is for the checks to judge


def _unique_by(items: list[Any], key: Callable[[Any], Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            out.append(item)
    return out


def _one_identifier(body: dict[str, Any]) -> None:
    """A lookup takes exactly one of email and phone (a model validator; the schema has both optional)."""
    if body.get("email") is not None:
        body.pop("phone", None)
    elif body.get("phone") is None:
        body["phone"] = PLAN_VALID_PHONES[0]


def _keep_settings_rules(body: dict[str, Any]) -> None:
    # Processor names are unique: JSON Schema's uniqueItems compares whole items, not a field of them.
    # (Portability destinations say uniqueItems, which valid cases already keep.)
    if isinstance(body.get("processors"), list):
        body["processors"] = _unique_by(body["processors"], lambda p: p.get("name") if isinstance(p, dict) else p)
    # A controller needs its name and contact: a merge patch onto settings that hold none must give both (stated in
    # its description; tenant state, as the extension's days).
    if isinstance(body.get("controller"), dict):
        for member in ("name", "contact"):
            if body["controller"].get(member) is None:
                body["controller"][member] = f"Controller {member}"


def _keep_body_rules(path: str, body: dict[str, Any]) -> None:
    # The pattern is E.164's shape; the API also checks the numbering plan (libphonenumber).
    if isinstance(body.get("phone"), str):
        body["phone"] = _pick(PLAN_VALID_PHONES, body["phone"])
    # An interaction's conversation_id and channel are ids stored in clear: the subject id's rule, as there.
    for name in ("conversation_id", "channel"):
        if isinstance(body.get(name), str) and looks_personal(body[name]):
            body[name] = "c-" + hashlib.sha256(body[name].encode()).hexdigest()[:12]  # within both patterns
    # format: email is RFC 5322 syntax; the API also wants a real domain (email-validator): not 0@00.
    if isinstance(body.get("email"), str) and not _email_ok(body["email"]):
        body["email"] = f"subject{len(body['email'])}@example.com"
    if path == "/v1/subject-lookups":
        _one_identifier(body)
    # An interaction cannot have occurred in the future: the schema cannot say "before now".
    if isinstance(body.get("occurred_at"), str) and _after_now(body["occurred_at"]):
        body["occurred_at"] = "2020-02-29T12:00:00+00:00"
    # An extension may be at most the tenant's extension_days: tenant state, the default wherever it matters
    # (a made-up request id is a 404 first; test_stateful_workflows puts the default settings back).
    days = body.get("days")  # a JSON number: an int or a float, never a bool
    extension = path.endswith("/extension") and not isinstance(days, bool)
    if extension and isinstance(days, int | float) and days > DEFAULT_EXTENSION_DAYS:
        body["days"] = DEFAULT_EXTENSION_DAYS  # JSON's integer 95.0 included
    # deliver_to must be one of the tenant's portability_destinations: tenant state.
    if path.endswith("/exports") or path == "/v1/offboarding":
        body.pop("deliver_to", None)
    if path == "/v1/settings":
        _keep_settings_rules(body)


def _keep_day_range(query: dict[str, Any]) -> None:
    """The analytics range: `from` not after `to`, less than MAX_RANGE_DAYS apart (stated in the descriptions); the
    defaults as the route takes them (`to` today, UTC; `from` 29 days before `to`)."""
    try:
        last = date.fromisoformat(str(query["to"])) if "to" in query else datetime.now(UTC).date()
        first = date.fromisoformat(str(query["from"])) if "from" in query else None
    except ValueError:
        return  # not a date: left to the schema's own checks
    if first is not None and (last < first or (last - first).days >= MAX_RANGE_DAYS):
        query["to"] = query["from"]


def _keep_report_range(query: dict[str, Any]) -> None:
    """A report's range: `from` not after `to`, at most reports.MAX_DAYS days (stated in both descriptions); the
    defaults as the route takes them (`to` today, `from` a year before it)."""
    try:
        last = date.fromisoformat(query["to"]) if "to" in query else datetime.now(UTC).date()
        first = date.fromisoformat(query["from"]) if "from" in query else None
    except (TypeError, ValueError):
        return  # not a date: left to the schema's own checks
    if first is not None and (first > last or (last - first).days >= reports.MAX_DAYS):
        query["from"] = last.isoformat()


def _keep_subject_id_rule(case: OpenApiCase) -> None:
    """A subject id must not look like an email address or a phone number (stated in its description). The
    stateful phase's steps bypass map_case and may carry no meta: their data is meant valid. Its ids may come
    percent-encoded (u%40x is u@x to the API)."""
    meta = case.meta
    for params, location in ((case.path_parameters, ParameterLocation.PATH), (case.query, ParameterLocation.QUERY)):
        if isinstance(params, dict) and (meta is None or not meta.is_negative_at(location)):
            subject_id = params.get("subject_id")
            if isinstance(subject_id, str) and looks_personal(urllib.parse.unquote(subject_id)):
                params["subject_id"] = "s-" + hashlib.sha256(subject_id.encode()).hexdigest()[:12]


NEVER_ISSUED = "r" + "0" * 28  # a request id of the right shape that no request has (ids begin with the time)


def _never_confirm_an_offboarding(case: OpenApiCase) -> None:
    """A confirmed offboarding ends the tenant whose key every request here carries, and so every later test's
    requests: the fuzzer confirms one that does not exist (404). tests/integration/test_offboarding.py and
    tests/local_stack/test_offboarding_flow.py confirm real ones, on tenants of their own."""
    params = case.path_parameters
    if case.operation.path == "/v1/offboarding/{request_id}/confirmation" and isinstance(params, dict):
        params["request_id"] = NEVER_ISSUED


@schema.hook("map_case")
def within_rules_no_schema_states(_: Any, case: OpenApiCase) -> OpenApiCase:
    meta = case.meta

    def positive_at(location: ParameterLocation) -> bool:
        # Whether the check will hold the data at `location` valid. The examples phase's cases may carry no meta
        # (the document's own examples, meant valid), and a coverage case can be positive as a whole while one
        # component is marked negative (an If-Match of "0"): positive_data_acceptance goes by the whole.
        return meta is None or meta.generation.mode.is_positive or not meta.is_negative_at(location)

    _keep_subject_id_rule(case)
    _never_confirm_an_offboarding(case)
    path = case.operation.path
    # A cursor is valid only if this API issued it (an opaque position); the schema can give its alphabet only.
    if isinstance(case.query, dict) and positive_at(ParameterLocation.QUERY):
        case.query.pop("cursor", None)
    if isinstance(case.body, dict) and positive_at(ParameterLocation.BODY):
        _keep_body_rules(path, case.body)
    # A day range is at most 366 days, `to` not before `from` (stated in `to`'s description).
    daily = path == "/v1/analytics/daily" and isinstance(case.query, dict)
    if daily and positive_at(ParameterLocation.QUERY):
        _keep_day_range(case.query)
    report = path == "/v1/reports/requests" and isinstance(case.query, dict)
    if report and positive_at(ParameterLocation.QUERY):
        _keep_report_range(case.query)
    # An Idempotency-Key reused with another request is refused (422), by design: one key per distinct request.
    if isinstance(case.headers, MutableMapping) and positive_at(ParameterLocation.HEADER):
        for name in [n for n in case.headers if n.lower() == "idempotency-key"]:
            request = json.dumps([case.method, case.formatted_path, case.body], sort_keys=True, default=str)
            case.headers[name] = hashlib.sha256(request.encode()).hexdigest()[:64]
        # If-Match names a stored version: whether it matches is state (412), not a property of the request.
        for name in [n for n in case.headers if n.lower() == "if-match"]:
            del case.headers[name]
    return case


@schema.hook("before_add_examples")
def examples_within_the_same_rules(context: Any, examples: list[OpenApiCase]) -> None:
    """The examples phase skips map_case: the document's own examples (a cursor, an If-Match) keep its rules too."""
    examples[:] = [within_rules_no_schema_states(context, example) for example in examples]


def _with_real_key(case: OpenApiCase, stack: RunningStack) -> bool:
    """Puts the demo tenant's key in the placeholder's place; whether the case carries the key."""
    keyed = bool(case.headers) and case.headers.get("Authorization") == f"Bearer {KEY_PLACEHOLDER}"
    if keyed:
        case.headers["Authorization"] = f"Bearer {stack.key(1)}"
    return keyed


def _past_the_authorizer(response: Any) -> None:
    # 401 and 403 count as "accepted" for valid data: make sure the key got the requests past the authorizer.
    assert response.status_code not in (401, 403), response.text


def _contract_test(method: str, path: str) -> Callable[..., None]:
    @pytest.mark.local_stack
    @schema.include(method=method, path=path).parametrize()
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None)
    def test(case: OpenApiCase, stack: RunningStack) -> None:
        keyed = _with_real_key(case, stack)
        response = case.call_and_validate(base_url=stack.api_url)
        if keyed:
            _past_the_authorizer(response)

    contract: Callable[..., None] = test
    return contract


# One test function per operation rather than one parametrized by schemathesis: under pytest 9 its items share
# a single node id, and pytest-xdist (make test) would then run only the first operation.
for _result in schema.get_all_operations():
    if isinstance(_result, Err):  # the document is this repository's own: an operation it cannot read is a bug
        raise _result.err()
    _operation = _result.ok()
    _name = "test_contract_" + re.sub(r"[^a-z0-9]+", "_", f"{_operation.method} {_operation.path}".lower()).strip("_")
    globals()[_name] = _contract_test(_operation.method, _operation.path)


# ------------------------------------------------------------------------------------------- the stateful phase
# No links in the document: schemathesis infers them from the names (a subject's subject_id feeds every
# /v1/subjects/{subject_id} route, an export's or a listed request's request_id feeds /v1/requests/{request_id}
# and its extension). The hooks and the auth above apply to every step.
#
# Its own entry points are the POSTs and the GETs without path parameters: on a tenant without subjects those
# only meet 404s (an export or a deactivation of a subject nobody created). Subjects are created by a PUT, so
# each scenario starts with one; the inferred links carry its subject_id on from there.
# A confirmed offboarding would end the tenant every step's key belongs to (see _never_confirm_an_offboarding): the
# confirmation is left out of the workflows, and checked by its contract test against a request no tenant has.
Workflow = schema.exclude(path="/v1/offboarding/{request_id}/confirmation", method="POST").as_state_machine()
PUT_SUBJECT = schema["/v1/subjects/{subject_id}"]["PUT"]


@pytest.mark.local_stack
def test_stateful_workflows(stack: RunningStack) -> None:
    # The fuzzed PUT /v1/settings left any settings; the workflows extend requests by up to the default's days.
    assert http("PUT", f"{stack.api_url}/v1/settings", key=stack.key(1), json_body={}).status == 200

    class AgainstTheStack(Workflow):  # type: ignore[misc,valid-type]
        # Whatever the bundle's name, schemathesis files a step's output under its operation and status.
        @initialize(target=Bundle("seeded"), case=PUT_SUBJECT.as_strategy(phase=TestPhase.STATEFUL))
        def a_subject(self, case: OpenApiCase) -> Any:
            # A new subject every scenario: hypothesis replays the same draws, and a PUT of an id an earlier
            # scenario created answers 200, not 201, which would feed other rules (an inconsistent replay).
            case.path_parameters = {**(case.path_parameters or {}), "subject_id": f"wf-{uuid.uuid4().hex}"}
            # As schemathesis's own root rules do: recorded, so that the steps it feeds can name their parent.
            self.recorder.record_case(case=case)
            self.control.record_step(StepInput.initial(case), self.recorder)
            return self.step(StepInput.initial(case))

        def call(self, case: OpenApiCase, **kwargs: Any) -> Any:
            _keep_subject_id_rule(case)
            keyed = _with_real_key(case, stack)
            response = case.call(**kwargs)
            if keyed:
                _past_the_authorizer(response)
            return response

        def get_call_kwargs(self, case: OpenApiCase) -> dict[str, Any]:
            return {"base_url": stack.api_url}

    AgainstTheStack.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
