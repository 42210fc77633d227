"""The orphan sweep over in-memory ports: the sealed subject id, and which versions under an erased subject's
prefix go (every one, but those a new person wrote under the reused id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chatsphere.logic import sweep
from chatsphere.logic.object_keys import interaction_blob_key
from chatsphere.models.common import iso
from chatsphere.models.items import ProfileItem, TombstoneItem
from tests.unit.fakes import World

ERASED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
AS_OF = ERASED_AT + sweep.SETTLE


def _erased(world: World, tenant: str, subject_id: str, at: datetime = ERASED_AT) -> TombstoneItem:
    subject_hash = world.tombstones.hash(tenant, subject_id)
    tombstone = TombstoneItem(
        tenant_id=tenant,
        subject_hash=subject_hash,
        request_id="r-1",
        started_at=iso(at),
        deleted_at=iso(at),
        sealed_subject_id=sweep.seal_subject_id(world.secret, tenant, subject_hash, subject_id),
    )
    world.requests.put_tombstone(tombstone)
    return tombstone


def _write(world: World, key: str, at: datetime) -> str:
    world.blobs.clock = lambda: at
    return world.blobs.write(key, b"ciphertext")


def _sweep(world: World, tenant: str, as_of: datetime = AS_OF) -> int:
    p = (world.requests, world.subjects, world.blobs, world.tombstones, tenant, as_of)
    found = sweep.count_orphans(*p)
    sweep.remove_orphans(*p)
    return found


def test_the_sealed_id_opens_only_for_its_own_tenant_and_tombstone() -> None:
    world = World()
    tenant, other = world.new_tenant()[0], world.new_tenant("Globex")[0]
    tombstone = _erased(world, tenant, "u-1")
    assert tombstone.sealed_subject_id is not None and b"u-1" not in tombstone.sealed_subject_id
    assert sweep.open_subject_id(world.tombstones, tombstone) == "u-1"
    # moved to another tenant, or to another subject's tombstone, it does not open
    assert sweep.open_subject_id(world.tombstones, tombstone.model_copy(update={"tenant_id": other})) is None
    elsewhere = tombstone.model_copy(update={"subject_hash": world.tombstones.hash(tenant, "u-2")})
    assert sweep.open_subject_id(world.tombstones, elsewhere) is None


def test_a_settled_erased_prefix_is_swept_once_and_its_sealed_id_forgotten() -> None:
    world = World()
    tenant = world.new_tenant()[0]
    _erased(world, tenant, "u-1")
    orphan = interaction_blob_key(tenant, "u-1", "late")
    _write(world, orphan, ERASED_AT + timedelta(seconds=20))
    live = _write(world, interaction_blob_key(tenant, "u-10", "kept"), ERASED_AT)
    world.blobs.delete(orphan)  # a delete marker under the prefix goes too
    # Before it settles, nothing is swept
    assert _sweep(world, tenant, AS_OF - timedelta(seconds=1)) == 0
    assert orphan in world.blobs.versions_of
    # Once settled: the version and the marker, counted; u-10 (whose prefix u-1's is not) is untouched
    assert _sweep(world, tenant) == 2
    assert orphan not in world.blobs.versions_of and world.blobs.markers == {}
    assert [v for v, _ in world.blobs.versions_of[interaction_blob_key(tenant, "u-10", "kept")]] == [live]
    (tombstone,) = world.requests.tombstones(tenant)
    assert tombstone.sealed_subject_id is None
    assert _sweep(world, tenant, AS_OF + timedelta(days=1)) == 0


def test_a_reused_id_keeps_what_the_new_person_wrote() -> None:
    world = World()
    tenant = world.new_tenant()[0]
    _erased(world, tenant, "u-1")
    orphan = interaction_blob_key(tenant, "u-1", "late")
    _write(world, orphan, ERASED_AT + timedelta(seconds=5))
    # A new person takes the id a minute later, and writes a long text
    reused = ERASED_AT + timedelta(minutes=1)
    world.subjects.profiles[(tenant, "u-1")] = ProfileItem(
        tenant_id=tenant, subject_id="u-1", created_at=iso(reused), updated_at=iso(reused)
    )
    theirs = interaction_blob_key(tenant, "u-1", "new-person")
    _write(world, theirs, reused)
    # Then the sweep removes the orphan only
    assert _sweep(world, tenant) == 1
    assert list(world.blobs.versions_of) == [theirs]
