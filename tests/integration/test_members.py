"""MemberIndex against moto: every profile is a member of its tenant, whatever its status, until its erasure; the
tenant's subjects are walked a page at a time per shard and counted, and no other tenant's appear."""

from __future__ import annotations

from typing import Any

from chatsphere.bootstrap import build
from chatsphere.config import get_config
from chatsphere.day_index import DAY_SHARDS
from tests.integration.helpers import call, new_tenant
from tests.integration.queues import drain


def walk(tenant: str, limit: int) -> list[str]:
    subjects = build(get_config()).adapters.subjects
    found: list[str] = []
    for shard in range(DAY_SHARDS):
        after: str | None = None
        while True:
            ids, after = subjects.subject_ids(tenant, shard, limit, after)
            found += ids
            if after is None:
                break
    return found


def test_a_tenants_subjects_are_walked_and_counted_from_the_index(aws: Any) -> None:
    tenant, other = new_tenant("Acme")[0], new_tenant("Other")[0]
    for n in range(23):
        assert call("PUT", f"/v1/subjects/m-{n:02d}", tenant=tenant, body={"name": "M"}).status == 201
    assert call("PUT", "/v1/subjects/x-1", tenant=other, body={"name": "X"}).status == 201
    assert call("POST", "/v1/subjects/m-01/deactivation", tenant=tenant).status in (200, 201)  # still a member
    assert call("DELETE", "/v1/subjects/m-02", tenant=tenant).status == 202
    drain(aws, "DeletionQueue")  # erased: no longer a member
    expected = sorted(f"m-{n:02d}" for n in range(23) if n != 2)

    for limit in (1, 4, 100):
        found = walk(tenant, limit)
        assert sorted(found) == expected and len(found) == len(set(found))
    subjects = build(get_config()).adapters.subjects
    assert subjects.count_subjects(tenant) == 22
    assert subjects.count_subjects(other) == 1
