"""Deletion (the right to erasure): the job message the Intake function sends, the Deletion function
consumes (and re-sends to continue a long erasure) and the monitor re-sends when one was lost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from chatsphere.models.requests import RequestItem


class DeletionJob(BaseModel):
    """A DeletionQueue message: ids only. The subject is read from the request record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    request_id: str
    scope: Literal["subject", "tenant"] = "subject"  # tenant: an offboarding (logic/offboarding.py)

    @classmethod
    def for_request(cls, item: RequestItem) -> DeletionJob:
        """The message that runs (or, from the monitor, re-runs) the deletion or offboarding `item` records."""
        scope = "tenant" if item.type == "offboarding" else "subject"
        return cls(tenant_id=item.tenant_id, request_id=item.request_id, scope=scope)
