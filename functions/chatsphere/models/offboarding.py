"""Offboarding (GDPR art. 28(3)(g)): when its contract ends, a tenant gets all its data back, then every copy is
deleted. The API body, and what the return phase writes: one line per subject's package, and the manifest."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chatsphere.models.common import StrictModel
from chatsphere.models.export import S3Uri
from chatsphere.models.requests import ExportFormat


class OffboardingIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"format": "json"}]})

    format: ExportFormat = Field(default="json", description="Every subject's package is built in this format")
    deliver_to: S3Uri | None = Field(
        default=None,
        description="One of the tenant's portability_destinations (GET /v1/settings), as written there; any other gets"
        " 422. Without it, the manifest and every package are linked from GET /v1/offboarding/{request_id}/manifest",
    )


class PackageLine(BaseModel):
    """One subject's return package, as the manifest lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject_id: str
    file: str  # the package's name, relative to the manifest
    sha256: str
    bytes: int
    interaction_count: int
    status: str  # the subject's status when it was packaged (active, deactivated, restricted, erasing)


class Leftover(BaseModel):
    """An item the tenant holds besides its subjects' partitions, to remove at the end (dal/offboarding.py)."""

    model_config = ConfigDict(frozen=True)

    table: str  # tenants | requests
    key: str  # its sort key in the tenant's partition
    kind: str  # what the receipt counts it as: settings, policy_versions, api_keys, request_records, ...


class ManifestLink(BaseModel):
    subject_id: str
    file: str
    sha256: str
    bytes: int
    interaction_count: int
    download_url: str | None = Field(description="Signed for what remains of the links' lifetime; null once expired")


class ManifestView(BaseModel):
    """GET /v1/offboarding/{request_id}/manifest: the stored manifest's digest, and a fresh link to every package."""

    request_id: str
    manifest_sha256: str = Field(description="SHA-256 of manifest.json as stored (and delivered)")
    manifest_url: str | None
    expires_at: str
    packages: list[ManifestLink]
    next_cursor: str | None
