"""Idempotency-Key, the one way for every route that takes it (interactions, exports): Powertools' idempotency
utility over the subject's own partition of IdempotencyTable, so that an erasure removes a subject's records too.

Powertools' package (and the DynamoDB persistence and boto3 resources it imports) loads on the first request that
sends a key, not at every cold start."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from chatsphere.errors import IdempotencyInProgress, IdempotencyKeyReused

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

IDEMPOTENCY_LIFETIME_SECONDS = 24 * 3600  # how long an Idempotency-Key's first answer is kept


class KeyedRequest(BaseModel):
    """What an Idempotency-Key covers: the key names the request, and the body must match on retry.

    The match is checked on `body_digest`, a keyed hash (the tenant's secret): an unkeyed hash of a short message
    ("yes") could be confirmed by guessing, so none is stored."""

    tenant_id: str
    subject_id: str
    idempotency_key: str
    body_digest: str


@cache
def idempotency_config() -> IdempotencyConfig:
    """The one place idempotency is configured."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="[tenant_id, subject_id, idempotency_key]",
        payload_validation_jmespath="body_digest",
        hash_function="sha256",
        expires_after_seconds=IDEMPOTENCY_LIFETIME_SECONDS,
    )


def body_digest(secret: bytes, body: BaseModel) -> str:
    # Domain-separated from the identifier digests and cursors that share the secret.
    return hmac.new(secret, b"idempotent-body\n" + body.model_dump_json().encode(), hashlib.sha256).hexdigest()


def at_most_once(
    layer: BasePersistenceLayer, kind: str, request: KeyedRequest, run: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`run()` at most once per (tenant, subject, kind, Idempotency-Key): a retry gets the first answer (what `run`
    returned: ids and times only, since the record keeps it), the same key with another body IdempotencyKeyReused
    (422), and one whose first request is still running IdempotencyInProgress (409)."""
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    def record(*, request: KeyedRequest) -> dict[str, Any]:
        return run()

    once = idempotent_function(
        data_keyword_argument="request",
        persistence_store=layer,
        config=idempotency_config(),
        key_prefix=kind,  # within the subject's own partition (T#<tenant>#S#<subject>#idempotency)
    )(record)
    try:
        answer: dict[str, Any] = once(request=request)
    except IdempotencyValidationError:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different body") from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyInProgress("a request with this Idempotency-Key is in progress; retry shortly") from None
    return answer
