"""Tenant settings: what the schema cannot say is checked before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatsphere.errors import InvalidInput
from chatsphere.logic.settings import replace_settings
from chatsphere.models.settings import TenantSettings
from tests.unit.fakes import World

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    return World()


@pytest.mark.parametrize("bucket", ["data-bucket", "access-log-bucket"])
def test_a_destination_in_one_of_the_services_own_buckets_is_refused_and_nothing_stored(
    world: World, bucket: str
) -> None:
    tenant = world.new_tenant()[0]
    given = TenantSettings(portability_destinations=["s3://partner-bucket/in", f"s3://{bucket}/tenants/x"])
    with pytest.raises(InvalidInput, match=r"portability_destinations\[1\]"):
        replace_settings(world.tenants, world.own_buckets, tenant, given, NOW)
    assert world.tenants.get_settings(tenant) == TenantSettings()


def test_other_destinations_are_stored_whole(world: World) -> None:
    tenant = world.new_tenant()[0]
    given = TenantSettings(portability_destinations=["s3://partner-bucket/in"], deadline_days=20)
    assert replace_settings(world.tenants, world.own_buckets, tenant, given, NOW) == given
    assert world.tenants.get_settings(tenant) == given
