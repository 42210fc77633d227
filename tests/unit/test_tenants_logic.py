"""Tenants: API keys (issued once, stored hashed, checked by the authorizer) and per-tenant secrets."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from chatsphere.errors import Conflict, InvalidInput, NotFound, Unauthorized
from chatsphere.logic import api_keys
from chatsphere.logic.api_keys import authorize, hash_api_key
from chatsphere.logic.tenants import (
    TenantSecrets,
    create_api_key,
    create_tenant_with_key,
    list_api_keys,
    list_tenants,
    revoke_api_key,
)
from tests.unit.fakes import World


@pytest.fixture
def world() -> World:
    return World()


def test_a_new_tenant_gets_an_api_key_that_is_stored_only_as_a_hash(world: World) -> None:
    # When a tenant is created
    tenant, api_key = world.new_tenant("Acme")
    # Then its key names the tenant, and the store holds no part of the key's secret
    assert re.fullmatch(rf"cs_{tenant}\.[A-Za-z0-9_-]{{43}}", api_key)
    secret = api_key.split(".", 1)[1]
    stored = repr([i.model_dump() for i in [*world.tenants.tenants.values(), *world.tenants.api_keys.values()]])
    assert api_key not in stored
    assert secret not in stored
    assert secret[:16] not in stored


def test_two_tenants_get_different_ids_keys_and_lookup_secrets(world: World) -> None:
    (one, key_one), (two, key_two) = world.new_tenant("Acme"), world.new_tenant("Globex")
    assert one != two
    assert key_one != key_two
    secrets_ = TenantSecrets(world.tenants, world.kms)
    assert secrets_.hmac_key(one) != secrets_.hmac_key(two)
    assert secrets_.hmac_key(one) == TenantSecrets(world.tenants, world.kms).hmac_key(one)  # stable across containers


GIVEN_KEY = "cs_t00000000000000a1." + "given-key-" * 4 + "abc"


def test_a_tenant_made_with_a_given_key_has_the_keys_id_and_that_key_works(world: World) -> None:
    # The local stack's demo tenants: the same id and key on every start.
    tenant, api_key = create_tenant_with_key(world.wiring.tenants, "Demo", GIVEN_KEY)
    assert (tenant.tenant_id, api_key) == ("t00000000000000a1", GIVEN_KEY)
    assert authorize(world.tenants, f"Bearer {GIVEN_KEY}") == "t00000000000000a1"
    assert GIVEN_KEY.split(".", 1)[1] not in repr([i.model_dump() for i in world.tenants.api_keys.values()])
    TenantSecrets(world.tenants, world.kms).hmac_key(tenant.tenant_id)  # it has its lookup secret too


@pytest.mark.parametrize(
    "api_key",
    [GIVEN_KEY[:-1], GIVEN_KEY.replace("cs_t", "cs_x"), GIVEN_KEY.replace("a1.", "A1."), "cs_tDEMO.x", ""],
)
def test_a_given_key_of_another_shape_makes_no_tenant(world: World, api_key: str) -> None:
    with pytest.raises(ValueError, match="cs_<t"):
        create_tenant_with_key(world.wiring.tenants, "Demo", api_key)
    assert world.tenants.tenants == {}


def test_a_given_key_never_replaces_a_tenant_that_exists(world: World) -> None:
    create_tenant_with_key(world.wiring.tenants, "Demo", GIVEN_KEY)
    with pytest.raises(Conflict):
        create_tenant_with_key(world.wiring.tenants, "Other", GIVEN_KEY[:-3] + "xyz")
    assert [t.name for t in world.tenants.tenants.values()] == ["Demo"]


def test_a_valid_key_authorizes_its_own_tenant(world: World) -> None:
    (one, key_one), (two, key_two) = world.new_tenant("Acme"), world.new_tenant("Globex")
    assert authorize(world.tenants, f"Bearer {key_one}") == one
    assert authorize(world.tenants, f"Bearer {key_two}") == two


def _denied_headers(tenant: str, api_key: str, other: str) -> list[str]:
    secret = api_key.split(".", 1)[1]
    return [
        f"Bearer cs_{tenant}.{secrets.token_urlsafe(32)}",  # unknown key of a real tenant
        f"Bearer cs_{other}.{secret}",  # the secret under another tenant's id
        f"Bearer cs_t{'0' * 16}.{secret}",  # the secret under an unknown tenant
        f"Bearer {api_key[:-1]}",  # truncated
        f"Bearer {api_key}x",  # too long
        f"Bearer {api_key.replace('cs_', 'sk_')}",  # another prefix
        f"Bearer {secret}",  # the secret alone
        f"bearer {api_key}",  # scheme in another case (API Gateway's ValidationExpression says Bearer)
        f"Basic {api_key}",
        f"Token {api_key}",
        api_key,  # no scheme
        f"Bearer  {api_key}",  # two spaces
        f"Bearer {api_key} ",
        "Bearer ",
        "",
    ]


def test_anything_but_an_issued_key_is_refused(world: World) -> None:
    tenant, api_key = world.new_tenant("Acme")
    other, _ = world.new_tenant("Globex")
    for header in _denied_headers(tenant, api_key, other):
        with pytest.raises(Unauthorized):
            authorize(world.tenants, header)
    # and the real key still works afterwards
    assert authorize(world.tenants, f"Bearer {api_key}") == tenant


def test_a_revoked_key_is_refused(world: World) -> None:
    tenant, api_key = world.new_tenant("Acme")
    world.tenants.revoke(tenant, hash_api_key(api_key))
    with pytest.raises(Unauthorized):
        authorize(world.tenants, f"Bearer {api_key}")


def test_the_lookup_secret_of_an_unknown_tenant_is_refused(world: World) -> None:
    with pytest.raises(Unauthorized):
        TenantSecrets(world.tenants, world.kms).hmac_key("t" + "0" * 16)


def test_a_tenants_lookup_secret_is_unwrapped_once_per_container(world: World) -> None:
    tenant, _ = world.new_tenant("Acme")
    holder = TenantSecrets(world.tenants, world.kms)
    before = world.kms.unwrapped
    for _ in range(5):
        holder.hmac_key(tenant)
    assert world.kms.unwrapped - before == 1


# ------------------------------------------------------------------ the authorizer's own check, over plain dicts
class DictKeys:
    """The authorizer's port: key items as the DAL reads them, plain dicts."""

    def __init__(self, world: World) -> None:
        self.items = {k: v.model_dump() for k, v in world.tenants.api_keys.items()}

    def read_api_key(self, tenant_id: str, key_hash: str) -> dict[str, Any] | None:
        return self.items.get((tenant_id, key_hash))


def test_the_authorizers_check_refuses_a_revoked_item_and_reads_a_missing_status_as_active(world: World) -> None:
    tenant, api_key = world.new_tenant("Acme")
    keys = DictKeys(world)
    item = keys.items[(tenant, hash_api_key(api_key))]
    item["status"] = "revoked"
    with pytest.raises(Unauthorized):
        api_keys.authorize(keys, f"Bearer {api_key}")
    del item["status"]  # as models.items.ApiKeyItem defaults it
    assert api_keys.authorize(keys, f"Bearer {api_key}") == tenant


# ------------------------------------------------------------------ several keys per tenant: rotation, revocation
def test_rotation_two_keys_work_and_revoking_one_leaves_the_other(world: World) -> None:
    tenant, old = world.new_tenant("Acme")
    item, new = create_api_key(world.wiring.tenants, tenant)
    assert item.tenant_id == tenant and new != old and item.key_id == hash_api_key(new)[:12]
    assert authorize(world.tenants, f"Bearer {old}") == tenant
    assert authorize(world.tenants, f"Bearer {new}") == tenant
    old_id = hash_api_key(old)[:12]
    assert [k.key_id for k in list_api_keys(world.wiring.tenants, tenant)] == sorted(
        [old_id, item.key_id], key=lambda i: i != old_id
    )
    revoked = revoke_api_key(world.wiring.tenants, tenant, old_id)
    assert revoked.status == "revoked" and revoked.revoked_at is not None
    with pytest.raises(Unauthorized):
        authorize(world.tenants, f"Bearer {old}")
    assert authorize(world.tenants, f"Bearer {new}") == tenant
    assert {k.key_id: k.status for k in list_api_keys(world.wiring.tenants, tenant)} == {
        old_id: "revoked",
        item.key_id: "active",
    }
    # again: nothing changes, the first revocation's time stays
    assert revoke_api_key(world.wiring.tenants, tenant, old_id) == revoked


def test_keys_of_an_unknown_tenant_and_unknown_keys_are_refused_and_write_nothing(world: World) -> None:
    tenant, _ = world.new_tenant("Acme")
    other, _ = world.new_tenant("Globex")
    before = dict(world.tenants.api_keys)
    for call in (
        lambda: create_api_key(world.wiring.tenants, "t0000000000000000"),
        lambda: list_api_keys(world.wiring.tenants, "t0000000000000000"),
        lambda: revoke_api_key(world.wiring.tenants, "t0000000000000000", "0123456789ab"),
        lambda: revoke_api_key(world.wiring.tenants, tenant, "0123456789ab"),
        # another tenant's key id is not this tenant's
        lambda: revoke_api_key(world.wiring.tenants, tenant, list_api_keys(world.wiring.tenants, other)[0].key_id),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(InvalidInput):
        revoke_api_key(world.wiring.tenants, tenant, "not-a-key-id")
    assert world.tenants.api_keys == before


def test_tenants_are_listed_with_their_names(world: World) -> None:
    one, _ = world.new_tenant("Acme")
    two, _ = world.new_tenant("Globex")
    assert sorted((t.tenant_id, t.name) for t in list_tenants(world.wiring.tenants)) == sorted(
        [(one, "Acme"), (two, "Globex")]
    )
