"""An export's request (RightsFunction; the job runs in ExportFunction, handlers/export.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import SubjectId, accepted, accepted_response, problem_responses, tenant_id
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
    "it is completed; its result then holds a time-limited download_url.",
    summary="Export a subject's data (rights of access and portability); runs asynchronously",
    status_code=202,
    responses={
        **accepted_response("Accepted; poll the record", RequestRecord),
        **problem_responses(404, 409, 410, 413, 415, 422),
    },
)
def create_export(subject_id: SubjectId, body: ExportIn) -> Response[Any]:
    from chatsphere.logic import export  # zip, CSV and the codec: this route's alone, not RightsFunction's cold start

    record = export.request_export(wiring().export, tenant_id(router), subject_id, body, utc_now())
    metrics.add_metric(name="ExportsRequested", unit="Count", value=1)
    return accepted(router, record)
