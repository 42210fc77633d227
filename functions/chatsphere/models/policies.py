"""Privacy policy versions a tenant publishes; every interaction is stamped with the one in force."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from chatsphere.models.common import DateTimeText, StrictModel

PolicyVersionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$")]


class PolicyIn(StrictModel):
    version: PolicyVersionId
    effective_at: DateTimeText
    url: Annotated[str, StringConstraints(pattern=r"^https://[^\s]{1,2000}$")]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(description="Of the policy text")


class Policy(BaseModel):
    version: str
    effective_at: datetime
    url: str
    sha256: str
    published_at: datetime


class PolicyList(BaseModel):
    items: list[Policy]
