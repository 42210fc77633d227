"""Tenant settings: deadlines, download links, portability destinations, retention, the processor register, the
controller's own entries (who it is, whom to contact) and each purpose's legal basis."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from chatsphere.models.common import JSON_INTEGER, StrictModel, merge_patch_model, worded
from chatsphere.models.export import S3Uri

Category = Annotated[
    str,
    StringConstraints(
        pattern=worded(r"^(identity|contact|interactions|usage)$", "one of identity, contact, interactions, usage")
    ),
]


class Processor(StrictModel):
    """A third party that processes the tenant's data on its behalf (GDPR art. 28), e.g. payment processing."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    data_categories: Annotated[list[Category], Field(min_length=1, max_length=4)]
    country: Annotated[str, StringConstraints(pattern=worded(r"^[A-Z]{2}$", "two capital letters"))] = Field(
        description="ISO 3166-1 alpha-2"
    )
    safeguard: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None,
        description="The safeguard of a transfer outside the EEA (GDPR art. 44-49), e.g. 'SCC 2021/914' or "
        "'adequacy decision'; a processor outside the EEA without one is flagged in the record of processing",
    )


ContactText = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Controller(StrictModel):
    """The controller's own entries (GDPR art. 13(1)(a-b), 30(1)(a)): business contacts, shown to data subjects in
    their export and in the record of processing. Tenant text, stored as written and never logged."""

    name: ContactText = Field(description="The controller's legal name")
    contact: ContactText = Field(description="Where a person reaches the controller: a business address, email or URL")
    dpo_contact: ContactText | None = Field(
        default=None, description="Where a person reaches the data protection officer, if one is designated"
    )


LegalBasis = Literal["consent", "contract", "legal_obligation", "legitimate_interest"]  # GDPR art. 6(1) a, b, c, f


class Purposes(StrictModel):
    """Each purpose's legal basis (GDPR art. 6(1)); one field per purpose of models/subjects.PURPOSES."""

    inquiries: LegalBasis = Field(default="contract", description="Handling the subject's inquiries and requests")
    improvement: LegalBasis = Field(default="legitimate_interest", description="Improving the system")
    personalization: LegalBasis = Field(default="consent", description="Personalising the service")
    analytics: LegalBasis = Field(default="legitimate_interest", description="Trend analytics")
    legal_obligation: LegalBasis = Field(default="legal_obligation", description="Complying with legal obligations")


RetentionAction = Literal["delete", "anonymize"]
MAX_RETENTION_DAYS = 3650  # the longest any category may be kept; the TTL backstop is set beyond it


def _days(default: int, description: str) -> Any:
    return Field(default=default, ge=1, le=MAX_RETENTION_DAYS, description=description)


class InteractionsRetention(StrictModel):
    days: Annotated[int, JSON_INTEGER] = _days(730, "Days after an interaction's occurred_at")
    action: RetentionAction = Field(
        default="delete",
        description="delete: removed outright; anonymize: first counted into the tenant's anonymous daily "
        "aggregates (GET /v1/analytics/daily), then removed",
    )


class InactiveProfilesRetention(StrictModel):
    days: Annotated[int, JSON_INTEGER] = _days(1095, "Days after the subject's last interaction (or creation)")
    action: Literal["delete"] = Field(
        default="delete", description="An expired profile is erased through the deletion path (a deletion record)"
    )


class ExportPackagesRetention(StrictModel):
    days: Annotated[int, JSON_INTEGER] = Field(
        default=7,
        ge=1,
        le=7,
        description="Days after an export package was created (at most 7: the bucket's lifecycle rule removes "
        "every package after 8 days as the backstop)",
    )


class ClosedRequestsRetention(StrictModel):
    days: Annotated[int, JSON_INTEGER] = _days(2190, "Days after a request's completed_at; tombstones stay")


class Retention(StrictModel):
    """How long each category is kept; the Retention function enforces these every day."""

    interactions: InteractionsRetention = Field(default_factory=InteractionsRetention)
    inactive_profiles: InactiveProfilesRetention = Field(default_factory=InactiveProfilesRetention)
    export_packages: ExportPackagesRetention = Field(default_factory=ExportPackagesRetention)
    closed_requests: ClosedRequestsRetention = Field(default_factory=ClosedRequestsRetention)


# Realistic settings: a controller, a processor outside the EEA with its safeguard, anonymised interactions.
SETTINGS_EXAMPLE: dict[str, Any] = {
    "deadline_days": 30,
    "extension_days": 60,
    "download_link_hours": 24,
    "portability_destinations": ["s3://acme-exports/chatsphere"],
    "retention": {"interactions": {"days": 730, "action": "anonymize"}},
    "analytics_min_count": 5,
    "processors": [
        {
            "name": "Payments Inc.",
            "purpose": "Payment processing",
            "data_categories": ["identity", "contact"],
            "country": "US",
            "safeguard": "SCC 2021/914",
        }
    ],
    "controller": {"name": "Acme Shop Ltd", "contact": "privacy@acme.example", "dpo_contact": "dpo@acme.example"},
    "purposes": {"analytics": "consent"},
}


class TenantSettings(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SETTINGS_EXAMPLE]})

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
    retention: Retention = Field(default_factory=Retention)
    analytics_min_count: Annotated[
        int,
        Field(
            ge=2,
            le=1000,
            description="Fewest distinct subjects an analytics cell may describe; smaller cells are suppressed",
        ),
        JSON_INTEGER,
    ] = 5
    processors: Annotated[
        list[Processor], Field(max_length=50, description="Each name at most once (422 otherwise)")
    ] = Field(default_factory=list)
    controller: Controller | None = Field(
        default=None,
        description="Who the controller is and whom to contact; shown in exports and the record of processing. "
        "name and contact are required: a PATCH that sets a controller where none is stored gives both (422 "
        "otherwise, and nothing is written)",
    )
    purposes: Purposes = Field(default_factory=Purposes, description="Each purpose's legal basis")
    numeric_subject_ids: bool = Field(
        default=False,
        description="true: subject ids of digits only (e.g. 1234567, a numeric user id) are accepted, though they look "
        "like phone numbers; a leading +, separators (spaces, dashes, dots, parentheses) and email-like ids are still "
        "refused (422)",
    )

    @model_validator(mode="after")
    def _unique(self) -> TenantSettings:
        if len(set(self.portability_destinations)) != len(self.portability_destinations):
            raise ValueError("portability_destinations has duplicates")
        if len({p.name for p in self.processors}) != len(self.processors):
            raise ValueError("processor names must be unique")
        return self


class SettingsPatch(merge_patch_model(TenantSettings)):  # type: ignore[misc]
    """PATCH body, a JSON merge patch (RFC 7396): the fields given change, objects are patched field by field, null
    puts a field back to its default, arrays are replaced whole. The result must be valid settings as a PUT body is
    (422 otherwise, and nothing is written)"""

    model_config = ConfigDict(json_schema_extra={"examples": [{"deadline_days": 45, "download_link_hours": 48}]})
