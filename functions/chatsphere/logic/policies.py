"""Policy versions: publish (and announce on the bus), list. Interactions are stamped in logic/intake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatsphere.errors import Conflict
from chatsphere.logic.ports import EventPublisher, PolicyStore
from chatsphere.models.common import iso
from chatsphere.models.items import PolicyItem
from chatsphere.models.policies import Policy, PolicyIn, PolicyList

EVENT_TYPE = "PolicyVersionPublished"


@dataclass(frozen=True)
class PoliciesPorts:
    policies: PolicyStore
    events: EventPublisher  # PolicyVersionPublished


def to_policy(item: PolicyItem) -> Policy:
    return Policy(
        version=item.version,
        effective_at=datetime.fromisoformat(item.effective_at),
        url=item.url,
        sha256=item.sha256,
        published_at=datetime.fromisoformat(item.published_at),
    )


def publish_policy(ports: PoliciesPorts, tenant_id: str, body: PolicyIn, now: datetime) -> tuple[Policy, bool]:
    """Store the version, then put PolicyVersionPublished on the bus. Returns (policy, created).

    A retry of the same body after a failed announcement announces it (nothing lost); the same
    version with a different body is a conflict."""
    item = PolicyItem(
        tenant_id=tenant_id,
        version=body.version,
        effective_at=iso(body.effective_at),
        url=body.url,
        sha256=body.sha256,
        published_at=iso(now),
    )
    created, tenants = True, ports.policies
    try:
        tenants.add_policy(item)
    except Conflict:
        stored = tenants.get_policy(tenant_id, body.version)
        same = stored is not None and (stored.effective_at, stored.url, stored.sha256) == (
            item.effective_at,
            item.url,
            item.sha256,
        )
        if not same:
            raise Conflict("this policy version exists with other content") from None
        assert stored is not None
        item, created = stored, False
    if not item.announced:
        ports.events.publish(
            EVENT_TYPE,
            {
                "tenant_id": tenant_id,
                "version": item.version,
                "effective_at": item.effective_at,
                "url": item.url,
                "sha256": item.sha256,
            },
        )
        tenants.mark_announced(item)
    return to_policy(item), created


def list_policies(ports: PoliciesPorts, tenant_id: str) -> PolicyList:
    return PolicyList(items=[to_policy(i) for i in ports.policies.list_policies(tenant_id)])
