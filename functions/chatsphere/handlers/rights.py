"""RightsFunction: rights request records, export requests (the job runs in ExportFunction), tenant
settings and policy versions."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from chatsphere.bootstrap import adapters, export_ports
from chatsphere.handlers.http import (
    CURSOR_RULES,
    MERGE_PATCH_JSON,
    IfMatchHeader,
    SubjectId,
    accepted,
    accepted_response,
    api_handler,
    body_response,
    make_resolver,
    merged_body,
    problem_responses,
    tenant_id,
    to_json,
    versioned_response,
    with_etag,
)
from chatsphere.logic import analytics, export, policies, requests, retention, settings
from chatsphere.logic.analytics import MAX_RANGE_DAYS
from chatsphere.logic.preconditions import parse_if_match
from chatsphere.models.analytics import DailyAggregatePage
from chatsphere.models.common import utc_now
from chatsphere.models.export import ExportIn
from chatsphere.models.policies import Policy, PolicyIn, PolicyList
from chatsphere.models.requests import (
    REQUEST_ID_PATTERN,
    ExtensionIn,
    RequestPage,
    RequestRecord,
    RequestStatus,
    RequestType,
)
from chatsphere.models.retention import RetentionRunPage
from chatsphere.models.settings import SettingsPatch, TenantSettings
from chatsphere.observability import metrics

app = make_resolver()

RequestId = Annotated[str, Path(pattern=REQUEST_ID_PATTERN, description="As returned when the request was made")]


@app.post(
    "/v1/subjects/<subject_id>/exports",
    summary="Export a subject's data (rights of access and portability); runs asynchronously",
    status_code=202,
    responses={
        **accepted_response("Accepted; poll the record", RequestRecord),
        **problem_responses(404, 409, 410, 413, 415, 422),
    },
)
def create_export(subject_id: SubjectId, body: ExportIn) -> Response[Any]:
    record = export.request_export(export_ports(), tenant_id(app), subject_id, body, utc_now())
    metrics.add_metric(name="ExportsRequested", unit="Count", value=1)
    return accepted(app, record)


@app.get(
    "/v1/requests",
    summary="List the tenant's rights requests, newest first (overdue=true: open past due, most overdue first)",
    responses={
        **body_response(200, "A page", RequestPage),
        **problem_responses(422),
    },
)
def list_requests(
    status: Annotated[RequestStatus | None, Query()] = None,
    type: Annotated[RequestType | None, Query()] = None,
    overdue: Annotated[bool, Query()] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=1024, description=f"{CURSOR_RULES} (overdue=true is a listing of its own)"),
    ] = None,
) -> RequestPage:
    a = adapters()
    return requests.list_requests(
        a.requests,
        a.blobs,
        a.secret,
        tenant_id(app),
        utc_now(),
        status=status,
        type_=type,
        overdue=overdue,
        limit=limit,
        cursor=cursor,
    )


@app.get(
    "/v1/requests/<request_id>",
    summary="Read one rights request record",
    responses={**body_response(200, "The record", RequestRecord), **problem_responses(404, 422)},
)
def get_request(request_id: RequestId) -> RequestRecord:
    a = adapters()
    return requests.get_request(a.requests, a.blobs, tenant_id(app), request_id, utc_now())


@app.post(
    "/v1/requests/<request_id>/extension",
    summary="Extend an open request's deadline once, with a reason",
    responses={
        **body_response(200, "The extended record", RequestRecord),
        **problem_responses(404, 409, 413, 415, 422),
    },
)
def extend_request(request_id: RequestId, body: ExtensionIn) -> RequestRecord:
    a = adapters()
    return requests.extend_request(a.requests, a.settings, a.blobs, tenant_id(app), request_id, body, utc_now())


@app.get(
    "/v1/settings",
    summary="Read the tenant's settings",
    responses={**versioned_response(200, "The settings", TenantSettings), **problem_responses()},
)
def get_settings() -> Response[Any]:
    return with_etag(*settings.read_settings(adapters().settings, tenant_id(app)))


@app.put(
    "/v1/settings",
    summary="Replace the tenant's settings (the whole document GET returns; PATCH changes some of it)",
    responses={
        **versioned_response(200, "The settings", TenantSettings),
        **problem_responses(412, 413, 415, 422),
    },
)
def put_settings(body: TenantSettings, if_match: IfMatchHeader = None) -> Response[Any]:
    a = adapters()
    stored, version = settings.replace_settings(
        a.settings, a.own_buckets, tenant_id(app), body, utc_now(), parse_if_match(if_match)
    )
    return with_etag(stored, version)


@app.patch(
    "/v1/settings",
    summary="Change some of the tenant's settings: a JSON merge patch (RFC 7396); the rest, processors included, stay",
    responses={
        **versioned_response(200, "The settings", TenantSettings),
        **problem_responses(412, 413, 415, 422),
    },
)
def patch_settings(
    body: Annotated[SettingsPatch, Body(media_type=MERGE_PATCH_JSON)], if_match: IfMatchHeader = None
) -> Response[Any]:
    a = adapters()
    with merged_body():
        stored, version = settings.patch_settings(
            a.settings,
            a.own_buckets,
            tenant_id(app),
            body.model_dump(exclude_unset=True),
            utc_now(),
            parse_if_match(if_match),
        )
    return with_etag(stored, version)


@app.post(
    "/v1/policies",
    summary="Publish a privacy policy version (announced as PolicyVersionPublished)",
    status_code=201,
    responses={
        **body_response(200, "Already published with this content", Policy),
        **body_response(201, "Published", Policy),
        **problem_responses(409, 413, 415, 422),
    },
)
def publish_policy(body: PolicyIn) -> Response[Any]:
    policy, created = policies.publish_policy(adapters().policies, adapters().events, tenant_id(app), body, utc_now())
    return Response(status_code=201 if created else 200, content_type="application/json", body=to_json(policy))


@app.get(
    "/v1/policies",
    summary="List the tenant's policy versions, oldest first",
    responses={**body_response(200, "The versions", PolicyList), **problem_responses()},
)
def list_policies() -> PolicyList:
    return policies.list_policies(adapters().policies, tenant_id(app))


lambda_handler = api_handler(app)


@app.get(
    "/v1/retention/runs",
    summary="List the tenant's retention runs, newest first: what each removed and what a legal hold kept",
    responses={**body_response(200, "A page of runs", RetentionRunPage), **problem_responses(400, 422)},
)
def list_retention_runs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024, description=CURSOR_RULES)] = None,
) -> RetentionRunPage:
    a = adapters()
    return retention.list_runs(a.retention, a.secret, tenant_id(app), limit, cursor)


@app.get(
    "/v1/analytics/daily",
    summary="The tenant's anonymous daily aggregates (no identifier; cells of too few subjects are null)",
    responses={**body_response(200, "The days computed in the range", DailyAggregatePage), **problem_responses(422)},
)
def daily_analytics(
    from_: Annotated[date, Query(alias="from", description="First day, YYYY-MM-DD (UTC)")],
    to: Annotated[
        date, Query(description=f"Last day, YYYY-MM-DD, not before `from`, at most {MAX_RANGE_DAYS} days after it")
    ],
) -> DailyAggregatePage:
    return analytics.daily(adapters().analytics, tenant_id(app), from_, to)
