"""Export (rights of access and portability): the API body, and the job message that the Rights
function sends, the Export function consumes and the monitor re-sends."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chatsphere.models.common import StrictModel, worded
from chatsphere.models.requests import ExportFormat, RequestItem

S3Uri = Annotated[
    str,
    StringConstraints(
        pattern=worded(
            r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]{0,512})?$",
            "an S3 URI: s3://, a bucket name of 3 to 63 lowercase letters, digits, dots and dashes, and optionally a"
            " / and a key prefix of up to 512 letters, digits and the characters ! _ . * ' ( ) / -",
        )
    ),
]


def bucket_of(uri: str) -> str:
    """The bucket of an s3:// URI."""
    return uri.removeprefix("s3://").partition("/")[0]


class ExportIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"format": "json"}]})

    format: ExportFormat = "json"
    deliver_to: S3Uri | None = Field(
        default=None,
        description="One of the tenant's portability_destinations (GET /v1/settings), as written there; any other gets"
        " 422",
    )


class ExportJob(BaseModel):
    """An ExportQueue message: ids only, never a personal value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    request_id: str

    @classmethod
    def for_request(cls, item: RequestItem) -> ExportJob:
        """The message that runs (or, from the monitor, re-runs) the export `item` records."""
        return cls(tenant_id=item.tenant_id, request_id=item.request_id)
