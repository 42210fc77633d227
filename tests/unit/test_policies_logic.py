"""Policy versions over in-memory ports: publishing, announcing once, conflicts and listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatsphere.errors import Conflict
from chatsphere.logic import policies
from chatsphere.models.policies import Policy, PolicyIn
from tests.unit.fakes import FakeEventPublisher, World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EFFECTIVE = datetime(2025, 4, 1, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def tenant(world: World) -> str:
    return world.new_tenant()[0]


def body(version: str = "2025-04", effective_at: datetime = EFFECTIVE, digest: str = "a" * 64) -> PolicyIn:
    return PolicyIn(
        version=version, effective_at=effective_at, url=f"https://acme.example/privacy/{version}", sha256=digest
    )


def publish(world: World, tenant: str, policy: PolicyIn, at: datetime = NOW) -> tuple[Policy, bool]:
    return policies.publish_policy(world.wiring.policies, tenant, policy, at)


def test_a_new_version_is_created_and_announced_once(world: World, tenant: str) -> None:
    # When the tenant publishes a version
    policy, created = publish(world, tenant, body())
    # Then it is new, reads back as given, and PolicyVersionPublished went out once with what subscribers need
    assert created is True
    assert (policy.version, policy.effective_at, policy.url, policy.sha256, policy.published_at) == (
        "2025-04",
        EFFECTIVE,
        "https://acme.example/privacy/2025-04",
        "a" * 64,
        NOW,
    )
    (event,) = world.events.published
    detail_type, detail = event
    assert detail_type == "PolicyVersionPublished"
    assert detail["tenant_id"] == tenant
    assert detail["version"] == "2025-04"
    assert datetime.fromisoformat(detail["effective_at"]) == EFFECTIVE
    assert detail["url"] == "https://acme.example/privacy/2025-04"
    assert detail["sha256"] == "a" * 64


def test_publishing_the_same_body_again_is_not_new_and_not_announced_again(world: World, tenant: str) -> None:
    # Given a published version
    first, _ = publish(world, tenant, body())
    # When the same body is published again, later (a client retry)
    again, created = publish(world, tenant, body(), at=NOW + timedelta(hours=1))
    # Then it is the stored version, unchanged, and no second announcement went out
    assert created is False
    assert again == first
    assert again.published_at == NOW
    assert len(world.events.published) == 1
    assert policies.list_policies(world.wiring.policies, tenant).items == [first]


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(body(digest="b" * 64), id="other-sha256"),
        pytest.param(body(effective_at=EFFECTIVE + timedelta(days=1)), id="other-effective-at"),
        pytest.param(
            PolicyIn(version="2025-04", effective_at=EFFECTIVE, url="https://acme.example/other", sha256="a" * 64),
            id="other-url",
        ),
    ],
)
def test_the_same_version_with_another_body_is_a_conflict(world: World, tenant: str, changed: PolicyIn) -> None:
    # Given a published version
    first, _ = publish(world, tenant, body())
    # When the same version is published with other content
    with pytest.raises(Conflict) as raised:
        publish(world, tenant, changed)
    # Then it is a 409, the stored version is unchanged and nothing more was announced
    assert raised.value.status == 409
    assert policies.list_policies(world.wiring.policies, tenant).items == [first]
    assert len(world.events.published) == 1


def test_an_announcement_that_failed_goes_out_on_the_retry(world: World, tenant: str) -> None:
    # Given an event bus that fails once
    class FlakyBus(FakeEventPublisher):
        def __init__(self) -> None:
            super().__init__()
            self.failures = 1

        def publish(self, detail_type: str, detail: dict[str, str]) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("PutEvents failed")
            super().publish(detail_type, detail)

    world.events = FlakyBus()
    # When the first publish fails to announce, and the tenant retries the same body
    with pytest.raises(ConnectionError):
        publish(world, tenant, body())
    _, created = publish(world, tenant, body(), at=NOW + timedelta(minutes=1))
    # Then the retry finds it stored already, and announces it exactly once
    assert created is False
    assert [(t, d["version"]) for t, d in world.events.published] == [("PolicyVersionPublished", "2025-04")]
    publish(world, tenant, body(), at=NOW + timedelta(minutes=2))
    assert len(world.events.published) == 1


def test_the_same_version_id_of_two_tenants_are_separate(world: World, tenant: str) -> None:
    other = world.new_tenant("Globex")[0]
    publish(world, tenant, body())
    _, created = publish(world, other, body(digest="c" * 64))
    assert created is True
    assert [d["tenant_id"] for _, d in world.events.published] == [tenant, other]
    assert [p.sha256 for p in policies.list_policies(world.wiring.policies, tenant).items] == ["a" * 64]


def test_versions_list_oldest_first_by_effective_time(world: World, tenant: str) -> None:
    # Given versions published out of order of their effective times
    publish(world, tenant, body("v3", EFFECTIVE + timedelta(days=60)))
    publish(world, tenant, body("v1", EFFECTIVE - timedelta(days=300)))
    publish(world, tenant, body("v2", EFFECTIVE))
    # When the tenant lists them
    listed = policies.list_policies(world.wiring.policies, tenant).items
    # Then they come oldest effective first
    assert [p.version for p in listed] == ["v1", "v2", "v3"]
    assert [p.effective_at for p in listed] == sorted(p.effective_at for p in listed)


def test_a_tenant_with_no_versions_lists_none(world: World, tenant: str) -> None:
    publish(world, world.new_tenant("Globex")[0], body())
    assert policies.list_policies(world.wiring.policies, tenant).items == []
