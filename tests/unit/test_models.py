"""The API bodies: what a tenant may send, how it is normalised, and errors that never echo a value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from chatsphere.models.common import (
    LAMBDA_PAYLOAD_BYTES,
    PAGE_BYTE_BUDGET,
    PERSONAL_ID_RULE,
    RESPONSE_OVERHEAD_BYTES,
    StrictModel,
    iso,
    looks_personal,
    merge_patch,
    not_a_personal_identifier,
    response_bytes,
)
from chatsphere.models.common import (
    merge_patched as merged,
)
from chatsphere.models.items import InteractionItem
from chatsphere.models.policies import PolicyIn
from chatsphere.models.settings import SettingsPatch
from chatsphere.models.subjects import (
    INTERACTION_FIELDS_BYTES,
    MAX_TEXT_RESPONSE_BYTES,
    Interaction,
    InteractionIn,
    InteractionPage,
    LookupIn,
    SubjectIn,
    SubjectPatch,
)


def errors_of(model: type[BaseModel], data: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return raised.value.errors(include_input=False, include_url=False)


def assert_refused_without_echo(model: type[BaseModel], data: dict[str, Any], value: str) -> None:
    errors = errors_of(model, data)
    assert errors
    for error in errors:
        assert error["msg"]
        assert value not in error["msg"], error
        assert value not in repr(error.get("ctx", {})), error


# ---------------------------------------------------------------- subjects
def test_email_domain_is_normalised_and_local_part_kept() -> None:
    assert SubjectIn(email="Ada.Lovelace@EXAMPLE.Org").email == "Ada.Lovelace@example.org"


def test_international_email_domain_is_normalised() -> None:
    assert SubjectIn(email="ada@BÜCHER.example").email == "ada@bücher.example"


@pytest.mark.parametrize(
    "email",
    ["zelda-no-at-sign.example.org", "zelda@", "@example.org", "zelda quintessa@example.org", "zelda@@example.org"],
)
def test_an_invalid_email_is_refused_without_echoing_it(email: str) -> None:
    assert_refused_without_echo(SubjectIn, {"email": email}, email)


def test_a_phone_in_e164_is_kept() -> None:
    assert SubjectIn(phone="+441212345678").phone == "+441212345678"


@pytest.mark.parametrize(
    "phone",
    ["+44 20 7946 0958", "+44-20-7946-0958", "+44.20.7946.0958", "+44 (20) 7946 0958", "+44 (0)20 7946 0958"],
)
def test_a_phone_in_international_format_is_stored_in_e164(phone: str) -> None:
    assert SubjectIn(phone=phone).phone == "+442079460958"
    assert LookupIn(phone=phone).phone == "+442079460958"  # so a lookup finds it however either was written
    assert SubjectIn(phone="+1 (415) 555-0100").phone == "+14155550100"


@pytest.mark.parametrize("phone", ["020 7946 0958", "4155550100", "(415) 555-0100", "0044 20 7946 0958"])
def test_a_phone_without_its_country_code_is_refused_with_a_message_that_says_so(phone: str) -> None:
    for model in (SubjectIn, LookupIn):
        (error,) = errors_of(model, {"phone": phone})
        assert error["type"] == "phone_country_code" and "country code" in error["msg"]
        assert_refused_without_echo(model, {"phone": phone}, phone)


@pytest.mark.parametrize(
    "phone",
    [
        "4155550100",  # no country code
        "+1 201 555 0123 ext. 7",  # letters
        "+1/201/555/0123",  # separators other than space, dash, dot and parentheses
        "+1 201 555 0123" + " " * 20,  # over 32 characters
        "+0123456789",
        "+1234",  # too short
        "+1999555012",  # not a number in any plan
        "+1201555012345678",  # too long
    ],
)
def test_a_phone_not_in_e164_is_refused_without_echoing_it(phone: str) -> None:
    assert_refused_without_echo(SubjectIn, {"phone": phone}, phone)


@pytest.mark.parametrize(
    "subject_id",
    [
        "ada@example.com",
        "a@b.c",
        "ada.l@mail.example.org",
        "4155550100",
        "+14155550100",
        "415-555-0100",
        "415.555.0100",
        "+1 (415) 555-0100",
        "1234567",
        "123456789012345",
    ],
)
def test_a_subject_id_that_looks_like_an_email_or_a_phone_is_personal(subject_id: str) -> None:
    assert looks_personal(subject_id)
    with pytest.raises(PydanticCustomError) as raised:
        not_a_personal_identifier(subject_id)
    assert "must not be personal identifiers" in str(raised.value) and subject_id not in str(raised.value)


@pytest.mark.parametrize(
    "subject_id",
    ["u-1", "slack:@ada", "@ada.", "ada@", "x@y", "123456", "1234567890123456", "u-4155550100", "2024-01-01T10"],
)
def test_other_subject_ids_are_not(subject_id: str) -> None:
    assert not looks_personal(subject_id)
    assert not_a_personal_identifier(subject_id) == subject_id


def test_every_id_an_interaction_stores_in_clear_follows_the_subject_id_rule() -> None:
    """What the body gives and the item stores as it came (not sealed, not an enum) is an id in clear: each such
    field refuses what looks like an email or a phone with the subject id's error, and its description says so."""
    base = {"conversation_id": "c-1", "role": "customer", "text": "hi"}
    in_clear = [
        name
        for name, info in InteractionIn.model_fields.items()
        if name in InteractionItem.model_fields and "Literal" not in str(info.annotation) and name != "occurred_at"
    ]
    assert sorted(in_clear) == ["channel", "conversation_id"]
    for name in in_clear:
        assert PERSONAL_ID_RULE in (InteractionIn.model_fields[name].description or ""), name
        for value in ("someone@example.com", "4155550123", "+1 415 555 0123", "415-555-0123"):
            errors = errors_of(InteractionIn, {**base, name: value})
            assert [(e["loc"], e["type"]) for e in errors] == [((name,), "personal_identifier")], (name, value)
            assert value not in errors[0]["msg"]


class _Doc(StrictModel):
    required: str
    kept: int = 1
    nested: dict[str, int] | None = None


def test_one_merge_patch_serves_every_patch_body_all_the_way_down() -> None:
    """models/common's merge: RFC 7396's own examples' rules, and the derived bodies of both PATCH routes."""
    assert merge_patch({"a": {"b": "c", "d": "e"}}, {"a": {"b": None, "f": "g"}}) == {"a": {"d": "e", "f": "g"}}
    assert merged(_Doc, {"required": "x", "nested": {"a": 1, "b": 2}}, {"nested": {"a": None, "c": 3}}) == _Doc(
        required="x", nested={"b": 2, "c": 3}
    )
    # null removes a member: back to its default, or missing (a required member), as a PUT body without it is
    assert merged(_Doc, {"required": "x", "kept": 5}, {"kept": None}) == _Doc(required="x")
    with pytest.raises(ValidationError) as raised:
        merged(_Doc, {"required": "x"}, {"required": None})
    assert [(e["loc"], e["type"]) for e in raised.value.errors()] == [(("required",), "missing")]
    # A subject patch takes null for a contact entry (it removes that entry), under the entries' own constraints
    patch = SubjectPatch.model_validate({"contact": {"skype": None, "signal": "ada.99"}})
    assert patch.model_dump(exclude_unset=True) == {"contact": {"skype": None, "signal": "ada.99"}}
    assert errors_of(SubjectPatch, {"contact": {"skype": ""}}) and errors_of(SubjectPatch, {"contact": {"a b": "x"}})
    # and settings patches their nested objects member by member
    nested = SettingsPatch.model_validate({"retention": {"interactions": {"days": None}}})
    assert nested.model_dump(exclude_unset=True) == {"retention": {"interactions": {"days": None}}}


def test_a_page_within_its_byte_budget_is_safely_within_lambdas_response_limit_and_any_interaction_fits() -> None:
    # Lambda's payload limit for a synchronous invocation's response: 6 MB
    assert LAMBDA_PAYLOAD_BYTES == 6 * 1024 * 1024
    assert PAGE_BYTE_BUDGET + RESPONSE_OVERHEAD_BYTES <= LAMBDA_PAYLOAD_BYTES
    # What a page and a proxy response carry besides the items, at their longest (a cursor the query takes), is
    # within the overhead allowed (the integration test measures a real answer against it too)
    page = InteractionPage(items=[], next_cursor="c" * 1024)
    envelope = {
        "statusCode": 200,
        "multiValueHeaders": {"Content-Type": ["application/json"], "Cache-Control": ["no-store"]},
        "body": "",
        "isBase64Encoded": False,
    }
    assert response_bytes(page) + len(json.dumps(envelope)) <= RESPONSE_OVERHEAD_BYTES // 8
    # An interaction at its longest but for its text takes at most INTERACTION_FIELDS_BYTES, so that one whose
    # text takes MAX_TEXT_RESPONSE_BYTES (what intake lets in) fits a page on its own
    longest = Interaction(
        interaction_id="f" * 32,
        conversation_id="c" * 128,
        role="customer",
        text="",
        occurred_at=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
        channel="c" * 32,
        policy_version="v" * 32,
    )
    assert response_bytes(longest) - response_bytes("") + 1 <= INTERACTION_FIELDS_BYTES
    assert MAX_TEXT_RESPONSE_BYTES + INTERACTION_FIELDS_BYTES <= PAGE_BYTE_BUDGET
    # and response_bytes counts what the resolver writes, escaped once more by the runtime
    assert response_bytes('a"\\é\x01') == len(json.dumps(json.dumps('a"\\é\x01', separators=(",", ":")))) - 2


def test_a_name_is_1_to_256_characters() -> None:
    assert SubjectIn(name="Z" * 256).name == "Z" * 256
    assert_refused_without_echo(SubjectIn, {"name": "Zelda" * 52}, "Zelda" * 52)
    assert errors_of(SubjectIn, {"name": ""})


def test_contact_takes_up_to_32_entries_of_bounded_size() -> None:
    many = {f"k{n}": "v" for n in range(32)}
    assert SubjectIn(contact=many).contact == many
    assert errors_of(SubjectIn, {"contact": {**many, "k32": "v"}})
    assert SubjectIn(contact={"telegram": "x" * 1024}).contact == {"telegram": "x" * 1024}
    assert_refused_without_echo(SubjectIn, {"contact": {"telegram": "@zelda" * 200}}, "@zelda" * 200)
    assert errors_of(SubjectIn, {"contact": {"telegram": ""}})
    assert errors_of(SubjectIn, {"contact": {"bad key": "x"}})
    assert errors_of(SubjectIn, {"contact": {"k" * 65: "x"}})


def test_unknown_fields_are_refused_not_dropped() -> None:
    errors = errors_of(SubjectIn, {"name": "Ada", "nickname": "Zelda"})
    assert [e["loc"] for e in errors] == [("nickname",)]
    assert errors_of(InteractionIn, {"conversation_id": "c", "role": "bot", "text": "x", "tenant_id": "t1"})


def test_every_profile_field_is_optional() -> None:
    assert SubjectIn().model_dump(exclude_none=True) == {}


# ---------------------------------------------------------------- interactions
def interaction(**overrides: Any) -> dict[str, Any]:
    return {"conversation_id": "conv-1", "role": "customer", "text": "hello", **overrides}


@pytest.mark.parametrize("role", ["customer", "agent", "bot"])
def test_the_three_roles_are_accepted(role: str) -> None:
    assert InteractionIn.model_validate(interaction(role=role)).role == role


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"role": "admin"}, id="unknown-role"),
        pytest.param({"text": ""}, id="empty-text"),
        pytest.param({"conversation_id": ""}, id="empty-conversation"),
        pytest.param({"conversation_id": "c" * 129}, id="conversation-too-long"),
        pytest.param({"conversation_id": "a/b"}, id="conversation-bad-char"),
        pytest.param({"channel": "Web Chat"}, id="channel-bad-chars"),
        pytest.param({"channel": "c" * 33}, id="channel-too-long"),
        pytest.param({"occurred_at": "2025-03-01T12:00:00"}, id="occurred-at-without-offset"),
        pytest.param({"occurred_at": "yesterday"}, id="occurred-at-not-a-time"),
    ],
)
def test_an_invalid_interaction_is_refused(overrides: dict[str, Any]) -> None:
    assert errors_of(InteractionIn, interaction(**overrides))


def test_ids_may_use_the_documented_characters_up_to_128() -> None:
    for conversation in ("a", "A-z_0.9:x@y", "c" * 128):
        assert InteractionIn.model_validate(interaction(conversation_id=conversation)).conversation_id == conversation


def test_occurred_at_keeps_its_offset() -> None:
    body = InteractionIn.model_validate(interaction(occurred_at="2025-03-01T07:00:00-05:00"))
    assert body.occurred_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------- lookups
def test_a_lookup_takes_exactly_one_identifier() -> None:
    assert LookupIn(email="Ada@EXAMPLE.org").email == "Ada@example.org"
    assert LookupIn(phone="+12015550123").phone == "+12015550123"
    for both_or_none in ({}, {"email": "a@example.org", "phone": "+12015550123"}, {"email": None, "phone": None}):
        errors = errors_of(LookupIn, both_or_none)
        assert all(e["msg"] for e in errors)


def test_a_lookup_with_an_invalid_email_does_not_echo_it() -> None:
    assert_refused_without_echo(LookupIn, {"email": "zelda.quintessa-at-example.org"}, "zelda.quintessa")


# ---------------------------------------------------------------- stored times
@pytest.mark.parametrize(
    "instant",
    [
        datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2025, 3, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_stored_times_are_fixed_width_and_read_back_as_the_same_instant(instant: datetime) -> None:
    # Sort keys and cursors rely on every stamp being 27 characters that read back exactly.
    stamp = iso(instant)
    assert len(stamp) == len("2025-03-01T12:00:00.000000Z"), stamp
    assert datetime.fromisoformat(stamp) == instant


def test_stored_time_order_is_string_order() -> None:
    instants = [datetime(year, 6, 1, tzinfo=UTC) for year in (1, 999, 1000, 1970, 2025, 9999)]
    assert sorted(instants, key=iso) == instants


# Every date-time field of every body, at both ends of what UTC can hold (issue 7, item 4).
DATE_TIME_FIELDS = [
    (InteractionIn, {"conversation_id": "c", "role": "customer", "text": "hi"}, "occurred_at"),
    (PolicyIn, {"version": "v1", "url": "https://example.com/p", "sha256": "0" * 64}, "effective_at"),
]


@pytest.mark.parametrize(("model", "base", "field"), DATE_TIME_FIELDS)
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_date_time_outside_utcs_years_is_a_validation_error_not_an_overflow(
    model: type[BaseModel], base: dict[str, Any], field: str, value: str
) -> None:
    (error,) = errors_of(model, {**base, field: value})
    assert error["loc"] == (field,) and "9999" in error["msg"]


@pytest.mark.parametrize(("model", "base", "field"), DATE_TIME_FIELDS)
def test_a_date_time_at_the_edge_of_utcs_years_is_accepted(
    model: type[BaseModel], base: dict[str, Any], field: str
) -> None:
    model.model_validate({**base, field: "0001-01-01T00:00:00Z"})
    model.model_validate({**base, field: "9999-12-31T23:59:59+00:00"})


@pytest.mark.parametrize("subject_id", [".", "..", "...", "." * 128])
def test_ids_made_only_of_dots_are_refused(subject_id: str) -> None:
    (error,) = errors_of(InteractionIn, {"conversation_id": subject_id, "role": "customer", "text": "hi"})
    assert error["loc"] == ("conversation_id",)


def test_ids_with_dots_and_other_characters_are_accepted() -> None:
    for ok in (".a", "a.", "..x..", "u-1.2"):
        InteractionIn.model_validate({"conversation_id": ok, "role": "customer", "text": "hi"})


# format: date-time is RFC 3339's syntax; pydantic alone reads more (issue 7, item 10).
@pytest.mark.parametrize(("model", "base", "field"), DATE_TIME_FIELDS)
@pytest.mark.parametrize(
    "value",
    ["2020-01-01 00:00:00Z", "2020-01-01_00:00:00Z", "2020-01-01T00:00Z", "2020-01-01T00:00:00+0100", "1700000000"],
)
def test_a_date_time_other_than_rfc_3339_is_refused(
    model: type[BaseModel], base: dict[str, Any], field: str, value: str
) -> None:
    (error,) = errors_of(model, {**base, field: value})
    assert error["loc"] == (field,)


@pytest.mark.parametrize(("model", "base", "field"), DATE_TIME_FIELDS)
@pytest.mark.parametrize("value", ["2020-01-01t00:00:00z", "2020-01-01T00:00:00.123456789-08:00"])
def test_rfc_3339_in_lower_case_or_with_long_fractions_is_accepted(
    model: type[BaseModel], base: dict[str, Any], field: str, value: str
) -> None:
    model.model_validate({**base, field: value})


@pytest.mark.parametrize(
    "url", ["https://example.com/p\x85", "https://example.com/p\ufeff", "https://example.com/p\x1c", "https://bü.de/"]
)
def test_a_policy_url_is_printable_ascii(url: str) -> None:
    body = {"version": "v1", "effective_at": "2026-01-01T00:00:00Z", "url": url, "sha256": "0" * 64}
    (error,) = errors_of(PolicyIn, body)
    assert error["loc"] == ("url",)
