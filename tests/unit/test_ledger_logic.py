"""The evidence ledger (logic/ledger.py) over the fakes: every action's entry reaches its tenant's tree in order and
once, the tree's proofs verify offline (logic/evidence.py), a head is signed after an erasure and daily when the tree
grew, an append costs the same calls at any size, and a crash between the index and the archive loses nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chatsphere.errors import NotFound
from chatsphere.logic import evidence, ledger, merkle
from chatsphere.logic.ledger import ReceiptNotSealed
from chatsphere.models import ledger as entries
from tests.unit.fakes import World

NOW = "2026-12-01T10:00:00+00:00"

# Request ids of the issued shape (an id of any other shape names no request: NotFound before any read).
R1, R2, R3, NO_REQUEST = ("r" + digit * 28 for digit in "1230")


def record(world: World, tenant: str, n: int, kind: entries.EntryType = "settings.changed") -> list[str]:
    """`n` entries as an action's store writes them; their ids."""
    ids = []
    for i in range(n):
        entry = entries.event(tenant, kind, f"2026-12-01T10:{i // 60:02d}:{i % 60:02d}+00:00", n=i)
        world.outbox.record(entry)
        ids.append(entry.entry_id)
    return ids


def tree(world: World, tenant: str) -> list[dict[str, object]]:
    return [json.loads(leaf.document) for leaf in world.ledger_index.leaves(tenant)]


def test_entries_are_appended_in_order_numbered_from_zero_and_leave_the_outbox(world: World, tenant: str) -> None:
    waiting = len(world.outbox.entries(tenant))  # the tenant's first key, created with it
    ids = record(world, tenant, 25)
    assert ledger.sequence(world.wiring.ledger, tenant, NOW) == waiting + 25
    leaves = tree(world, tenant)
    assert [leaf["seq"] for leaf in leaves] == list(range(len(leaves)))
    assert [leaf["entry_id"] for leaf in leaves if leaf["entry_id"] in ids] == ids  # the outbox's order
    assert world.outbox.entries(tenant) == []
    head = world.ledger_index.head(tenant)
    hashes = [bytes.fromhex(leaf.leaf_hash) for leaf in world.ledger_index.leaves(tenant)]
    assert merkle.frontier_root(head.size, [bytes.fromhex(h) for h in head.frontier]) == merkle.root(hashes)
    # the archive holds the very bytes the index hashed
    for leaf in world.ledger_index.leaves(tenant):
        assert world.ledger_archive.objects[f"tenants/{tenant}/ledger/entries/{leaf.seq:012d}.json"] == [
            leaf.document.encode()
        ]


def test_an_entry_id_is_appended_once_however_often_it_is_written(world: World, tenant: str) -> None:
    entry = entries.event(tenant, "api_key.created", NOW, key_id="k1")
    world.outbox.record(entry)
    ledger.sequence(world.wiring.ledger, tenant, NOW)
    size = world.ledger_index.head(tenant).size
    world.outbox.record(entry)  # a retried action writes the same entry again
    assert ledger.sequence(world.wiring.ledger, tenant, NOW) == 0
    assert world.ledger_index.head(tenant).size == size and world.outbox.entries(tenant) == []


def test_another_writer_moving_the_tree_makes_the_append_read_the_head_again(world: World, tenant: str) -> None:
    record(world, tenant, 3)
    world.ledger_index.fail_next_append = 2
    assert ledger.sequence(world.wiring.ledger, tenant, NOW) >= 3
    assert [leaf["seq"] for leaf in tree(world, tenant)] == list(range(world.ledger_index.head(tenant).size))


def test_a_crash_before_the_archive_is_mended_by_the_next_run(world: World, tenant: str) -> None:
    record(world, tenant, 4)
    world.ledger_archive.fail_next_put = 1
    with pytest.raises(RuntimeError):
        ledger.sequence(world.wiring.ledger, tenant, NOW)
    head = world.ledger_index.head(tenant)
    assert head.size >= 4 and head.archived < head.size  # in the index, not yet in the bucket
    ledger.sequence(world.wiring.ledger, tenant, NOW)
    head = world.ledger_index.head(tenant)
    assert head.archived == head.size
    assert len([k for k in world.ledger_archive.objects if "/entries/" in k]) == head.size


def test_one_append_costs_the_same_calls_whatever_the_trees_size(world: World, tenant: str) -> None:
    costs = []
    for _ in range(3):
        record(world, tenant, ledger.BATCH * 40)
        ledger.sequence(world.wiring.ledger, tenant, NOW)  # grow the tree
        world.ledger_index.calls.clear()
        world.outbox.calls.clear()
        world.ledger_archive.calls.clear()
        record(world, tenant, ledger.BATCH)
        ledger.sequence(world.wiring.ledger, tenant, NOW)
        calls = sum(world.ledger_index.calls.values()) + world.outbox.calls["pending"]
        costs.append(calls + sum(world.ledger_archive.calls.values()))
    assert len(set(costs)) == 1, costs  # 400, 810, 1220 leaves: one batch costs the same


def test_a_completed_erasure_gets_a_signed_head_and_a_receipt_that_verifies_offline(world: World, tenant: str) -> None:
    world.outbox.record(entries.event(tenant, "settings.changed", NOW, fields=["deadline_days"]))
    receipt_entry = entries.LedgerEntry(
        entry_id=f"{R1}.completed",
        tenant_id=tenant,
        type="deletion.receipt",
        at=NOW,
        data={"request_id": R1},
    )
    world.outbox.record(receipt_entry)
    ledger.sequence(world.wiring.ledger, tenant, NOW)
    [signed] = world.ledger_index.signed_heads(tenant)
    assert signed.tree_head.tree_size == world.ledger_index.head(tenant).size
    [published] = world.events.of_type(ledger.CHECKPOINT_EVENT)
    assert published["root_hash"] == signed.tree_head.root_hash and published["signature"] == signed.signature
    document = ledger.receipt(world.wiring.ledger, tenant, R1)
    verdict = evidence.verify_receipt(document, world.signer.public_key_pem())
    assert verdict.ok, verdict.checks
    assert document["entry"]["entry_id"] == f"{R1}.completed"
    changed = json.loads(json.dumps(document).replace(f'"{R1}"', f'"{R2}"'))
    assert not evidence.verify_receipt(changed, world.signer.public_key_pem()).ok


def test_a_receipt_not_yet_covered_by_a_signed_head_is_a_conflict_and_none_is_not_found(
    world: World, tenant: str
) -> None:
    with pytest.raises(NotFound):
        ledger.receipt(world.wiring.ledger, tenant, NO_REQUEST)
    entry = entries.LedgerEntry(
        entry_id=f"{R3}.completed",
        tenant_id=tenant,
        type="deletion.receipt",
        at=NOW,
        data={"request_id": R3},
    )
    index = world.ledger_index
    leaf = ledger.stored_entry(entry, 0)
    head = index.head(tenant)
    frontier, nodes = merkle.append(0, [], [bytes.fromhex(leaf.leaf_hash)])
    after = head.model_copy(update={"size": 1, "frontier": [h.hex() for h in frontier]})
    index.append(head, after, [(entry, leaf)], {n: h.hex() for n, h in nodes.items()}, [])
    with pytest.raises(ReceiptNotSealed):  # appended, but the sequencer has not signed yet
        ledger.receipt(world.wiring.ledger, tenant, R3)


def test_the_daily_run_signs_each_tree_that_grew_and_only_those(world: World, tenant: str) -> None:
    waiting = len(world.outbox.entries(tenant))  # the tenant's first key, created with it
    record(world, tenant, 3)
    assert ledger.daily(world.wiring.ledger, NOW) == {tenant: waiting + 3}  # sequenced first, then signed
    assert ledger.daily(world.wiring.ledger, NOW) == {}  # nothing new: no new head
    record(world, tenant, 2)
    assert ledger.daily(world.wiring.ledger, NOW) == {tenant: waiting + 5}
    heads = [h.model_dump() for h in world.ledger_index.signed_heads(tenant)]
    leaves = [(json.loads(s.document), bytes.fromhex(s.leaf_hash)) for s in world.ledger_index.leaves(tenant)]
    read, faults = evidence.verify_log(leaves, heads, world.signer.public_key_pem())
    assert (read, faults) == (waiting + 5, [])


def test_consistency_between_two_sizes_verifies_and_sizes_past_the_tree_are_not_found(
    world: World, tenant: str
) -> None:
    record(world, tenant, 37)
    ledger.sequence(world.wiring.ledger, tenant, NOW)
    size = world.ledger_index.head(tenant).size
    for old in (1, 5, 16, size):
        proof = ledger.consistency(world.wiring.ledger, tenant, old, size)
        assert merkle.verify_consistency(
            old,
            size,
            bytes.fromhex(proof["from_root"]),
            bytes.fromhex(proof["to_root"]),
            [bytes.fromhex(h) for h in proof["proof"]],
        )
    with pytest.raises(NotFound):
        ledger.consistency(world.wiring.ledger, tenant, 1, size + 1)


def test_the_audit_pages_in_sequence_order_and_filters_by_type_and_time(world: World, tenant: str) -> None:
    record(world, tenant, 5, "settings.changed")
    record(world, tenant, 3, "api_key.revoked")
    ledger.sequence(world.wiring.ledger, tenant, NOW)
    first = ledger.audit_page(world.wiring.ledger, tenant, 4, None, None, None, None)
    assert [e.seq for e in first.items] == [0, 1, 2, 3] and first.next_after == 3
    rest = ledger.audit_page(world.wiring.ledger, tenant, 100, first.next_after, None, None, None)
    assert rest.items[0].seq == 4 and rest.next_after is None
    revoked = ledger.audit_page(world.wiring.ledger, tenant, 100, None, "api_key.revoked", None, None)
    assert [e.type for e in revoked.items] == ["api_key.revoked"] * 3
    late = ledger.audit_page(world.wiring.ledger, tenant, 100, None, None, "2026-12-01T10:00:03+00:00", None)
    assert all(e.at >= "2026-12-01T10:00:03+00:00" for e in late.items) and late.items


def test_one_tenants_entries_never_reach_anothers_tree(world: World, tenant: str) -> None:
    record(world, tenant, 2)
    record(world, "t-other", 3)
    ledger.sequence(world.wiring.ledger, tenant, NOW)
    assert {leaf["tenant_id"] for leaf in tree(world, tenant)} == {tenant}
    assert len(world.outbox.entries("t-other")) == 3  # still waiting for their own tenant's run


def test_every_action_of_the_services_stores_writes_its_entry(world: World, tenant: str) -> None:
    """The fakes put an entry where the DAL's transactions do: a settings change and a key's revocation here."""
    from chatsphere.logic.settings import replace_settings
    from chatsphere.models.settings import TenantSettings

    replace_settings(world.wiring.settings, tenant, TenantSettings(deadline_days=40), datetime(2026, 12, 1, tzinfo=UTC))
    [changed] = [e for e in world.outbox.entries(tenant) if e.type == "settings.changed"]
    assert changed.data["fields"] == ["deadline_days"] and changed.data["version"] == 1
    # a patch writes from the document it read: its entry names what changed from that one
    from chatsphere.logic.settings import patch_settings

    patch_settings(world.wiring.settings, tenant, {"extension_days": 30}, datetime(2026, 12, 2, tzinfo=UTC))
    patched = [e for e in world.outbox.entries(tenant) if e.type == "settings.changed" and e.data["version"] == 2]
    assert [e.data["fields"] for e in patched] == [["extension_days"]]
