"""Tenant settings: what the schema cannot say is checked before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chatsphere.errors import InvalidInput, PreconditionFailed
from chatsphere.logic import settings as settings_logic
from chatsphere.logic.settings import patch_settings, replace_settings
from chatsphere.models.common import merge_patch
from chatsphere.models.settings import Processor, TenantSettings
from tests.unit.fakes import World

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("bucket", ["data-bucket", "access-log-bucket"])
def test_a_destination_in_one_of_the_services_own_buckets_is_refused_and_nothing_stored(
    world: World, bucket: str
) -> None:
    tenant = world.new_tenant()[0]
    given = TenantSettings(portability_destinations=["s3://partner-bucket/in", f"s3://{bucket}/tenants/x"])
    with pytest.raises(InvalidInput, match=r"portability_destinations\[1\]"):
        replace_settings(world.wiring.settings, tenant, given, NOW)
    assert world.tenants.get_settings(tenant) == TenantSettings()


def test_other_destinations_are_stored_whole(world: World) -> None:
    tenant = world.new_tenant()[0]
    given = TenantSettings(portability_destinations=["s3://partner-bucket/in"], deadline_days=20)
    assert replace_settings(world.wiring.settings, tenant, given, NOW) == (given, 1)
    assert world.tenants.get_settings(tenant) == given


# ------------------------------------------------------------ merge patch and versions
PROCESSOR = Processor(name="Example Payments", purpose="Payments", data_categories=["identity"], country="IE")


def test_a_patch_changes_one_setting_and_keeps_the_processor_register(world: World) -> None:
    tenant = world.new_tenant()[0]
    replace_settings(world.wiring.settings, tenant, TenantSettings(processors=[PROCESSOR]), NOW)
    patched, version = patch_settings(world.wiring.settings, tenant, {"retention": {"interactions": {"days": 90}}}, NOW)
    assert world.tenants.read_settings(tenant) == (patched, version) and version == 2
    assert patched.processors == [PROCESSOR]
    assert patched.retention.interactions.days == 90
    assert patched.retention.interactions.action == "delete" and patched.retention.closed_requests.days == 2190


def test_null_in_a_patch_puts_the_setting_back_to_its_default(world: World) -> None:
    tenant = world.new_tenant()[0]
    replace_settings(world.wiring.settings, tenant, TenantSettings(deadline_days=10, processors=[PROCESSOR]), NOW)
    patched, _ = patch_settings(world.wiring.settings, tenant, {"deadline_days": None, "processors": None}, NOW)
    assert patched == TenantSettings()


def test_a_patch_merges_nested_objects_and_null_removes_a_nested_member(world: World) -> None:
    tenant = world.new_tenant()[0]
    replace_settings(world.wiring.settings, tenant, TenantSettings(processors=[PROCESSOR]), NOW)
    patch_settings(world.wiring.settings, tenant, {"retention": {"interactions": {"days": 90}}}, NOW)
    patched, _ = patch_settings(
        world.wiring.settings,
        tenant,
        {"retention": {"interactions": {"action": "anonymize"}, "closed_requests": {"days": None}}},
        NOW,
    )
    assert (patched.retention.interactions.days, patched.retention.interactions.action) == (90, "anonymize")
    assert patched.retention.closed_requests == TenantSettings().retention.closed_requests
    assert patched.processors == [PROCESSOR] and world.tenants.read_settings(tenant)[0] == patched


def test_null_on_a_required_member_is_refused_and_writes_nothing(world: World) -> None:
    """An array is replaced whole, so a processor whose required name is null is one without a name."""
    tenant = world.new_tenant()[0]
    before = replace_settings(world.wiring.settings, tenant, TenantSettings(processors=[PROCESSOR]), NOW)
    with pytest.raises(ValidationError) as raised:
        patch_settings(world.wiring.settings, tenant, {"processors": [{**PROCESSOR.model_dump(), "name": None}]}, NOW)
    assert [e["loc"][:3] for e in raised.value.errors()] == [("processors", 0, "name")]
    assert world.tenants.read_settings(tenant) == before


@pytest.mark.parametrize(
    "patch",
    [
        {"processors": [PROCESSOR.model_dump(), PROCESSOR.model_dump()]},  # a rule of the whole document
        {"portability_destinations": ["s3://data-bucket/x"]},  # a rule no schema states
        {"retention": {"export_packages": {"days": 8}}},
    ],
)
def test_a_patch_that_yields_invalid_settings_writes_nothing(world: World, patch: dict[str, Any]) -> None:
    tenant = world.new_tenant()[0]
    before = replace_settings(world.wiring.settings, tenant, TenantSettings(processors=[PROCESSOR]), NOW)
    with pytest.raises((ValidationError, InvalidInput)):
        patch_settings(world.wiring.settings, tenant, patch, NOW)
    assert world.tenants.read_settings(tenant) == before


def test_merge_patch_follows_rfc_7396() -> None:
    # The examples of RFC 7396, appendix A, that start from an object
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


@pytest.mark.parametrize("write", ["put", "patch"])
def test_a_stale_if_match_is_412_and_writes_nothing(world: World, write: str) -> None:
    tenant = world.new_tenant()[0]
    _, first = replace_settings(world.wiring.settings, tenant, TenantSettings(deadline_days=20), NOW)
    current = replace_settings(world.wiring.settings, tenant, TenantSettings(deadline_days=25), NOW)
    stale = frozenset({first})
    writes = {
        "put": lambda: replace_settings(world.wiring.settings, tenant, TenantSettings(), NOW, if_match=stale),
        "patch": lambda: patch_settings(world.wiring.settings, tenant, {"deadline_days": 9}, NOW, if_match=stale),
    }
    with pytest.raises(PreconditionFailed):
        writes[write]()
    assert world.tenants.read_settings(tenant) == current


def test_if_match_with_the_current_version_or_any_writes(world: World) -> None:
    tenant = world.new_tenant()[0]
    _, version = settings_logic.read_settings(world.wiring.settings, tenant)
    assert version == 0  # nothing stored: the defaults, version 0
    _, version = patch_settings(world.wiring.settings, tenant, {"deadline_days": 9}, NOW, if_match=frozenset({0}))
    _, version = replace_settings(
        world.wiring.settings, tenant, TenantSettings(), NOW, if_match=frozenset({7, version})
    )
    assert version == 2
    _, version = patch_settings(world.wiring.settings, tenant, {"deadline_days": 8}, NOW, if_match="*")
    assert world.tenants.read_settings(tenant) == (TenantSettings(deadline_days=8), 3)


def test_the_version_read_is_the_writes_own_condition(world: World) -> None:
    # Given a writer that read version 1, and another that wrote after it read
    tenant = world.new_tenant()[0]
    replace_settings(world.wiring.settings, tenant, TenantSettings(deadline_days=40), NOW)
    real_read = world.tenants.read_settings

    def read_then_lose_the_race(tenant_id: str) -> tuple[TenantSettings, int]:
        found = real_read(tenant_id)
        world.tenants.read_settings = real_read  # type: ignore[method-assign]
        world.tenants.put_settings(tenant_id, TenantSettings(deadline_days=44), "x")  # the other writer
        return found

    world.tenants.read_settings = read_then_lose_the_race  # type: ignore[method-assign]
    # When it writes with If-Match of the version it read
    with pytest.raises(PreconditionFailed):
        patch_settings(world.wiring.settings, tenant, {"deadline_days": 9}, NOW, if_match=frozenset({1}))
    # Then the other writer's settings stand
    assert world.tenants.read_settings(tenant) == (TenantSettings(deadline_days=44), 2)


def test_a_patch_without_if_match_merges_onto_a_concurrent_change_rather_than_losing_it(world: World) -> None:
    tenant = world.new_tenant()[0]
    real_read = world.tenants.read_settings

    def read_then_lose_the_race(tenant_id: str) -> tuple[TenantSettings, int]:
        found = real_read(tenant_id)
        world.tenants.read_settings = real_read  # type: ignore[method-assign]
        world.tenants.put_settings(tenant_id, TenantSettings(processors=[PROCESSOR]), "x")
        return found

    world.tenants.read_settings = read_then_lose_the_race  # type: ignore[method-assign]
    patched, version = patch_settings(world.wiring.settings, tenant, {"deadline_days": 9}, NOW)
    assert patched == TenantSettings(deadline_days=9, processors=[PROCESSOR]) and version == 2


# ------------------------------------------------------------ the controller and the purposes' legal bases
LATER = datetime(2026, 3, 2, tzinfo=UTC)  # the outbox orders entries by time
CONTROLLER = {"name": "Acme Shop Ltd", "contact": "privacy@acme.example", "dpo_contact": "dpo@acme.example"}


def test_every_purpose_has_a_legal_basis_with_the_readmes_default() -> None:
    from chatsphere.models.settings import Purposes
    from chatsphere.models.subjects import PURPOSES

    assert list(Purposes.model_fields) == list(PURPOSES)
    assert Purposes().model_dump() == {
        "inquiries": "contract",
        "improvement": "legitimate_interest",
        "personalization": "consent",
        "analytics": "legitimate_interest",
        "legal_obligation": "legal_obligation",
    }
    with pytest.raises(ValidationError):
        Purposes.model_validate({"analytics": "vital_interest"})


def test_a_patch_sets_the_controller_and_one_legal_basis_and_the_ledger_names_only_the_fields(world: World) -> None:
    tenant = world.new_tenant()[0]
    patched, _ = patch_settings(
        world.wiring.settings, tenant, {"controller": CONTROLLER, "purposes": {"analytics": "consent"}}, NOW
    )
    assert patched.controller is not None and patched.controller.model_dump() == CONTROLLER
    assert patched.purposes.analytics == "consent" and patched.purposes.inquiries == "contract"
    # a nested merge: one member of the controller changes, the others stay; null removes the optional DPO
    again, _ = patch_settings(world.wiring.settings, tenant, {"controller": {"dpo_contact": None}}, LATER)
    assert again.controller is not None and again.controller.dpo_contact is None
    assert again.controller.name == CONTROLLER["name"]
    entries = [e for e in world.outbox.entries(tenant) if e.type == "settings.changed"]
    assert [sorted(e.data["fields"]) for e in entries] == [["controller", "purposes"], ["controller"]]
    assert "acme" not in repr([e.data for e in entries]).lower()  # tenant text stays out of the ledger


def test_a_controller_without_its_required_members_writes_nothing(world: World) -> None:
    tenant = world.new_tenant()[0]
    with pytest.raises(ValidationError) as raised:
        patch_settings(world.wiring.settings, tenant, {"controller": {"dpo_contact": "dpo@acme.example"}}, NOW)
    assert sorted(e["loc"] for e in raised.value.errors()) == [("controller", "contact"), ("controller", "name")]
    assert world.tenants.read_settings(tenant) == (TenantSettings(), 0)


def test_a_processors_safeguard_is_optional_and_bounded() -> None:
    assert PROCESSOR.safeguard is None
    assert Processor(**{**PROCESSOR.model_dump(), "safeguard": "SCC 2021/914"}).safeguard == "SCC 2021/914"
    with pytest.raises(ValidationError):
        Processor(**{**PROCESSOR.model_dump(), "safeguard": "x" * 257})
