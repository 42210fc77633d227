"""The intake API through its Lambda handler, on moto with template.yaml's own tables, keys and bucket."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import (
    Reply,
    call,
    functions,
    interaction_items,
    new_tenant,
    object_versions,
    snapshot,
)

KIB = 1024
MIB = 1024 * 1024


class Person(TypedDict):
    name: str
    email: str
    phone: str
    contact: dict[str, str]


PERSON: Person = {
    "name": "Zelda Quintessa Marchbanks",
    "email": "Zelda.Quintessa@EXAMPLE.org",
    "phone": "+12015550123",
    "contact": {"telegram": "@zelda_qm_7731", "skype": "zelda.quintessa.7731"},
}


# ------------------------------------------------------------------ fixtures and checks
@pytest.fixture
def tenant(aws: Any) -> str:
    return new_tenant("Acme")[0]


@pytest.fixture
def other_tenant(aws: Any) -> str:
    return new_tenant("Globex")[0]


@pytest.fixture
def subject(tenant: str) -> str:
    r = call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON)
    assert r.status == 201, r.body
    return "u-1"


REGEX_SIGNS = set("^$[]{}\\")


def assert_problem(r: Reply, status: int) -> None:
    """An RFC 9457 problem: the status, its media type, the four members, and field errors that say what is wrong."""
    assert r.status == status, r.body
    assert r.headers.get("content-type", "").startswith("application/problem+json"), r.headers
    assert isinstance(r.body, dict), r.text
    for member in ("type", "title", "detail"):
        assert isinstance(r.body.get(member), str), (member, r.body)
        assert r.body[member].strip(), (member, r.body)
    assert r.body["status"] == status
    if r.body["type"].endswith("/validation"):
        assert r.body.get("errors"), r.body
    for error in r.body.get("errors") or []:
        assert isinstance(error["loc"], list), error
        assert error["loc"], error
        for member in ("msg", "type"):
            assert isinstance(error[member], str), error
            assert error[member].strip(), error
        # in words: no regular expression quoted at the reader
        assert not REGEX_SIGNS & set(error["msg"]), error


def assert_not_echoed(r: Reply, *values: str) -> None:
    for value in values:
        assert value not in r.text, f"the response echoes {value!r}: {r.text[:500]}"
        assert value.lower() not in r.text.lower(), f"the response echoes {value!r}: {r.text[:500]}"


def post(tenant: str, subject: str, text: str = "hello", headers: dict[str, str] | None = None, **fields: Any) -> Reply:
    body = {"conversation_id": "conv-1", "role": "customer", "text": text, **fields}
    return call("POST", f"/v1/subjects/{subject}/interactions", tenant=tenant, body=body, headers=headers)


def listing(tenant: str, subject: str, query: str = "limit=100") -> Reply:
    return call("GET", f"/v1/subjects/{subject}/interactions", tenant=tenant, query=query)


def walk(tenant: str, subject: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        r = listing(tenant, subject, f"limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r.body
        assert len(r.body["items"]) <= limit
        items += r.body["items"]
        cursor = r.body["next_cursor"]
        if cursor is None:
            return items
        assert r.body["items"], "a page that promises more must not be empty"
    raise AssertionError("pagination does not end")


def test_an_interaction_page_stays_within_lambdas_response_limit_and_its_cursors_give_every_text_once(
    tenant: str, subject: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven texts of 1 MB were a 7 MB answer, which Lambda refuses (API Gateway: 502)."""
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import intake
    from chatsphere.models.common import LAMBDA_PAYLOAD_BYTES, PAGE_BYTE_BUDGET, RESPONSE_OVERHEAD_BYTES, response_bytes
    from chatsphere.models.subjects import Interaction, InteractionIn

    # Given seven texts of 1 MB each (seeded in-process: it is the listing under test), one a minute
    ports, now = wiring().intake, datetime.now(UTC)
    texts, ids = [chr(ord("a") + n) * 1_000_000 for n in range(7)], []
    for n, text in enumerate(texts):
        body = InteractionIn(
            conversation_id="c-1", role="customer", text=text, occurred_at=now - timedelta(minutes=9 - n)
        )
        created = intake.add_interaction(ports, tenant, subject, body, now)
        ids.append(created.interaction_id)
    # and every answer of the Intake function as Lambda gets it back
    answers: list[Any] = []
    invoke = functions().invoke

    def recorded(logical_id: str, event: dict[str, Any]) -> Any:
        answers.append(invoke(logical_id, event))
        return answers[-1]

    monkeypatch.setattr(functions(), "invoke", recorded)
    # When the tenant follows the cursors, 100 a page
    pages, cursor = [], None
    while True:
        r = listing(tenant, subject, "limit=100" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r.text[:300]
        pages.append(r.body["items"])
        # Then each answer is within Lambda's limit, its items within the budget, the rest within the overhead
        answer = len(json.dumps(answers[-1]).encode())
        items = sum(response_bytes(Interaction.model_validate(i)) + 1 for i in r.body["items"])
        assert answer <= LAMBDA_PAYLOAD_BYTES and items <= PAGE_BYTE_BUDGET
        assert answer - items <= RESPONSE_OVERHEAD_BYTES
        cursor = r.body["next_cursor"]
        if cursor is None:
            break
        assert r.body["items"], "a page that promises more must not be empty"
    # and the first page stopped short of the count, and every text came exactly once, in order
    assert len(pages) > 1 and len(pages[0]) < 7
    seen = [i for page in pages for i in page]
    assert [i["interaction_id"] for i in seen] == ids and [i["text"] for i in seen] == texts


def test_a_page_of_long_inline_texts_goes_past_dynamodbs_1_mb_query_page(tenant: str, subject: str) -> None:
    """A Query reads at most 1 MB: 40 texts of 32 KiB (the most stored inline) take more. The listing must carry on
    from where DynamoDB stopped, not end there with no cursor."""
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import intake
    from chatsphere.models.subjects import InteractionIn

    ports, now = wiring().intake, datetime.now(UTC)
    ids = []
    for n in range(40):
        at = now - timedelta(minutes=40 - n)
        body = InteractionIn(conversation_id="c-1", role="customer", text=f"{n:02}" * (16 * KIB), occurred_at=at)
        created = intake.add_interaction(ports, tenant, subject, body, now)
        ids.append(created.interaction_id)
    assert all("text_sealed" in i for i in interaction_items())  # all inline: the 1 MB is the table's
    first = listing(tenant, subject, "limit=100")
    assert first.status == 200 and [i["interaction_id"] for i in first.body["items"]] == ids, len(first.body["items"])
    assert first.body["next_cursor"] is None
    assert [i["interaction_id"] for i in walk(tenant, subject, 30)] == ids


def lookup(tenant: str, **identifier: str) -> Reply:
    return call("POST", "/v1/subject-lookups", tenant=tenant, body=identifier)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ------------------------------------------------------------------ PUT and GET a subject
def test_a_new_subject_is_created_normalised_and_read_back(tenant: str) -> None:
    # Given a tenant
    # When it puts a subject with every field
    before = datetime.now(UTC)
    r = call("PUT", "/v1/subjects/u-1", tenant=tenant, body=PERSON)
    # Then it is created, active, with the e-mail domain lower-cased and the phone in E.164
    assert r.status == 201, r.body
    assert r.headers["content-type"].startswith("application/json")
    assert r.body["subject_id"] == "u-1"
    assert r.body["name"] == PERSON["name"]
    assert r.body["email"] == "Zelda.Quintessa@example.org"
    assert r.body["phone"] == "+12015550123"
    assert r.body["contact"] == PERSON["contact"]
    assert r.body["status"] == "active"
    assert before <= parse_time(r.body["created_at"]) == parse_time(r.body["updated_at"]) <= datetime.now(UTC)
    # and a GET returns the same subject
    got = call("GET", "/v1/subjects/u-1", tenant=tenant)
    assert got.status == 200
    assert got.body == r.body


def test_putting_again_replaces_the_profile_and_moves_the_lookup(tenant: str, subject: str) -> None:
    created = call("GET", f"/v1/subjects/{subject}", tenant=tenant).body
    # When the tenant replaces the profile with a new e-mail and nothing else
    r = call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body={"email": "zq@new.example"})
    # Then it is a 200 replacement: fields left out are cleared, creation time kept
    assert r.status == 200, r.body
    assert (r.body["name"], r.body["phone"], r.body["contact"]) == (None, None, None)
    assert r.body["email"] == "zq@new.example"
    assert r.body["created_at"] == created["created_at"]
    assert parse_time(r.body["updated_at"]) >= parse_time(created["updated_at"])
    assert call("GET", f"/v1/subjects/{subject}", tenant=tenant).body == r.body
    # and the lookup index follows: the new e-mail finds it, the old e-mail and the dropped phone do not
    assert lookup(tenant, email="ZQ@new.example").body == {"subject_ids": [subject]}
    assert lookup(tenant, email=PERSON["email"]).body == {"subject_ids": []}
    assert lookup(tenant, phone=PERSON["phone"]).body == {"subject_ids": []}


def test_an_empty_profile_is_a_valid_subject(tenant: str) -> None:
    r = call("PUT", "/v1/subjects/u-2", tenant=tenant, body={})
    assert r.status == 201, r.body
    assert (r.body["name"], r.body["email"], r.body["phone"], r.body["contact"]) == (None, None, None, None)


def test_subject_ids_of_the_documented_alphabet_up_to_128_characters_work(
    tenant: str, subtests: pytest.Subtests
) -> None:
    for subject_id in ("a", "A-z_0.9:x@y", "s" * 128, "slack:@ada", "123456", "1234567890123456", "v1.2.3"):
        with subtests.test(subject_id=subject_id):
            assert call("PUT", f"/v1/subjects/{subject_id}", tenant=tenant, body={"name": "Ada"}).status == 201
            assert call("GET", f"/v1/subjects/{subject_id}", tenant=tenant).body["subject_id"] == subject_id


def test_an_unknown_subject_is_not_found(tenant: str) -> None:
    assert_problem(call("GET", "/v1/subjects/nobody", tenant=tenant), 404)


def test_another_tenants_subject_is_not_found(tenant: str, subject: str, other_tenant: str) -> None:
    # Given tenant A's subject u-1
    # When tenant B asks for u-1 in every way
    # Then it is not found, and B's own u-1 is a separate subject
    assert_problem(call("GET", f"/v1/subjects/{subject}", tenant=other_tenant), 404)
    assert_problem(listing(other_tenant, subject), 404)
    assert_problem(post(other_tenant, subject), 404)
    r = call("PUT", f"/v1/subjects/{subject}", tenant=other_tenant, body={"name": "Someone else"})
    assert r.status == 201
    assert call("GET", f"/v1/subjects/{subject}", tenant=tenant).body["name"] == PERSON["name"]


# ------------------------------------------------------------------ POST interactions
def test_an_interaction_is_stored_and_listed_with_every_field(tenant: str, subject: str) -> None:
    at = "2024-06-01T08:30:00.250000Z"
    r = post(tenant, subject, "Where is my order #123?", occurred_at=at, channel="web_chat")
    assert r.status == 201, r.body
    assert len(r.body["interaction_id"]) >= 16
    assert parse_time(r.body["occurred_at"]) == parse_time(at)
    (item,) = listing(tenant, subject).body["items"]
    assert item["interaction_id"] == r.body["interaction_id"]
    assert (item["conversation_id"], item["role"], item["text"], item["channel"]) == (
        "conv-1",
        "customer",
        "Where is my order #123?",
        "web_chat",
    )
    assert parse_time(item["occurred_at"]) == parse_time(at)


def test_occurred_at_defaults_to_now(tenant: str, subject: str) -> None:
    before = datetime.now(UTC)
    r = post(tenant, subject)
    assert r.status == 201
    assert before <= parse_time(r.body["occurred_at"]) <= datetime.now(UTC)


def test_an_interaction_in_the_future_is_refused(tenant: str, subject: str) -> None:
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    before = snapshot()
    assert_problem(post(tenant, subject, occurred_at=future), 422)
    assert snapshot() == before


def test_an_interaction_for_an_unknown_subject_is_not_found_and_stores_nothing(tenant: str) -> None:
    before = snapshot()
    assert_problem(post(tenant, "nobody"), 404)
    assert snapshot() == before


def test_a_deactivated_subject_takes_no_interactions(tenant: str, subject: str) -> None:
    assert call("POST", f"/v1/subjects/{subject}/deactivation", tenant=tenant).status == 200
    before = len(interaction_items())
    assert_problem(post(tenant, subject), 409)
    assert len(interaction_items()) == before


def test_text_of_exactly_1_mib_is_stored_and_one_byte_more_is_413(tenant: str, subject: str, aws: Any) -> None:
    # multi-byte characters: the limit is in UTF-8 bytes, not characters
    exactly = "€" * (MIB // 3) + "a"
    assert len(exactly.encode()) == MIB
    assert post(tenant, subject, exactly).status == 201
    assert listing(tenant, subject).body["items"][0]["text"] == exactly
    before = snapshot()
    r = post(tenant, subject, exactly + "a")
    assert_problem(r, 413)
    assert snapshot() == before


def test_text_over_32_kib_goes_to_the_bucket_under_the_subjects_prefix(tenant: str, subject: str, aws: Any) -> None:
    bucket = aws.refs["DataBucket"]
    small, large = "s" * (32 * KIB), "L" * (32 * KIB + 1)
    # When one interaction of exactly 32 KiB and one a byte longer are stored
    assert post(tenant, subject, small).status == 201
    large_id = post(tenant, subject, large).body["interaction_id"]
    # Then only the longer one is in the bucket, under tenants/<tenant>/subjects/<subject>/
    keys = [key for key, _, _ in object_versions(bucket)]
    assert len(keys) == 1
    assert keys[0].startswith(f"tenants/{tenant}/subjects/{subject}/")
    assert large_id in keys[0]
    # and the listing shows both texts whole, as if nothing differed
    assert sorted(i["text"] for i in listing(tenant, subject).body["items"]) == sorted([small, large])


# ------------------------------------------------------------------ Idempotency-Key
def test_a_retry_with_the_same_idempotency_key_stores_one_interaction(tenant: str, subject: str) -> None:
    key = {"Idempotency-Key": "retry-1"}
    first = post(tenant, subject, "once only", headers=key)
    second = post(tenant, subject, "once only", headers=key)
    assert first.status == second.status == 201
    assert second.body == first.body
    assert [i["text"] for i in listing(tenant, subject).body["items"]] == ["once only"]
    assert len(interaction_items()) == 1


def test_a_retry_with_an_explicit_time_gets_the_first_answer(tenant: str, subject: str) -> None:
    key = {"Idempotency-Key": "retry-2"}
    at = "2024-01-02T03:04:05+02:00"
    first = post(tenant, subject, "imported", headers=key, occurred_at=at)
    second = post(tenant, subject, "imported", headers=key, occurred_at=at)
    assert first.status == second.status == 201, (first.body, second.body)
    assert second.body == first.body
    assert len(interaction_items()) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(tenant: str, subject: str) -> None:
    key = {"Idempotency-Key": "retry-3"}
    assert post(tenant, subject, "first body", headers=key).status == 201
    before = snapshot()
    r = post(tenant, subject, "second body", headers=key)
    assert_problem(r, 422)
    assert_not_echoed(r, "second body", "first body")
    assert snapshot() == before
    assert [i["text"] for i in listing(tenant, subject).body["items"]] == ["first body"]


def test_idempotency_keys_are_per_tenant_and_per_subject(tenant: str, subject: str, other_tenant: str) -> None:
    # Given another tenant with a subject of the same id, and a second subject of this tenant
    assert call("PUT", f"/v1/subjects/{subject}", tenant=other_tenant, body={"name": "B"}).status == 201
    assert call("PUT", "/v1/subjects/u-2", tenant=tenant, body={"name": "C"}).status == 201
    key = {"Idempotency-Key": "shared-key"}
    # When all three use the same key and body
    ids = {
        post(tenant, subject, "same", headers=key).body["interaction_id"],
        post(other_tenant, subject, "same", headers=key).body["interaction_id"],
        post(tenant, "u-2", "same", headers=key).body["interaction_id"],
    }
    # Then each stored its own interaction
    assert len(ids) == 3
    assert len(interaction_items()) == 3
    assert len(listing(other_tenant, subject).body["items"]) == 1


def test_a_failed_attempt_does_not_use_up_its_idempotency_key(tenant: str) -> None:
    key = {"Idempotency-Key": "early-bird"}
    assert_problem(post(tenant, "late", "hello", headers=key), 404)
    assert call("PUT", "/v1/subjects/late", tenant=tenant, body={}).status == 201
    r = post(tenant, "late", "hello", headers=key)
    assert r.status == 201, r.body
    assert len(listing(tenant, "late").body["items"]) == 1


# ------------------------------------------------------------------ GET interactions
def test_interactions_list_oldest_first_including_later_historical_imports(tenant: str, subject: str) -> None:
    now = datetime.now(UTC)
    for minutes, text in [(30, "third"), (20, "fourth")]:
        assert post(tenant, subject, text, occurred_at=(now - timedelta(minutes=minutes)).isoformat()).status == 201
    for days, text in [(400, "first"), (2, "second")]:
        assert post(tenant, subject, text, occurred_at=(now - timedelta(days=days)).isoformat()).status == 201
    assert post(tenant, subject, "x" * (40 * KIB), occurred_at=(now - timedelta(days=3)).isoformat()).status == 201
    texts = [i["text"] for i in listing(tenant, subject).body["items"]]
    assert texts == ["first", "x" * (40 * KIB), "second", "third", "fourth"]


def test_an_archive_from_before_the_year_1000_lists_first_and_keeps_the_list_readable(
    tenant: str, subject: str
) -> None:
    # Given a recent interaction and an imported one from the year 999
    assert post(tenant, subject, "recent").status == 201
    r = post(tenant, subject, "ancient", occurred_at="0999-05-01T00:00:00Z")
    assert r.status == 201, r.body
    # Then both list, the old one first, page by page too
    assert [i["text"] for i in listing(tenant, subject).body["items"]] == ["ancient", "recent"]
    assert [i["text"] for i in walk(tenant, subject, 1)] == ["ancient", "recent"]


def test_a_time_before_the_year_1_in_utc_is_refused_not_a_server_error(tenant: str, subject: str) -> None:
    before = snapshot()
    assert_problem(post(tenant, subject, occurred_at="0001-01-01T00:00:00+01:00"), 422)
    assert snapshot() == before
    assert listing(tenant, subject).status == 200


def test_pages_walk_every_interaction_exactly_once_and_the_last_page_says_so(
    tenant: str, subject: str, subtests: pytest.Subtests
) -> None:
    # Given six interactions, two at the same instant, one of them in the bucket
    now = datetime.now(UTC)
    stored = []
    for n in range(6):
        at = (now - timedelta(minutes=10 - min(n, 4))).isoformat()
        text = f"m{n}" if n != 2 else "m2" + "y" * (33 * KIB)
        stored.append(post(tenant, subject, text, occurred_at=at).body["interaction_id"])
    for limit in (1, 2, 3, 5, 6, 7, 100):
        with subtests.test(limit=limit):
            # When the tenant follows next_cursor to the end
            items = walk(tenant, subject, limit)
            # Then it saw each interaction once, in time order (the two at one instant in either order)
            seen = [i["interaction_id"] for i in items]
            assert len(seen) == len(set(seen)) == 6
            assert seen[:4] == stored[:4]
            assert set(seen[4:]) == set(stored[4:])
            assert items[2]["text"] == "m2" + "y" * (33 * KIB)


def test_the_last_page_has_a_null_cursor_even_when_it_is_full(tenant: str, subject: str) -> None:
    for n in range(4):
        post(tenant, subject, f"m{n}")
    first = listing(tenant, subject, "limit=2")
    assert first.body["next_cursor"] is not None
    last = listing(tenant, subject, f"limit=2&cursor={first.body['next_cursor']}")
    assert len(last.body["items"]) == 2
    assert last.body["next_cursor"] is None


def test_an_empty_list_has_no_items_and_no_cursor(tenant: str, subject: str) -> None:
    assert listing(tenant, subject).body == {"items": [], "next_cursor": None}


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


NOT_OUR_CURSORS = {
    "garbage": "garbage",
    "zeros": "AAAA",
    "another-item": _b64("PROFILE"),
    "not-a-position": _b64("I#2025-01-01#x"),
    "punctuation": "%21%21not-a-cursor%21%21",
    "standard-base64-padding": "bm90IGEgY3Vyc29y%3D",
}


def test_a_cursor_this_api_did_not_return_is_a_400(tenant: str, subject: str, subtests: pytest.Subtests) -> None:
    post(tenant, subject)
    for case, cursor in NOT_OUR_CURSORS.items():
        with subtests.test(case):
            assert_problem(listing(tenant, subject, f"cursor={cursor}"), 400)


def _tamper(cursor: str, at: int) -> str:
    return cursor[:at] + ("A" if cursor[at] != "A" else "B") + cursor[at + 1 :]


def test_a_cursor_cut_short_or_garbled_is_a_400(tenant: str, subject: str) -> None:
    for n in range(3):
        post(tenant, subject, f"m{n}")
    cursor = listing(tenant, subject, "limit=1").body["next_cursor"]
    for broken in (cursor[:-4], cursor[4:], cursor + "AAAA", _tamper(cursor, 2)):
        assert_problem(listing(tenant, subject, f"limit=1&cursor={broken}"), 400)


def test_a_cursor_whose_position_was_edited_is_a_400(tenant: str, subject: str) -> None:
    # Given a real cursor, edited so that it still names a well-formed position (another interaction id)
    for n in range(3):
        post(tenant, subject, f"m{n}")
    cursor = listing(tenant, subject, "limit=1").body["next_cursor"]
    body, _, tag = cursor.partition(".")
    position = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    edited = position[:-1] + ("0" if position[-1] != "0" else "1")
    assert re.fullmatch(r"I#\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{32}", edited), edited
    # When the tenant asks for the page after it
    r = listing(tenant, subject, f"limit=1&cursor={_b64(edited)}.{tag}")
    # Then the API refuses it, as it refuses any cursor it did not issue
    assert r.status == 400, (
        "an edited cursor was served as a position: cursors carry no signature, so any well-formed "
        f"position is accepted ({r.status}, {r.body})"
    )
    assert_problem(r, 400)


def test_a_limit_outside_1_to_100_is_a_422(tenant: str, subject: str, subtests: pytest.Subtests) -> None:
    post(tenant, subject)
    before = snapshot()
    for limit in ("0", "101", "-1", "abc", "1.5", ""):
        with subtests.test(limit=limit):
            assert_problem(listing(tenant, subject, f"limit={limit}"), 422)
            assert snapshot() == before


def test_listing_an_unknown_subject_is_not_found(tenant: str) -> None:
    assert_problem(listing(tenant, "nobody"), 404)


# ------------------------------------------------------------------ lookups
def test_lookup_by_email_in_any_case_and_by_phone(tenant: str, subject: str) -> None:
    assert lookup(tenant, email="zelda.quintessa@example.ORG").body == {"subject_ids": [subject]}
    assert lookup(tenant, email="ZELDA.QUINTESSA@EXAMPLE.ORG").body == {"subject_ids": [subject]}
    assert lookup(tenant, phone="+12015550123").body == {"subject_ids": [subject]}
    assert lookup(tenant, email="nobody@example.org").body == {"subject_ids": []}


def test_a_formatted_phone_is_stored_in_e164_and_found_however_it_is_written(tenant: str) -> None:
    r = call("PUT", "/v1/subjects/u-uk", tenant=tenant, body={"phone": "+44 20 7946 0958"})
    assert r.status == 201 and r.body["phone"] == "+442079460958", r.body
    assert call("GET", "/v1/subjects/u-uk", tenant=tenant).body["phone"] == "+442079460958"
    for written in ("+442079460958", "+44 (0)20 7946-0958", "+44.20.7946.0958"):
        assert lookup(tenant, phone=written).body == {"subject_ids": ["u-uk"]}, written
    r = call("PATCH", "/v1/subjects/u-uk", tenant=tenant, body={"phone": "+1 (415) 555-0100"})
    assert r.status == 200 and r.body["phone"] == "+14155550100", r.body
    assert lookup(tenant, phone="+1 415 555 0100").body == {"subject_ids": ["u-uk"]}
    assert lookup(tenant, phone="+44 20 7946 0958").body == {"subject_ids": []}


def test_a_phone_without_its_country_code_is_refused_saying_so(tenant: str) -> None:
    before = snapshot()
    for method, path, body in (
        ("PUT", "/v1/subjects/u-uk", {"phone": "020 3318 7777"}),
        ("POST", "/v1/subject-lookups", {"phone": "020 3318 7777"}),
    ):
        r = call(method, path, tenant=tenant, body=body)
        assert_problem(r, 422)
        assert "country code" in r.body["errors"][0]["msg"], r.body
        assert_not_echoed(r, "3318", "7777")
    assert snapshot() == before


PERSONAL_IDS = ("zelda.quintessa@example.org", "zelda%40example.org", "2015550123", "201-555-0123", "201.555.0123")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "", PERSON),
        ("GET", "", None),
        ("PATCH", "", {"name": "Zelda"}),
        ("DELETE", "", None),
        ("POST", "/interactions", {"conversation_id": "c-1", "role": "customer", "text": "hi"}),
        ("GET", "/interactions", None),
        ("PUT", "/objections/analytics", None),
        ("POST", "/deactivation", None),
        ("PUT", "/legal-hold", {"reason": "claim 7"}),
        ("POST", "/exports", {"format": "json"}),
    ],
)
def test_a_subject_id_that_is_an_email_or_a_phone_is_refused_on_every_route_before_anything_is_written(
    tenant: str, subject: str, method: str, suffix: str, body: Any
) -> None:
    before = snapshot()
    for subject_id in PERSONAL_IDS:
        r = call(method, f"/v1/subjects/{subject_id}{suffix}", tenant=tenant, body=body)
        assert_problem(r, 422)
        (error,) = r.body["errors"]
        assert error["loc"] == ["path", "subject_id"], r.body
        if subject_id.isdigit():  # a numeric user id, which a tenant setting lets through: the 422 names it
            assert error["type"] == "numeric_subject_id" and "numeric_subject_ids: true" in error["msg"], r.body
        else:
            assert error["type"] == "personal_identifier", r.body
            assert "must not be personal identifiers" in error["msg"]
        assert "URLs and logs" in error["msg"]
        assert_not_echoed(r, subject_id.replace("%40", "@"), "quintessa", "5550123", "555-0123", "555.0123")
    assert snapshot() == before


CLEAR_ID_VALUES = ("someone@example.com", "4155550123", "+1 415 555 0123")


@pytest.mark.parametrize("field", ["conversation_id", "channel"])
def test_a_conversation_id_or_channel_that_is_an_email_or_a_phone_is_refused_and_nothing_is_written(
    tenant: str, subject: str, field: str
) -> None:
    """Both are stored in clear on the interaction item (a channel also names an analytics cell): the subject id's
    rule, with the same error, and nothing stored."""
    before = snapshot()
    for value in CLEAR_ID_VALUES:
        named: dict[str, Any] = {field: value}
        r = post(tenant, subject, **named)
        assert_problem(r, 422)
        (error,) = r.body["errors"]
        assert error["loc"] == ["body", field] and error["type"] == "personal_identifier", r.body
        assert_not_echoed(r, value, "5550123", "555 0123", "someone")
    assert snapshot() == before
    # The values these fields have always taken are still taken.
    taken: tuple[dict[str, Any], ...] = (
        {"conversation_id": "conv-1", "channel": "web"},
        {"conversation_id": "slack:@ada"},
        {"conversation_id": "T-2024-0001", "channel": "helpline-vip"},
        {"channel": "123456"},
    )
    for fields in taken:
        assert post(tenant, subject, **fields).status == 201, fields


def test_lookup_returns_every_subject_with_the_identifier(tenant: str, subject: str) -> None:
    assert call("PUT", "/v1/subjects/u-0", tenant=tenant, body={"email": "zelda.quintessa@example.org"}).status == 201
    assert lookup(tenant, email=PERSON["email"]).body == {"subject_ids": ["u-0", subject]}


def test_lookup_never_returns_another_tenants_subjects(tenant: str, subject: str, other_tenant: str) -> None:
    assert lookup(other_tenant, email=PERSON["email"]).body == {"subject_ids": []}
    assert lookup(other_tenant, phone=PERSON["phone"]).body == {"subject_ids": []}
    call("PUT", "/v1/subjects/theirs", tenant=other_tenant, body={"email": PERSON["email"]})
    assert lookup(tenant, email=PERSON["email"]).body == {"subject_ids": [subject]}
    assert lookup(other_tenant, email=PERSON["email"]).body == {"subject_ids": ["theirs"]}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="neither"),
        pytest.param({"email": PERSON["email"], "phone": PERSON["phone"]}, id="both"),
        pytest.param({"email": None}, id="null"),
        pytest.param({"email": "zelda.quintessa-at-example.org"}, id="invalid-email"),
        pytest.param({"phone": "201 555 0123"}, id="phone-without-country-code"),
        pytest.param({"phone": "+1 201 555 01"}, id="phone-too-short"),
        pytest.param({"name": PERSON["name"]}, id="unknown-field"),
    ],
)
def test_a_lookup_needs_exactly_one_valid_identifier(tenant: str, subject: str, body: dict[str, Any]) -> None:
    r = call("POST", "/v1/subject-lookups", tenant=tenant, body=body)
    assert_problem(r, 422)
    assert_not_echoed(r, "zelda", "201 555", "Marchbanks")


# ------------------------------------------------------------------ bad input writes nothing
def _put(body: Any = None, **kwargs: Any) -> dict[str, Any]:
    return {"method": "PUT", "path": "/v1/subjects/u-1", "body": body, **kwargs}


def _post(body: Any = None, **kwargs: Any) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/subjects/u-1/interactions", "body": body, **kwargs}


def _base64(raw: str) -> Any:
    def mutate(event: dict[str, Any]) -> None:
        event["body"], event["isBase64Encoded"] = raw, True

    return mutate


SECRET_TEXT = "the parcel for Zelda Quintessa goes to 7731 Marchbanks Lane"
GOOD_MESSAGE = {"conversation_id": "c-1", "role": "customer", "text": SECRET_TEXT}
BAD_INPUT: dict[str, tuple[dict[str, Any], int]] = {
    "malformed-json": (_put(raw_body='{"name": "Zelda Quintessa Marchbanks",'), 400),
    "not-json-at-all": (_put(raw_body="name=Zelda+Quintessa"), 400),
    "text-plain": (_put(PERSON, headers={"Content-Type": "text/plain"}), 415),
    "form": (_put(PERSON, headers={"Content-Type": "application/x-www-form-urlencoded"}), 415),
    "post-xml": (_post(GOOD_MESSAGE, headers={"Content-Type": "application/xml"}), 415),
    "base64-not-utf8": (_put(raw_body=b'{"name": "Zelda \xff Quintessa"}'), 400),
    "base64-binary": (_put(raw_body=b"\xff\xfe{}"), 400),
    "invalid-base64": (_put(mutate=_base64("not base64 at all!")), 400),
    "unknown-field": (_put({**PERSON, "nickname": "Zelda"}), 422),
    "tenant-in-body": (_put({**PERSON, "tenant_id": "t0000000000000000"}), 422),
    "invalid-email": (_put({**PERSON, "email": "Zelda.Quintessa-at-example.org"}), 422),
    "phone-without-country-code": (_put({**PERSON, "phone": "201 555 0123"}), 422),
    "phone-letters": (_put({**PERSON, "phone": "+1 201 ZELDA"}), 422),
    "subject-id-email": (_put(PERSON, path="/v1/subjects/zelda.quintessa@example.org"), 422),
    "subject-id-email-encoded": (_put(PERSON, path="/v1/subjects/zelda.quintessa%40example.org"), 422),
    "subject-id-phone": (_put(PERSON, path="/v1/subjects/2015550123"), 422),
    "subject-id-phone-dashed": (_put(PERSON, path="/v1/subjects/201-555-0123"), 422),
    "name-too-long": (_put({**PERSON, "name": "Zelda Quintessa " * 17}), 422),
    "contact-too-many": (_put({**PERSON, "contact": {f"k{n}": "zelda" for n in range(33)}}), 422),
    "contact-value-too-long": (_put({**PERSON, "contact": {"telegram": "@zelda_qm" * 120}}), 422),
    "contact-not-a-map": (_put({**PERSON, "contact": ["@zelda_qm_7731"]}), 422),
    "name-not-a-string": (_put({**PERSON, "name": 7731}), 422),
    "body-is-a-list": (_put([PERSON]), 422),
    "body-is-null": (_put(raw_body="null"), 422),
    "subject-id-too-long": (_put(PERSON, path="/v1/subjects/" + "u" * 129), 422),
    "subject-id-space": (_put(PERSON, path="/v1/subjects/zelda quintessa"), 422),
    "subject-id-percent": (_put(PERSON, path="/v1/subjects/zelda%25x"), 422),
    "subject-id-non-ascii": (_put(PERSON, path="/v1/subjects/zélda"), 422),
    "unknown-role": (_post({**GOOD_MESSAGE, "role": "admin"}), 422),
    "empty-text": (_post({**GOOD_MESSAGE, "text": ""}), 422),
    "no-text": (_post({k: v for k, v in GOOD_MESSAGE.items() if k != "text"}), 422),
    "bad-conversation-id": (_post({**GOOD_MESSAGE, "conversation_id": "c/1"}), 422),
    "time-without-offset": (_post({**GOOD_MESSAGE, "occurred_at": "2024-01-01T00:00:00"}), 422),
    "bad-channel": (_post({**GOOD_MESSAGE, "channel": "Web Chat"}), 422),
    "unknown-interaction-field": (_post({**GOOD_MESSAGE, "sentiment": "angry"}), 422),
    "text-over-1MiB": (_post({**GOOD_MESSAGE, "text": "z" * (MIB + 1)}), 413),
    "body-over-6MiB": (_post({**GOOD_MESSAGE, "text": "z" * (7 * MIB)}), 413),
    "bad-idempotency-key": (_post(GOOD_MESSAGE, headers={"Idempotency-Key": "has spaces"}), 422),
    "if-match-unquoted": (_put(PERSON, headers={"If-Match": "1"}), 422),
    "if-match-list-unquoted": (_put(PERSON, headers={"If-Match": '"1", 2'}), 422),
    "post-bad-id": (_post(GOOD_MESSAGE, path="/v1/subjects/" + "u" * 129 + "/interactions"), 422),
}


def test_bad_input_is_a_4xx_problem_that_echoes_nothing_and_writes_nothing(
    tenant: str, subject: str, subtests: pytest.Subtests
) -> None:
    for case, (request, status) in BAD_INPUT.items():
        with subtests.test(case):
            # Given a tenant with a subject, and everything stored so far
            before = snapshot()
            # When it sends a request it should not
            fields = dict(request)
            r = call(fields.pop("method"), fields.pop("path"), tenant=tenant, **fields)
            # Then it gets the documented 4xx problem, which repeats none of the personal values it sent
            assert_problem(r, status)
            assert_not_echoed(r, "Zelda", "Quintessa", "Marchbanks", "201 555 0123", "7731")
            # and nothing was written anywhere
            assert snapshot() == before


HOSTILE: dict[str, str] = {
    "deeply-nested-json": "[" * 100_000 + "]" * 100_000,
    "nested-5000": '{"name": ' + "[" * 5000 + "]" * 5000 + "}",
    "integer-of-5000-digits": '{"name": ' + "7" * 5000 + "}",
    "infinite-number": '{"name": 1e999}',
    "nan": '{"name": NaN}',
    "lone-surrogate": '{"name": "\\ud800"}',
    "nul-char": '{"name": "\\u0000"}',
    "duplicate-key": '{"name": "a", "name": "b"}',
    "proto-key": '{"contact": {"__proto__": "x"}}',
    "bom": "\ufeff{}",
    "empty-body": "",
}


def test_no_request_body_makes_a_server_error(tenant: str, subtests: pytest.Subtests) -> None:
    for case, raw in HOSTILE.items():
        with subtests.test(case):
            # When a tenant sends a body that is odd, hostile or at the edge of JSON
            r = call("PUT", "/v1/subjects/u-9", tenant=tenant, raw_body=raw)
            # Then the answer is the tenant's fault (4xx) or a success, never a 5xx
            assert r.status < 500, r.body
            if r.status >= 400:
                assert_problem(r, r.status)


def test_no_time_makes_a_server_error(tenant: str, subject: str, subtests: pytest.Subtests) -> None:
    for occurred_at in (
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "2024-02-30T00:00:00Z",
    ):
        with subtests.test(occurred_at):
            r = post(tenant, subject, occurred_at=occurred_at)
            assert r.status < 500, r.body
            assert listing(tenant, subject).status == 200


# ------------------------------------------------------------------ backend failures
def test_a_backend_failure_is_a_500_that_says_nothing_about_internals(
    tenant: str, subject: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB failing, with a message that quotes a table and a personal value
    from chatsphere.dal.subjects import DynamoSubjectStore

    def broken(*_: Any, **__: Any) -> None:
        raise ClientError(
            {
                "Error": {
                    "Code": "ProvisionedThroughputExceededException",
                    "Message": "SubjectsTable pk=T#x#S#u-1 email=zelda.quintessa@example.org",
                }
            },
            "GetItem",
        )

    monkeypatch.setattr(DynamoSubjectStore, "get_profile", broken)
    # When the tenant reads the subject
    r = call("GET", f"/v1/subjects/{subject}", tenant=tenant)
    # Then it gets a plain 500 problem, no trace of the backend or its message
    assert_problem(r, 500)
    for internal in ("ClientError", "Provisioned", "GetItem", "SubjectsTable", "Dynamo", "T#", "zelda", "Traceback"):
        assert internal.lower() not in r.text.lower(), internal
    assert r.body.get("errors") is None


def test_a_blob_store_failure_is_a_500_and_the_interaction_is_not_half_stored(
    tenant: str, subject: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatsphere.dal.blobs import S3BlobStore

    def broken(*_: Any, **__: Any) -> None:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")

    with monkeypatch.context() as patch:
        patch.setattr(S3BlobStore, "put", broken)
        r = post(tenant, subject, "b" * (40 * KIB))
    assert_problem(r, 500)
    assert "SlowDown" not in r.text
    assert listing(tenant, subject).body["items"] == []


# ------------------------------------------------------------------ the gateway's view of a body
def test_a_base64_encoded_json_body_is_accepted(tenant: str) -> None:
    r = call("PUT", "/v1/subjects/u-3", tenant=tenant, raw_body=json.dumps({"name": "Zoë"}).encode())
    assert r.status == 201, r.body
    assert r.body["name"] == "Zoë"


def test_json_with_a_charset_parameter_is_accepted(tenant: str) -> None:
    r = call(
        "PUT",
        "/v1/subjects/u-4",
        tenant=tenant,
        body={"name": "Ada"},
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status == 201, r.body


def test_every_table_is_left_alone_by_reads(tenant: str, subject: str) -> None:
    post(tenant, subject)
    before = snapshot()
    call("GET", f"/v1/subjects/{subject}", tenant=tenant)
    listing(tenant, subject)
    lookup(tenant, email=PERSON["email"])
    assert snapshot() == before
