"""Subject rights served by the Intake function: correction, objection, deactivation, legal holds and the
request to erase (a Router that handlers/intake.py includes; each leaves a request record)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import (
    IfMatchHeader,
    SubjectId,
    accepted,
    accepted_response,
    body_response,
    merged_body,
    problem_responses,
    tenant_id,
    to_json,
    versioned_response,
    with_etag,
)
from chatsphere.logic import deletion, subject_rights
from chatsphere.logic.preconditions import parse_if_match
from chatsphere.models.common import utc_now
from chatsphere.models.requests import RecordView, RequestRecord
from chatsphere.models.subjects import LegalHoldIn, ObjectablePurpose, Subject, SubjectPatch

router = Router()  # type: ignore[no-untyped-call]


@router.delete(
    "/v1/subjects/<subject_id>",
    operation_id="deleteSubject",
    tags=["Subjects"],
    description="Starts the subject's erasure and answers 202 with the request record. Poll it until completed; the "
    "subject then answers 410.",
    summary="Erase a subject (right to erasure); runs asynchronously. A second request returns the open one",
    status_code=202,
    responses={
        **body_response(200, "A deletion is already open: its record", RequestRecord),
        **accepted_response("Accepted: the subject is closed from now on; poll the record", RequestRecord),
        **problem_responses(404, 409, 410, 422),
    },
)
def delete_subject(subject_id: SubjectId) -> Response[Any]:
    record, created = deletion.request_deletion(wiring().deletion, tenant_id(router), subject_id, utc_now())
    if created:
        return accepted(router, record)
    return Response(status_code=200, content_type="application/json", body=to_json(record))


SUBJECT_OK = body_response(200, "The subject", Subject)


@router.patch(
    "/v1/subjects/<subject_id>",
    operation_id="correctSubject",
    tags=["Subjects"],
    description="Corrects some fields of the subject's profile with a JSON merge patch; null clears a field. The "
    "change leaves a correction record.",
    summary="Correct a subject (right to rectification): a JSON merge patch, null clears a field",
    responses={
        **versioned_response(200, "The subject", Subject),
        **problem_responses(404, 409, 410, 412, 413, 415, 422),
    },
)
def correct_subject(subject_id: SubjectId, body: SubjectPatch, if_match: IfMatchHeader = None) -> Response[Any]:
    with merged_body():
        subject = subject_rights.correct_subject(
            wiring().subject_rights, tenant_id(router), subject_id, body, utc_now(), if_match=parse_if_match(if_match)
        )
    return with_etag(subject, subject.version)


OBJECTION = "/v1/subjects/<subject_id>/objections/<purpose>"
DEACTIVATION = "/v1/subjects/<subject_id>/deactivation"
SUBJECT_CHANGE_PROBLEMS = problem_responses(404, 409, 410, 422)


def _turning_on() -> bool:
    """One route per resource: a PUT (objection) or POST (deactivation) turns it on, a DELETE turns it off."""
    return router.current_event.http_method != "DELETE"


@router.put(
    OBJECTION,
    operation_id="objectToPurpose",
    tags=["Subjects"],
    description="Records the subject's objection to one purpose of processing; the service stops that processing for "
    "the subject.",
    summary="Object to a purpose of processing (analytics, personalization, improvement)",
    responses={**SUBJECT_OK, **SUBJECT_CHANGE_PROBLEMS},
)
@router.delete(
    OBJECTION,
    operation_id="withdrawObjection",
    tags=["Subjects"],
    description="Withdraws the subject's objection to one purpose of processing.",
    summary="Withdraw an objection",
    responses={**SUBJECT_OK, **SUBJECT_CHANGE_PROBLEMS},
)
def objection(subject_id: SubjectId, purpose: Annotated[ObjectablePurpose, Path(examples=["analytics"])]) -> Subject:
    return subject_rights.set_objection(
        wiring().subject_rights, tenant_id(router), subject_id, purpose, utc_now(), on=_turning_on()
    )


@router.post(
    DEACTIVATION,
    operation_id="deactivateSubject",
    tags=["Subjects"],
    description="Deactivates the subject: its data stays readable, new interactions are refused.",
    summary="Deactivate a subject: data kept and readable, no new interactions",
    responses={**SUBJECT_OK, **SUBJECT_CHANGE_PROBLEMS},
)
@router.delete(
    DEACTIVATION,
    operation_id="reactivateSubject",
    tags=["Subjects"],
    description="Reactivates a deactivated subject.",
    summary="Reactivate a subject",
    responses={**SUBJECT_OK, **SUBJECT_CHANGE_PROBLEMS},
)
def deactivation(subject_id: SubjectId) -> Subject:
    return subject_rights.set_deactivated(
        wiring().subject_rights, tenant_id(router), subject_id, utc_now(), on=_turning_on()
    )


@router.put(
    "/v1/subjects/<subject_id>/legal-hold",
    operation_id="placeLegalHold",
    tags=["Legal holds"],
    description="Places a legal hold on the subject: what it covers is kept by any deletion until the hold is lifted.",
    summary="Place a legal hold: what it covers (profile, interactions) is kept by any deletion until lifted",
    responses={**SUBJECT_OK, **problem_responses(404, 409, 410, 413, 415, 422)},
)
def place_hold(subject_id: SubjectId, body: LegalHoldIn) -> Subject:
    return subject_rights.place_hold(wiring().subject_rights, tenant_id(router), subject_id, body, utc_now())


@router.delete(
    "/v1/subjects/<subject_id>/legal-hold",
    operation_id="liftLegalHold",
    tags=["Legal holds"],
    description="Lifts the legal hold. If a deletion kept data for it, that data is erased now (202, with the "
    "deletion's record).",
    summary="Lift the legal hold; if a deletion kept data for it, that data is then erased (202, the deletion)",
    responses={
        **SUBJECT_OK,
        **accepted_response(
            "A deletion kept data for the hold: the deletion that erases it (a new one that follows a completed or"
            " failed deletion, or the one still running)",
            RequestRecord,
        ),
        **problem_responses(404, 409, 410, 422),
    },
)
def lift_hold(subject_id: SubjectId) -> Response[Any]:
    lifted = subject_rights.lift_hold(wiring().subject_rights, tenant_id(router), subject_id, utc_now())
    if isinstance(lifted, RecordView):
        return accepted(router, lifted)
    return Response(status_code=200, content_type="application/json", body=to_json(lifted))
