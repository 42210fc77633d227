"""The evidence ledger as a tenant reads it (RightsFunction): an erasure's receipt, the audit trail, consistency
between two tree sizes, and the public key that verifies every signed tree head. The ledger's own function, which
appends and signs, is handlers/ledger.py."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatsphere.bootstrap import wiring
from chatsphere.handlers.http import body_response, problem_responses, tenant_id
from chatsphere.handlers.requests import RequestId
from chatsphere.models.common import DATE_TIME_RULES, DateTimeText, iso
from chatsphere.models.ledger import AuditPage, ConsistencyProof, EntryType, Receipt

router = Router()  # type: ignore[no-untyped-call]
# PEM is ASCII text (RFC 7468) and has no registered media type; text/plain is what every client (curl, a generated
# client) reads as text.
PEM = "text/plain"


@router.get(
    "/v1/requests/<request_id>/receipt",
    operation_id="getReceipt",
    tags=["Ledger"],
    description="A completed erasure's receipt: its ledger entry, an inclusion proof and the signed tree head. "
    "`chatsphere verify` checks it offline with the public key alone.",
    summary="An erasure's receipt, verifiable offline: the entry, its inclusion proof, the signed tree head",
    responses={
        **body_response(200, "The receipt (save it; `chatsphere verify` checks it with the public key alone)", Receipt),
        **problem_responses(404, 409, 422),
    },
)
def get_receipt(request_id: RequestId) -> Receipt:
    from chatsphere.logic import ledger  # the tree's code: this route's alone

    return Receipt.model_validate(ledger.receipt(wiring().ledger, tenant_id(router), request_id))


@router.get(
    "/v1/audit",
    operation_id="listAudit",
    tags=["Ledger"],
    description="A page of the tenant's ledger entries in sequence order, optionally filtered by type and time.",
    summary="The tenant's ledger entries in sequence order: every lifecycle event, each with its number",
    responses={**body_response(200, "A page of entries", AuditPage), **problem_responses(422)},
)
def list_audit(
    type: Annotated[
        EntryType | None, Query(description="Only entries of this type", examples=["deletion.receipt"])
    ] = None,
    from_: Annotated[
        DateTimeText | None,
        Query(alias="from", description=f"{DATE_TIME_RULES}: at or after", examples=["2026-11-01T00:00:00Z"]),
    ] = None,
    to: Annotated[
        DateTimeText | None, Query(description=f"{DATE_TIME_RULES}: before", examples=["2026-12-01T00:00:00Z"])
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=10**12, description="The sequence number the page starts after", examples=[0])
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, examples=[20])] = 50,
) -> AuditPage:
    from chatsphere.logic import ledger  # the tree's code: this route's alone

    since, until = (iso(t) if t else None for t in (from_, to))
    return ledger.audit_page(wiring().ledger, tenant_id(router), limit, after, type, since, until)


@router.get(
    "/v1/ledger/consistency",
    operation_id="getLedgerConsistency",
    tags=["Ledger"],
    description="Proves that the ledger's tree at size `to` extends the tree at size `from` (RFC 9162), so no entry "
    "was rewritten.",
    summary="An RFC 9162 consistency proof: the tree at `to` extends the tree at `from`",
    responses={**body_response(200, "The proof, with both roots", ConsistencyProof), **problem_responses(404, 422)},
)
def get_consistency(
    from_: Annotated[int, Query(alias="from", ge=1, le=10**12, description="The older tree size", examples=[1])],
    to: Annotated[
        int, Query(ge=1, le=10**12, description="The newer tree size, at most the tree's size", examples=[2])
    ],
) -> ConsistencyProof:
    from chatsphere.logic import ledger  # the tree's code: this route's alone

    return ConsistencyProof.model_validate(ledger.consistency(wiring().ledger, tenant_id(router), from_, to))


@router.get(
    "/v1/ledger/public-key",
    operation_id="getLedgerPublicKey",
    tags=["Ledger"],
    description="The PEM public key that verifies every signed tree head and receipt.",
    summary="The public key (PEM, ECDSA P-256) that verifies every signed tree head",
    responses={
        200: {"description": "SubjectPublicKeyInfo, PEM", "content": {PEM: {"schema": {"type": "string"}}}},
        **problem_responses(),
    },
)
def get_public_key() -> Response[Any]:
    tenant_id(router)  # any tenant's key may read it; the authorizer's tenant is required all the same
    return Response(status_code=200, content_type=PEM, body=wiring().ledger.signer.public_key_pem().decode())
