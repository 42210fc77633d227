"""IntakeFunction: subjects, interactions and identifier lookup; with the subject rights of
handlers/subject_rights.py (correction, objection, deactivation). Routes are declared in template.yaml."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers import subject_rights
from chatsphere.handlers.http import (
    CURSOR_EXAMPLE,
    CURSOR_RULES,
    IdempotencyKey,
    IfMatchHeader,
    SubjectId,
    api_handler,
    body_response,
    make_resolver,
    problem_responses,
    tenant_id,
    versioned_response,
    with_etag,
)
from chatsphere.logic import intake
from chatsphere.logic.idempotency import idempotency_config
from chatsphere.logic.preconditions import parse_if_match
from chatsphere.models.common import utc_now, worded
from chatsphere.models.subjects import (
    InteractionCreated,
    InteractionIn,
    InteractionPage,
    LookupIn,
    LookupResult,
    Subject,
    SubjectIn,
)
from chatsphere.observability import metrics

app = make_resolver()

ReuseDeletedId = Annotated[
    str | None,
    Header(
        alias="Reuse-Erased-Subject-Id",
        pattern=worded(r"^(true|false)$", "true or false"),
        examples=["false"],
        description="`true` creates a new subject under the id of an erased one (a new person): it gets a fresh "
        "key and shares nothing with the erased subject. Without it, a PUT to an erased id is 410, so that no "
        "retry or replay resurrects the subject. Absent means `false`",
    ),
]


@app.put(
    "/v1/subjects/<subject_id>",
    operation_id="putSubject",
    tags=["Subjects"],
    description="Creates the subject (201) or replaces its profile (200). Send If-Match with the ETag you read to "
    "guard against a concurrent writer. An erased id is refused (410) unless Reuse-Erased-Subject-Id is "
    "true.",
    summary="Create or replace a subject's profile (a change of an existing one's values leaves a correction record)",
    responses={
        **versioned_response(200, "Replaced", Subject),
        **versioned_response(201, "Created", Subject),
        **problem_responses(409, 410, 412, 413, 415, 422),
    },
)
def put_subject(
    subject_id: SubjectId, body: SubjectIn, reuse: ReuseDeletedId = None, if_match: IfMatchHeader = None
) -> Response[Any]:
    subject, created = intake.put_subject(
        wiring().intake,
        tenant_id(app),
        subject_id,
        body,
        utc_now(),
        reuse_deleted_id=reuse == "true",
        if_match=parse_if_match(if_match),
    )
    metrics.add_metric(name="SubjectsCreated" if created else "SubjectsReplaced", unit="Count", value=1)
    return with_etag(subject, subject.version, 201 if created else 200)


@app.get(
    "/v1/subjects/<subject_id>",
    operation_id="getSubject",
    tags=["Subjects"],
    description="The subject's profile, consents and state, with its version as ETag. An erased subject answers 410.",
    summary="Read a subject",
    responses={
        **versioned_response(200, "The subject", Subject),
        **problem_responses(404, 409, 410, 422),
    },
)
def get_subject(subject_id: SubjectId) -> Response[Any]:
    subject = intake.get_subject(wiring().intake, tenant_id(app), subject_id)
    return with_etag(subject, subject.version)


@app.post(
    "/v1/subjects/<subject_id>/interactions",
    operation_id="createInteraction",
    tags=["Interactions"],
    description="Stores one interaction, encrypted with the subject's own key. Send Idempotency-Key to make a retry "
    "safe: the same key and body return the first answer.",
    summary="Store one interaction (inquiry, response, message)",
    status_code=201,
    responses={
        **body_response(201, "Stored", InteractionCreated),
        **problem_responses(404, 409, 410, 413, 415, 422),
    },
)
def create_interaction(
    subject_id: SubjectId, body: InteractionIn, idempotency_key: IdempotencyKey = None
) -> InteractionCreated:
    tenant, now = tenant_id(app), utc_now()
    if idempotency_key is None:
        created = intake.add_interaction(wiring().intake, tenant, subject_id, body, now)
    else:
        idempotency_config().register_lambda_context(app.lambda_context)
        created = intake.add_interaction_once(wiring().intake, tenant, subject_id, idempotency_key, body, now)
    metrics.add_metric(name="InteractionsStored", unit="Count", value=1)
    return created


@app.get(
    "/v1/subjects/<subject_id>/interactions",
    operation_id="listInteractions",
    tags=["Interactions"],
    description="A page of the subject's interactions, oldest first. Pass the returned cursor to read the next page.",
    summary="List a subject's interactions, oldest first, with full text",
    responses={
        **body_response(200, "A page", InteractionPage),
        **problem_responses(404, 409, 410, 422),
    },
)
def list_interactions(
    subject_id: SubjectId,
    limit: Annotated[int, Query(ge=1, le=100, examples=[20])] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=1024, description=CURSOR_RULES, examples=[CURSOR_EXAMPLE])
    ] = None,
) -> InteractionPage:
    return intake.list_interactions(wiring().intake, tenant_id(app), subject_id, limit, cursor)


@app.post(
    "/v1/subject-lookups",
    operation_id="lookupSubjects",
    tags=["Subjects"],
    description="Finds the tenant's subjects by exact email or phone number. The identifiers travel in the body, "
    "never in the URL, so they stay out of access logs.",
    summary="Find subjects by email or phone (a POST, so identifiers stay out of URLs)",
    responses={
        **body_response(200, "Matching subject ids", LookupResult),
        **problem_responses(415, 422),
    },
)
def lookup_subjects(body: LookupIn) -> LookupResult:
    return intake.lookup_subjects(wiring().intake, tenant_id(app), body)


app.include_router(subject_rights.router)

lambda_handler = api_handler(app)
