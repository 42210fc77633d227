"""An export's request (RightsFunction; the job runs in ExportFunction, handlers/export.py)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import (
    IdempotencyKey,
    SubjectId,
    accepted,
    accepted_response,
    body_response,
    problem_responses,
    tenant_id,
    to_json,
)
from chatsphere.logic.idempotency import idempotency_config
from chatsphere.models.common import utc_now
from chatsphere.models.export import ExportIn
from chatsphere.models.requests import RequestRecord
from chatsphere.observability import metrics

router = Router()  # type: ignore[no-untyped-call]


@router.post(
    "/v1/subjects/<subject_id>/exports",
    operation_id="requestExport",
    tags=["Rights requests"],
    description="Starts an export job and answers 202 with the request record and its Location. Poll the record until "
    "it is completed; its result then holds a time-limited download_url. While an identical export (same subject, "
    "format and destination) is open, the answer is that one (200), so a repeated click makes one job. Send "
    "Idempotency-Key to make a retry safe: the same key and body return the same request, a different body gets "
    "422. The body may be left out: every field has a default.",
    summary="Export a subject's data (rights of access and portability); runs asynchronously",
    status_code=202,
    responses={
        **accepted_response("Accepted; poll the record", RequestRecord),
        **body_response(200, "An identical export is open already: its record (poll it)", RequestRecord),
        **problem_responses(404, 409, 410, 413, 415, 422),
    },
)
def create_export(
    subject_id: SubjectId,
    body: Annotated[ExportIn | None, Body(description="Optional: every field has a default")] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[Any]:
    from chatsphere.logic import export  # zip, CSV and the codec: this route's alone, not RightsFunction's cold start

    tenant, wanted, now = tenant_id(router), body or ExportIn(), utc_now()
    if idempotency_key is None:
        record, new = export.request_export(wiring().export, tenant, subject_id, wanted, now)
    else:
        idempotency_config().register_lambda_context(router.lambda_context)
        record, new = export.request_export_once(wiring().export, tenant, subject_id, idempotency_key, wanted, now)
    if not new:
        return Response(status_code=200, content_type="application/json", body=to_json(record))
    metrics.add_metric(name="ExportsRequested", unit="Count", value=1)
    return accepted(router, record)
