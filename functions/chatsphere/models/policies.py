"""Privacy policy versions a tenant publishes; every interaction is stamped with the one in force."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chatsphere.models.common import DateTimeText, StrictModel, worded

PolicyVersionId = Annotated[
    str,
    StringConstraints(
        pattern=worded(r"^[A-Za-z0-9._-]{1,32}$", "1 to 32 ASCII letters, digits and the characters . _ -")
    ),
]
# Printable ASCII (! to ~) rather than "not whitespace": \s means different characters in Python, in pydantic's
# Rust regex and in ECMA-262 (the contract's dialect), and a URI has no other characters anyway.
HTTPS_URL_PATTERN = worded(
    r"^https://[!-~]{1,2000}$",
    "an https:// URL of printable ASCII without spaces, up to 2000 characters after https://",
)


class PolicyIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "2026-11",
                    "effective_at": "2026-11-01T00:00:00Z",
                    "url": "https://acme.example/privacy/2026-11",
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                }
            ]
        }
    )

    version: PolicyVersionId = Field(
        description="Published once: the same version again with the same content answers 200, with other content 409"
    )
    effective_at: DateTimeText
    url: Annotated[str, StringConstraints(pattern=HTTPS_URL_PATTERN)] = Field(
        description="An https URL as RFC 3986 writes it: printable ASCII without spaces, up to 2000 characters"
        " after https:// (percent-encode other characters; an internationalised host in its xn-- form)"
    )
    sha256: Annotated[str, StringConstraints(pattern=worded(r"^[0-9a-f]{64}$", "64 lowercase hex digits"))] = Field(
        description="Of the policy text"
    )


class Policy(BaseModel):
    version: str
    effective_at: datetime
    url: str
    sha256: str
    published_at: datetime


class PolicyList(BaseModel):
    items: list[Policy]
