"""Tenant settings: deadlines, download links, portability destinations, retention and the processor register."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from chatsphere.models.common import JSON_INTEGER, StrictModel
from chatsphere.models.export import S3Uri

Category = Annotated[str, StringConstraints(pattern=r"^(identity|contact|interactions|usage)$")]


class Processor(StrictModel):
    """A third party that processes the tenant's data on its behalf (GDPR art. 28), e.g. payment processing."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    data_categories: Annotated[list[Category], Field(min_length=1, max_length=4)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(description="ISO 3166-1 alpha-2")


class RetentionPeriods(StrictModel):
    """How long each category is kept; the retention job enforces these."""

    interactions_days: Annotated[int, Field(ge=1, le=3650), JSON_INTEGER] = 730
    profile_inactive_days: Annotated[int, Field(ge=1, le=3650), JSON_INTEGER] = 1095


class TenantSettings(StrictModel):
    deadline_days: Annotated[
        int, Field(ge=1, le=90, description="Days to answer a rights request (GDPR: 30)"), JSON_INTEGER
    ] = 30
    extension_days: Annotated[
        int, Field(ge=0, le=90, description="Most a request may be extended, once"), JSON_INTEGER
    ] = 60
    download_link_hours: Annotated[
        int, Field(ge=1, le=168, description="Lifetime of an export's link"), JSON_INTEGER
    ] = 24
    portability_destinations: Annotated[
        list[S3Uri],
        Field(max_length=20, json_schema_extra={"uniqueItems": True}, description="Where exports may be delivered"),
    ] = Field(default_factory=list)
    retention: RetentionPeriods = Field(default_factory=RetentionPeriods)
    processors: Annotated[
        list[Processor], Field(max_length=50, description="Each name at most once (422 otherwise)")
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> TenantSettings:
        if len(set(self.portability_destinations)) != len(self.portability_destinations):
            raise ValueError("portability_destinations has duplicates")
        if len({p.name for p in self.processors}) != len(self.processors):
            raise ValueError("processor names must be unique")
        return self
