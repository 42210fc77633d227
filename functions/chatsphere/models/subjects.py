"""Subjects and interactions: the API bodies (the OpenAPI source) and the domain views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chatsphere.models.common import (
    DATE_TIME_RULES,
    EXTERNAL_ID_SHAPE,
    PAGE_BYTE_BUDGET,
    PERSONAL_ID_RULE,
    ClearId,
    DateTimeText,
    ExternalId,
    StrictModel,
    merge_patch_model,
    worded,
)

MAX_TEXT_BYTES = 1024 * 1024
# The most an interaction's members other than its text add to a response (ids, role, times, channel, policy
# version, at their longest), and so the most its text may take there, JSON-escaped: whatever is stored fits in a
# page on its own. Only a text of mostly control characters (6 or 7 bytes each once escaped) comes near it.
INTERACTION_FIELDS_BYTES = 2 * 1024
MAX_TEXT_RESPONSE_BYTES = PAGE_BYTE_BUDGET - INTERACTION_FIELDS_BYTES


def normalise_email(value: str) -> str:
    """Syntax-checked and normalised (domain IDNA, lower case); the error never echoes the value."""
    from email_validator import EmailNotValidError, validate_email  # on first use: a tenth of a cold start

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("not a valid email address") from None


def email_lookup_form(value: str) -> str:
    """What two addresses must share to be the same mailbox for lookup: the local part lower-cased
    (never case-folded: straße and strasse are different mailboxes) and the domain in its IDNA (ASCII)
    form, so that bücher.de and xn--bcher-kva.de are one domain."""
    from email_validator import EmailNotValidError, validate_email

    try:
        parsed = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("not a valid email address") from None
    return f"{parsed.local_part.lower()}@{parsed.ascii_domain}"


def normalise_phone(value: str) -> str:
    """E.164 (+ country code and number, no separators), checked against the numbering plan."""
    import phonenumbers  # on first use, like email_validator

    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a valid phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def country_code_first(value: object) -> object:
    """Before the pattern: a number without its leading + and country code gets a message that says so (020 7946 0958
    is a number in some country, and no server can tell which)."""
    if isinstance(value, str) and not value.startswith("+"):
        raise PydanticCustomError(
            "phone_country_code", "a phone number needs its country code: begin with + (e.g. +44 20 7946 0958)"
        )
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# Not "[^@\s]": \s is a different set in Python, in pydantic's Rust regex and in ECMA-262 (U+0085, U+FEFF,
# U+001C..U+001F), so the class names what it refuses: controls (C0, DEL, C1) and every dialect's whitespace.
# email-validator refuses all of these anyway; the pattern is the cheap shape check before it.
_NOT_IN_EMAIL = r"@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL_PATTERN = worded(
    rf"^[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}]+$",
    "an email address: one @ between a local part and a domain, with no spaces or control characters",
)
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254, pattern=EMAIL_PATTERN),
    AfterValidator(normalise_email),
    Field(
        json_schema_extra={"format": "email"},
        description="Checked by email-validator (no DNS lookup), stricter than the pattern and format: the domain"
        " needs a dot and a top-level label that is not all digits (not 0@00), special-use domains (localhost, .test,"
        " .local, ...), quoted local parts and [IP] domains are refused; stored normalised (NFC, domain lower-cased)",
    ),
]
# + and the country code, then 7 to 15 digits in all, with spaces, dashes, dots or parentheses between them.
PHONE_PATTERN = worded(
    r"^\+[ ().-]*[1-9](?:[ ().-]*[0-9]){6,14}[ ().-]*$",
    "a phone number in international form: +, then 7 to 15 digits (the first not 0), with only spaces, dashes,"
    " dots or parentheses between them",
)
Phone = Annotated[
    str,
    StringConstraints(pattern=PHONE_PATTERN, max_length=32),
    BeforeValidator(country_code_first),
    AfterValidator(normalise_phone),
    Field(
        description="International format: + and the country code, then the number, with or without spaces, dashes,"
        " dots or parentheses (+44 20 7946 0958, +1 (415) 555-0100); stored and compared in E.164 (+442079460958)."
        " A number without its country code is refused, and so is one the country's numbering plan does not assign"
        " (libphonenumber): +10000000000 has the shape but is refused"
    ),
]
ContactKey = Annotated[
    str,
    StringConstraints(
        pattern=worded(r"^[A-Za-z0-9_.-]{1,64}$", "1 to 64 ASCII letters, digits and the characters _ . -")
    ),
]
ContactValue = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
# additionalProperties: keys outside the pattern are refused, and the OpenAPI document must say so.
Contact = Annotated[
    dict[ContactKey, ContactValue], Field(max_length=32, json_schema_extra={"additionalProperties": False})
]


class SubjectIn(StrictModel):
    """PUT body: the whole profile. Fields left out are cleared."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+441234567890"}]}
    )

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    contact: Contact | None = Field(default=None, description="Other contact details, e.g. {'telegram': '@x'}")


# The purposes of processing in the privacy policy; the subject may object to analytics, personalization and
# improvement. Each purpose's legal basis is the tenant's (settings `purposes`, models/settings.Purposes).
ObjectablePurpose = Literal["analytics", "personalization", "improvement"]
PURPOSES = {
    "inquiries": "Handling the subject's inquiries and requests",
    "improvement": "Improving the system",
    "personalization": "Personalising the service",
    "analytics": "Trend analytics",
    "legal_obligation": "Complying with legal obligations",
}


# "restricted" (GDPR art. 18): an erasure completed with exceptions, and a legal hold keeps what it covers; the
# subject can be read and exported, and takes no change until the hold is lifted (which completes the erasure).
SubjectStatus = Literal["active", "deactivated", "restricted"]
HoldCategory = Literal["profile", "interactions"]
HOLD_CATEGORIES: tuple[HoldCategory, ...] = ("profile", "interactions")


class LegalHoldIn(StrictModel):
    """An exception to erasure (GDPR art. 17(3)): what it covers is kept until the hold is lifted."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "Claim 2026-0042 pending", "categories": ["profile", "interactions"]}]
        }
    )

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why the data must be kept (e.g. a claim's case number); tenant text, stored as written: "
        "keep personal data out of it"
    )
    categories: Annotated[
        list[HoldCategory], Field(min_length=1, max_length=2, json_schema_extra={"uniqueItems": True})
    ] = Field(default_factory=lambda: list(HOLD_CATEGORIES), description="What the hold keeps; both by default")

    @model_validator(mode="after")
    def _unique(self) -> LegalHoldIn:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories has duplicates")
        return self


class LegalHold(BaseModel):
    reason: str
    categories: list[HoldCategory]
    since: datetime
    request_id: str


class Subject(BaseModel):
    subject_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    contact: dict[str, str] | None = None
    status: SubjectStatus = Field(
        description="restricted: an erasure kept what the legal hold covers (GDPR art. 18); readable and exportable,"
        " every write gets 409 subject-restricted until the hold is lifted, which completes the erasure"
    )
    objections: list[ObjectablePurpose] = Field(default_factory=list)
    processing: dict[str, bool] = Field(description="Purpose -> whether the subject's data may be used for it")
    created_at: datetime
    updated_at: datetime
    legal_hold: LegalHold | None = Field(default=None, description="The legal hold in force, if any")
    # The stored profile's version, for the ETag header; not part of the body.
    _version: int = PrivateAttr(default=0)

    @property
    def version(self) -> int:
        return self._version


def processing_for(objections: list[str]) -> dict[str, bool]:
    return {purpose: purpose not in objections for purpose in PURPOSES}


class SubjectPatch(merge_patch_model(SubjectIn)):  # type: ignore[misc]
    """PATCH body, a JSON merge patch (RFC 7396): the fields given change, null clears one, the rest stay; contact is
    patched entry by entry (null removes an entry). The result must be a valid profile as a PUT body is (422
    otherwise, and nothing is written)"""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Ada King", "phone": None}]})


Role = Literal["customer", "agent", "bot"]
# A channel names an analytics cell and is stored in clear: the id rule (a digit string may be a phone number).
Channel = ClearId[
    Annotated[
        str,
        StringConstraints(
            pattern=worded(r"^[a-z0-9_-]{1,32}$", "1 to 32 lowercase ASCII letters, digits and the characters _ -")
        ),
    ]
]


class InteractionIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"conversation_id": "conv-001", "role": "customer", "text": "Where is my order?"}]
        }
    )

    conversation_id: ExternalId = Field(
        description=f"The tenant's own id of the conversation: {EXTERNAL_ID_SHAPE}. {PERSONAL_ID_RULE}"
    )
    role: Role
    text: Annotated[
        str,
        Field(
            min_length=1,
            description=f"Up to 1 MiB of UTF-8, and at most {MAX_TEXT_RESPONSE_BYTES} bytes once JSON-escaped in a"
            " response (only a text of mostly control characters, 6 or 7 bytes each escaped, comes near it); more gets"
            " 413",
        ),
    ]
    occurred_at: DateTimeText | None = Field(
        default=None, description=f"{DATE_TIME_RULES}. Defaults to now; a time after now (the server's clock) gets 422"
    )
    channel: Channel | None = Field(
        default=None,
        description=f"Channel it came through (e.g. web, email): 1 to 32 of [a-z0-9_-]. {PERSONAL_ID_RULE}",
    )


class InteractionCreated(BaseModel):
    interaction_id: str
    occurred_at: datetime


class Interaction(BaseModel):
    interaction_id: str
    conversation_id: str
    role: Role
    text: str
    occurred_at: datetime
    channel: str | None = None
    policy_version: str | None = Field(default=None, description="The privacy policy version in force at occurred_at")


class InteractionPage(BaseModel):
    items: list[Interaction] = Field(
        description=f"Oldest first: up to `limit`, and fewer if more would take over {PAGE_BYTE_BUDGET} bytes (texts"
        " may be long); never none while more follow"
    )
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class LookupIn(StrictModel):
    """Exactly one of email or phone (null counts as not given). A POST, so identifiers stay out of URLs and logs."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ada@example.com"}]})

    email: Email | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> LookupIn:
        if (self.email is None) == (self.phone is None):
            raise ValueError("give exactly one of email or phone")
        return self


class LookupResult(BaseModel):
    subject_ids: list[str]
