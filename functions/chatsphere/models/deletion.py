"""Deletion (the right to erasure): the job message the Intake function sends, the Deletion function
consumes (and re-sends to continue a long erasure) and the monitor re-sends when one was lost."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DeletionJob(BaseModel):
    """A DeletionQueue message: ids only. The subject is read from the request record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    request_id: str
