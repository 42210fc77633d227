"""The record of processing activities (GDPR art. 30(1)), as GET /v1/records-of-processing answers it: built each
time from the tenant's live settings and the deployment's own measures (logic/processing.py), never stored."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from chatsphere.models.settings import Controller, LegalBasis, Processor

FlagKind = Literal["category_without_retention", "transfer_without_safeguard"]


class Flag(BaseModel):
    """Something the record shows is missing: a gap a controller must close (GDPR art. 5(1)(e), 44-46)."""

    kind: FlagKind = Field(
        description="category_without_retention: a data category a processor receives has no retention period in "
        "the settings (the settings set periods for identity, contact and interactions; `usage` has none); "
        "transfer_without_safeguard: a processor outside the EEA has no `safeguard`"
    )
    subject: str = Field(description="The category, or the processor's name")
    detail: str


class Activity(BaseModel):
    """One purpose of processing, in the order of the columns of a regulator's art. 30 template (e.g. the CNIL's)."""

    purpose: str = Field(description="The purpose's key, as in settings `purposes`")
    description: str
    legal_basis: LegalBasis = Field(description="From settings `purposes`")
    categories_of_subjects: list[str]
    categories_of_data: list[str] = Field(description="Keys of `data_categories`")
    recipients: list[str] = Field(description="Names of the processors that receive one of those categories")
    transfers: list[str] = Field(description="Those recipients outside the EEA, each with its safeguard or none")
    retention: list[str] = Field(description="Each category's period, as in `retention`")
    security_measures: list[str]


class RetentionPeriod(BaseModel):
    days: int | None = Field(description="Null: no period is set for it (flagged)")
    action: str | None = Field(description="What happens then: erased, deleted, anonymised or removed")
    text: str


class Transfer(BaseModel):
    processor: str
    country: str = Field(description="ISO 3166-1 alpha-2, outside the EEA")
    safeguard: str | None = Field(description="Null: none stated (flagged)")


class Counts(BaseModel):
    """Live figures, each exact for what it names, counted by Select=COUNT Queries of indexes (never a Scan)."""

    subjects: int = Field(description="Every subject the tenant holds, any status (MemberIndex: 4 Queries)")
    open_requests: int = Field(description="Rights requests not yet closed (OpenRequestsIndex: 1 Query)")
    interactions_last_7_days: int = Field(
        description="Stored interactions that occurred in the last 7 UTC days, today included (the day index: 7 "
        "days x 4 shards, and the 4 shards of the late bucket: 32 Queries). No index counts all of a tenant's "
        "interactions without one Query per stored day, so the record gives this window rather than a total"
    )


class RecordOfProcessing(BaseModel):
    """The controller's record of processing activities (GDPR art. 30(1)), from the settings in force now."""

    controller: Controller | None = Field(description="From settings `controller`; null until the tenant sets it")
    controller_name: str = Field(description="The controller's name, or the tenant's name while none is set")
    generated_at: datetime
    settings_version: int = Field(description="The settings' version (ETag) the record was built from")
    activities: list[Activity]
    categories_of_subjects: list[str]
    data_categories: dict[str, list[str]] = Field(description="Each category and the fields it holds")
    recipients: list[Processor] = Field(description="The processor register (settings `processors`)")
    transfers: list[Transfer] = Field(description="Processors outside the EEA (EU 27, Iceland, Liechtenstein, Norway)")
    retention: dict[str, RetentionPeriod]
    security_measures: list[str] = Field(description="What the deployment enforces, for every tenant")
    counts: Counts
    flags: list[Flag] = Field(description="Empty when nothing is missing")
