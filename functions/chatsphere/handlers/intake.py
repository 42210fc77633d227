"""IntakeFunction: subjects, interactions and identifier lookup (routes declared in template.yaml)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from chatsphere.config import get_settings
from chatsphere.dal.idempotency import persistence_layer
from chatsphere.handlers.http import (
    SubjectId,
    api_handler,
    body_response,
    make_resolver,
    problem,
    problem_responses,
    tenant_id,
    to_json,
)
from chatsphere.handlers.wiring import ports
from chatsphere.logic import intake, rights
from chatsphere.models.common import utc_now
from chatsphere.models.subjects import (
    InteractionCreated,
    InteractionIn,
    InteractionPage,
    LookupIn,
    LookupResult,
    ObjectablePurpose,
    Subject,
    SubjectIn,
    SubjectPatch,
)
from chatsphere.observability import metrics

app = make_resolver()

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="Makes retries safe: the same key and body give the first answer, a different body gets 422",
    ),
]


@app.exception_handler(IdempotencyValidationError)
def _reused_key(_: IdempotencyValidationError) -> Response[str]:
    return problem(422, "this Idempotency-Key was used with a different body", "idempotency-key-reused")


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _in_flight(_: IdempotencyAlreadyInProgressError) -> Response[str]:
    return problem(409, "a request with this Idempotency-Key is in progress; retry shortly", "idempotency-in-progress")


@app.put(
    "/v1/subjects/<subject_id>",
    summary="Create or replace a subject's profile",
    responses={
        **body_response(200, "Replaced", Subject),
        **body_response(201, "Created", Subject),
        **problem_responses(413, 415, 422),
    },
)
def put_subject(subject_id: SubjectId, body: SubjectIn) -> Response[Any]:
    tenant = tenant_id(app)
    subject, created = intake.put_subject(ports(), tenant, subject_id, body, utc_now())
    metrics.add_metric(name="SubjectsCreated" if created else "SubjectsReplaced", unit="Count", value=1)
    return Response(status_code=201 if created else 200, content_type="application/json", body=to_json(subject))


@app.get(
    "/v1/subjects/<subject_id>",
    summary="Read a subject",
    responses={
        **body_response(200, "The subject", Subject),
        **problem_responses(404, 422),
    },
)
def get_subject(subject_id: SubjectId) -> Subject:
    return intake.get_subject(ports(), tenant_id(app), subject_id)


@app.post(
    "/v1/subjects/<subject_id>/interactions",
    summary="Store one interaction (inquiry, response, message)",
    status_code=201,
    responses={
        **body_response(201, "Stored", InteractionCreated),
        **problem_responses(404, 409, 413, 415, 422),
    },
)
def create_interaction(
    subject_id: SubjectId, body: InteractionIn, idempotency_key: IdempotencyKey = None
) -> InteractionCreated:
    tenant = tenant_id(app)
    now = utc_now()
    if idempotency_key is None:
        created = intake.add_interaction(ports(), tenant, subject_id, body, now)
    else:
        request = intake.InteractionRequest(
            tenant_id=tenant, subject_id=subject_id, idempotency_key=idempotency_key, body=body
        )
        intake.IDEMPOTENCY.register_lambda_context(app.lambda_context)
        created = intake.add_interaction_once(
            persistence_layer(get_settings().idempotency_table), ports(), request, now
        )
    metrics.add_metric(name="InteractionsStored", unit="Count", value=1)
    return created


@app.get(
    "/v1/subjects/<subject_id>/interactions",
    summary="List a subject's interactions, oldest first, with full text",
    responses={
        **body_response(200, "A page", InteractionPage),
        **problem_responses(404, 422),
    },
)
def list_interactions(
    subject_id: SubjectId,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=1024, description="next_cursor of the previous page")
    ] = None,
) -> InteractionPage:
    return intake.list_interactions(ports(), tenant_id(app), subject_id, limit, cursor)


@app.post(
    "/v1/subject-lookups",
    summary="Find subjects by email or phone (a POST, so identifiers stay out of URLs)",
    responses={
        **body_response(200, "Matching subject ids", LookupResult),
        **problem_responses(415, 422),
    },
)
def lookup_subjects(body: LookupIn) -> LookupResult:
    return intake.lookup_subjects(ports(), tenant_id(app), body)


SUBJECT_OK = body_response(200, "The subject", Subject)


@app.patch(
    "/v1/subjects/<subject_id>",
    summary="Correct a subject (right to rectification); null clears a field",
    responses={**SUBJECT_OK, **problem_responses(404, 409, 413, 415, 422)},
)
def correct_subject(subject_id: SubjectId, body: SubjectPatch) -> Subject:
    return rights.correct_subject(ports(), tenant_id(app), subject_id, body, utc_now())


@app.put(
    "/v1/subjects/<subject_id>/objections/<purpose>",
    summary="Object to a purpose of processing (analytics, personalization, improvement)",
    responses={**SUBJECT_OK, **problem_responses(404, 409, 422)},
)
def object_to(subject_id: SubjectId, purpose: Annotated[ObjectablePurpose, Path()]) -> Subject:
    return rights.set_objection(ports(), tenant_id(app), subject_id, purpose, True, utc_now())


@app.delete(
    "/v1/subjects/<subject_id>/objections/<purpose>",
    summary="Withdraw an objection",
    responses={**SUBJECT_OK, **problem_responses(404, 409, 422)},
)
def withdraw_objection(subject_id: SubjectId, purpose: Annotated[ObjectablePurpose, Path()]) -> Subject:
    return rights.set_objection(ports(), tenant_id(app), subject_id, purpose, False, utc_now())


@app.post(
    "/v1/subjects/<subject_id>/deactivation",
    summary="Deactivate a subject: data kept and readable, no new interactions",
    responses={**SUBJECT_OK, **problem_responses(404, 409, 422)},
)
def deactivate(subject_id: SubjectId) -> Subject:
    return rights.set_deactivated(ports(), tenant_id(app), subject_id, True, utc_now())


@app.delete(
    "/v1/subjects/<subject_id>/deactivation",
    summary="Reactivate a subject",
    responses={**SUBJECT_OK, **problem_responses(404, 409, 422)},
)
def reactivate(subject_id: SubjectId) -> Subject:
    return rights.set_deactivated(ports(), tenant_id(app), subject_id, False, utc_now())


lambda_handler = api_handler(app)
