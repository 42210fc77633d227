"""Updates that cannot lose data by accident, through the local gateway on moto: PATCH /v1/settings (a JSON merge
patch), ETag and If-Match on subjects and settings (412, the version the write's own condition), the correction a
PUT makes, and calls that change nothing leaving no request record."""

from __future__ import annotations

from typing import Any

import pytest

from chatsphere.errors import Conflict
from chatsphere.models.settings import TenantSettings
from tests.integration.helpers import call

PROCESSOR = {"name": "Example Payments Ltd", "purpose": "Payments", "data_categories": ["identity"], "country": "IE"}
STORED_PROCESSOR = {**PROCESSOR, "safeguard": None}  # as the settings answer it: an optional member shown as null
ADA = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550100"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def tenant(aws: Any) -> str:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.tenants import create_tenant

    created, _ = create_tenant(wiring().tenants, "Acme")
    return created.tenant_id


def records(tenant: str) -> list[dict[str, Any]]:
    r = call("GET", "/v1/requests", tenant=tenant)
    assert r.status == 200, r.body
    return list(r.body["items"])


def settings_now(tenant: str) -> tuple[dict[str, Any], str]:
    r = call("GET", "/v1/settings", tenant=tenant)
    assert r.status == 200, r.body
    return r.body, r.headers["etag"]


def with_processor(tenant: str) -> str:
    r = call("PUT", "/v1/settings", tenant=tenant, body={"processors": [PROCESSOR], "deadline_days": 20})
    assert r.status == 200, r.body
    return str(r.headers["etag"])


# ------------------------------------------------------------------------ PATCH /v1/settings
@pytest.mark.parametrize(
    "media_type", ["application/merge-patch+json", "application/json", "Application/Merge-Patch+JSON"]
)
def test_patching_one_setting_keeps_the_processor_register(tenant: str, media_type: str) -> None:
    with_processor(tenant)
    r = call(
        "PATCH",
        "/v1/settings",
        tenant=tenant,
        body={"retention": {"interactions": {"days": 90}}},
        headers={"Content-Type": media_type},
    )
    assert r.status == 200, r.body
    assert r.body["processors"] == [STORED_PROCESSOR] and r.body["deadline_days"] == 20
    assert r.body["retention"]["interactions"] == {"days": 90, "action": "delete"}
    assert settings_now(tenant) == (r.body, r.headers["etag"])


def test_null_in_a_settings_patch_puts_the_default_back(tenant: str) -> None:
    with_processor(tenant)
    r = call(
        "PATCH", "/v1/settings", tenant=tenant, body={"processors": None, "deadline_days": None}, headers=MERGE_PATCH
    )
    assert r.status == 200, r.body
    assert r.body == TenantSettings().model_dump(mode="json")


@pytest.mark.parametrize(
    "patch",
    [
        {"processors": [PROCESSOR, PROCESSOR]},  # valid by the schema, invalid as settings
        {"portability_destinations": ["s3://OWN/x"]},  # one of the service's own buckets: a rule no schema states
        {"deadline_days": 0},
        {"retention": {"export_packages": {"days": 8}}},
        {"surprise": 1},
        {"retention": {"interactions": {"days": "30"}}},
    ],
)
def test_a_settings_patch_that_yields_invalid_settings_is_422_and_writes_nothing(
    tenant: str, patch: dict[str, Any]
) -> None:
    from chatsphere.bootstrap import wiring

    if "portability_destinations" in patch:
        patch = {"portability_destinations": [f"s3://{min(wiring().adapters.own_buckets)}/x"]}
    with_processor(tenant)
    before = settings_now(tenant)
    r = call("PATCH", "/v1/settings", tenant=tenant, body=patch, headers=MERGE_PATCH)
    assert r.status == 422, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert settings_now(tenant) == before


def test_merge_patch_is_a_patch_media_type_only(tenant: str) -> None:
    r = call("PUT", "/v1/settings", tenant=tenant, body={}, headers=MERGE_PATCH)
    assert r.status == 415, r.body
    r = call("PATCH", "/v1/settings", tenant=tenant, body={}, headers={"Content-Type": "text/plain"})
    assert r.status == 415, r.body


# ------------------------------------------------------------------------ ETag and If-Match on settings
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_stale_if_match_on_settings_is_412_and_writes_nothing(tenant: str, method: str) -> None:
    stale = with_processor(tenant)
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"deadline_days": 25}).status == 200
    before = settings_now(tenant)
    r = call(
        "PATCH" if method == "PATCH" else "PUT", "/v1/settings", tenant=tenant, body={}, headers={"If-Match": stale}
    )
    assert r.status == 412, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert r.body["type"].endswith("/precondition-failed") and r.body["status"] == 412
    assert settings_now(tenant) == before


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_two_settings_writers_with_the_same_etag_one_wins(tenant: str, method: str) -> None:
    etag = with_processor(tenant)
    first = call(method, "/v1/settings", tenant=tenant, body={"deadline_days": 11}, headers={"If-Match": etag})
    second = call(method, "/v1/settings", tenant=tenant, body={"deadline_days": 12}, headers={"If-Match": etag})
    assert (first.status, second.status) == (200, 412), (first.body, second.body)
    assert first.headers["etag"] != etag
    assert settings_now(tenant) == (first.body, first.headers["etag"])


def test_the_settings_version_is_the_writes_own_condition(tenant: str) -> None:
    # A writer that checked version 1 and lost the race to another write: DynamoDB refuses its write.
    from chatsphere.bootstrap import wiring

    with_processor(tenant)
    assert call("PATCH", "/v1/settings", tenant=tenant, body={"deadline_days": 25}).status == 200
    with pytest.raises(Conflict):
        wiring().adapters.settings.put_settings(tenant, TenantSettings(), "2026-01-01T00:00:00Z", expected_version=1)
    with pytest.raises(Conflict):
        wiring().adapters.settings.put_settings(
            "t-with-none", TenantSettings(), "2026-01-01T00:00:00Z", expected_version=1
        )
    assert settings_now(tenant)[0]["deadline_days"] == 25


def test_settings_if_match_current_list_or_star_writes(tenant: str) -> None:
    _, etag = settings_now(tenant)
    assert etag == '"0"'  # none stored yet: the defaults
    r = call("PATCH", "/v1/settings", tenant=tenant, body={"deadline_days": 9}, headers={"If-Match": f'"7", {etag}'})
    assert r.status == 200 and r.headers["etag"] == '"1"', r.body
    r = call("PUT", "/v1/settings", tenant=tenant, body={}, headers={"If-Match": "*"})
    assert r.status == 200 and r.headers["etag"] == '"2"', r.body
    weak = call("PUT", "/v1/settings", tenant=tenant, body={}, headers={"If-Match": 'W/"2"'})
    assert weak.status == 412, weak.body
    malformed = call("PUT", "/v1/settings", tenant=tenant, body={}, headers={"If-Match": "2"})
    assert malformed.status == 422, malformed.body


def test_settings_writes_without_if_match_are_unchanged(tenant: str) -> None:
    assert call("PUT", "/v1/settings", tenant=tenant, body={"deadline_days": 9}).status == 200
    r = call("PUT", "/v1/settings", tenant=tenant, body={"deadline_days": 8})
    assert r.status == 200 and r.body["deadline_days"] == 8 and r.headers["etag"] == '"2"'


def test_a_settings_patch_merges_nested_objects_and_null_removes_a_nested_member(tenant: str) -> None:
    with_processor(tenant)
    r = call("PATCH", "/v1/settings", tenant=tenant, body={"retention": {"interactions": {"days": 90}}})
    assert r.status == 200, r.body
    r = call(
        "PATCH",
        "/v1/settings",
        tenant=tenant,
        body={"retention": {"interactions": {"action": "anonymize"}, "closed_requests": {"days": None}}},
        headers=MERGE_PATCH,
    )
    assert r.status == 200, r.body
    assert r.body["retention"]["interactions"] == {"days": 90, "action": "anonymize"}  # merged, not replaced
    assert r.body["retention"]["closed_requests"] == TenantSettings().retention.closed_requests.model_dump()
    assert r.body["processors"] == [STORED_PROCESSOR] and r.body["deadline_days"] == 20


def test_null_on_a_required_member_of_a_settings_patch_is_422_and_writes_nothing(tenant: str) -> None:
    """An array is replaced whole (RFC 7396), so a processor's required name set to null is a processor without
    one: the result is not valid settings."""
    with_processor(tenant)
    before = settings_now(tenant)
    r = call("PATCH", "/v1/settings", tenant=tenant, body={"processors": [{**PROCESSOR, "name": None}]})
    assert r.status == 422 and r.headers["content-type"] == "application/problem+json", r.body
    assert [e["loc"][:4] for e in r.body["errors"]] == [["body", "processors", 0, "name"]], r.body
    assert settings_now(tenant) == before


# ------------------------------------------------------------------------ ETag and If-Match on subjects
def put_ada(tenant: str, sid: str = "u-1") -> str:
    r = call("PUT", f"/v1/subjects/{sid}", tenant=tenant, body=ADA)
    assert r.status == 201, r.body
    return str(r.headers["etag"])


def test_subject_answers_carry_the_etag_of_the_version_they_show(tenant: str) -> None:
    created = put_ada(tenant)
    read = call("GET", "/v1/subjects/u-1", tenant=tenant)
    assert read.headers["etag"] == created == '"1"'
    patched = call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada King"}, headers=MERGE_PATCH)
    assert patched.status == 200 and patched.headers["etag"] == '"2"', patched.body
    replaced = call("PUT", "/v1/subjects/u-1", tenant=tenant, body=ADA)
    assert replaced.status == 200 and replaced.headers["etag"] == '"3"'
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).headers["etag"] == '"3"'


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_stale_if_match_on_a_subject_is_412_and_writes_nothing(tenant: str, method: str) -> None:
    stale = put_ada(tenant)
    assert call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada King"}).status == 200
    before, count = call("GET", "/v1/subjects/u-1", tenant=tenant), len(records(tenant))
    r = call(method, "/v1/subjects/u-1", tenant=tenant, body={"name": "Mallory"}, headers={"If-Match": stale})
    assert r.status == 412, r.body
    assert r.headers["content-type"] == "application/problem+json" and "Mallory" not in r.text
    after = call("GET", "/v1/subjects/u-1", tenant=tenant)
    assert (after.body, after.headers["etag"]) == (before.body, before.headers["etag"])
    assert len(records(tenant)) == count


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_two_subject_writers_with_the_same_etag_one_wins(tenant: str, method: str) -> None:
    etag = put_ada(tenant)
    first = call(method, "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada King"}, headers={"If-Match": etag})
    second = call(method, "/v1/subjects/u-1", tenant=tenant, body={"name": "Ada Byron"}, headers={"If-Match": etag})
    assert (first.status, second.status) == (200, 412), (first.body, second.body)
    assert call("GET", "/v1/subjects/u-1", tenant=tenant).body["name"] == "Ada King"


def test_if_match_on_a_subject_that_does_not_exist_creates_nothing(tenant: str) -> None:
    for tag in ("*", '"0"', '"1"'):
        r = call("PUT", "/v1/subjects/u-9", tenant=tenant, body=ADA, headers={"If-Match": tag})
        assert r.status == 412, r.body
    assert call("GET", "/v1/subjects/u-9", tenant=tenant).status == 404


def test_subject_writes_without_if_match_are_unchanged(tenant: str) -> None:
    put_ada(tenant)
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body={"name": "B"}).status == 200
    assert call("PATCH", "/v1/subjects/u-1", tenant=tenant, body={"name": "C"}).status == 200


# ------------------------------------------------------------------------ records of changes, and of none
def test_a_put_that_changes_a_subject_leaves_a_correction_record_naming_the_fields(tenant: str) -> None:
    put_ada(tenant)
    assert records(tenant) == []  # a create is no correction
    r = call("PUT", "/v1/subjects/u-1", tenant=tenant, body={**ADA, "email": "ada@newmail.example", "phone": None})
    assert r.status == 200, r.body
    (record,) = records(tenant)
    assert (record["type"], record["status"]) == ("correction", "completed")
    assert record["details"] == {"fields_changed": ["email", "phone"]}
    assert "newmail" not in str(record) and "4155550100" not in str(record)


def test_a_put_that_changes_nothing_leaves_no_record(tenant: str) -> None:
    put_ada(tenant)
    assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=ADA).status == 200
    assert records(tenant) == []


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (("PATCH", "", {"name": "Ada King"}), ("PATCH", "", {"name": "Ada King"})),
        (("PUT", "/objections/analytics", None), ("PUT", "/objections/analytics", None)),
        (None, ("DELETE", "/objections/analytics", None)),
        (("POST", "/deactivation", None), ("POST", "/deactivation", None)),
        (None, ("DELETE", "/deactivation", None)),
    ],
)
def test_a_call_that_changes_nothing_answers_as_before_and_leaves_no_record(
    tenant: str, first: tuple[str, str, Any] | None, again: tuple[str, str, Any]
) -> None:
    put_ada(tenant)
    if first is not None:
        method, suffix, body = first
        assert call(method, f"/v1/subjects/u-1{suffix}", tenant=tenant, body=body).status == 200
    count = len(records(tenant))
    assert count == (1 if first is not None else 0)
    method, suffix, body = again
    r = call(method, f"/v1/subjects/u-1{suffix}", tenant=tenant, body=body)
    assert r.status == 200, r.body
    assert r.body["subject_id"] == "u-1"
    assert len(records(tenant)) == count
