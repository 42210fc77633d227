"""Reconcile over in-memory ports: what a restore brings back of erased subjects goes again, and nothing else."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from chatsphere.errors import Gone
from chatsphere.logic import deletion, export, idempotency, intake, object_keys
from chatsphere.logic.reconcile import STORES, ReconcilePorts, reconcile
from chatsphere.models.deletion import DeletionJob
from chatsphere.models.export import ExportIn
from chatsphere.models.items import InteractionItem, ProfileItem
from chatsphere.models.subjects import InteractionIn, LookupIn, SubjectIn
from tests.unit.fakes import World

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KIB = 1024
LIFETIME = idempotency.IDEMPOTENCY_LIFETIME_SECONDS
PERSON = SubjectIn(name="Orla Erasmus", email="orla@example.org", phone="+12015550177")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(clock: Clock) -> World:
    w = World()
    w.blobs.clock = clock
    return w


def ports(world: World) -> ReconcilePorts:
    return world.wiring.reconcile


def populate(world: World, tenant: str, subject: str, now: datetime, body: SubjectIn = PERSON) -> None:
    w = world
    intake.put_subject(w.intake, tenant, subject, body, now, reuse_deleted_id=True)
    for text in (f"hello from {subject}", "L" * (40 * KIB)):
        message = InteractionIn(conversation_id="c", role="customer", text=text)
        intake.add_interaction(w.intake, tenant, subject, message, now)
    # an idempotency record, as Powertools writes one (its expiry is its write time plus the lifetime)
    expiration = int(now.timestamp()) + LIFETIME
    w.idempotency.records.setdefault((tenant, subject), {})[f"interaction#{now.timestamp()}"] = {
        "expiration": expiration
    }


def add_package(world: World, tenant: str, subject: str, now: datetime) -> str:
    w = world
    record, _ = export.request_export(w.export, tenant, subject, ExportIn(format="json"), now)
    w.blobs.write(object_keys.export_package_key(tenant, subject, record.request_id), b"PK\x03\x04 a package")
    return record.request_id


def request_erasure(world: World, tenant: str, subject: str, now: datetime) -> str:
    w = world
    record, _ = deletion.request_deletion(w.deletion, tenant, subject, now)
    return record.request_id


def erase(world: World, tenant: str, subject: str, now: datetime) -> str:
    w = world
    request_id = request_erasure(w, tenant, subject, now)
    p = w.deletion
    job = DeletionJob(tenant_id=tenant, request_id=request_id)
    while deletion.run_deletion(p, job, now) == "continue":
        pass
    assert w.requests.get(tenant, request_id).status == "completed"  # type: ignore[union-attr]
    return request_id


@dataclass
class Backup:
    """A subject's items and objects as they were: what a restore writes back."""

    profile: ProfileItem | None
    lookups: dict[str, str]
    interactions: dict[tuple[str, str], InteractionItem]
    objects: dict[str, bytes]
    records: dict[str, dict[str, object]]
    wrapped_key: bytes | None
    key_created: str | None


def backup(world: World, tenant: str, subject: str) -> Backup:
    w = world
    prefix = object_keys.subject_prefix(tenant, subject)
    return Backup(
        profile=w.subjects.get_profile(tenant, subject),
        lookups={k: d for (t, s, k), d in w.subjects.lookups.items() if (t, s) == (tenant, subject)},
        interactions=copy.deepcopy(w.subjects.interactions.get((tenant, subject), {})),
        objects={k: v for k, v in w.blobs.objects.items() if k.startswith(prefix)},
        records=copy.deepcopy(w.idempotency.records.get((tenant, subject), {})),
        wrapped_key=w.data_keys.get(tenant, subject),
        key_created=w.data_keys.created.get((tenant, subject)),
    )


def restore(world: World, tenant: str, subject: str, old: Backup, *, profile: bool = True, key: bool = False) -> None:
    """Writes the old copies back as a restore does: over whatever is there, objects as new versions."""
    w = world
    if profile and old.profile is not None:
        w.subjects.profiles[(tenant, subject)] = old.profile
        for kind, digest in old.lookups.items():
            w.subjects.lookups[(tenant, subject, kind)] = digest  # type: ignore[index]
    w.subjects.interactions.setdefault((tenant, subject), {}).update(copy.deepcopy(old.interactions))
    for name, body in old.objects.items():
        w.blobs.write(name, body)
    w.idempotency.records.setdefault((tenant, subject), {}).update(copy.deepcopy(old.records))
    if key and old.wrapped_key is not None:
        w.data_keys.rows[(tenant, subject)] = old.wrapped_key
        w.data_keys.created[(tenant, subject)] = old.key_created or ""


def holdings(world: World, tenant: str, subject: str) -> dict[str, int]:
    w = world
    return {
        "items": len(w.subjects.item_refs(tenant, subject, 10**9)),
        "objects": len(w.blobs.versions(object_keys.subject_prefix(tenant, subject), 10**9)),
        "records": len(w.idempotency.record_refs(tenant, subject, 10**9)),
        "key": int(w.data_keys.get(tenant, subject) is not None),
    }


def lookup(world: World, tenant: str, **identifier: str) -> list[str]:
    body = LookupIn.model_validate(identifier)
    return intake.lookup_subjects(world.intake, tenant, body).subject_ids


# ----------------------------------------------------------------------------------------------------- tests
def test_what_a_restore_brought_back_goes_again_counted_per_store_and_a_rerun_removes_nothing(
    world: World, clock: Clock
) -> None:
    tenant, other_tenant = world.new_tenant("Acme")[0], world.new_tenant("Globex")[0]
    populate(world, tenant, "u-1", T0)
    add_package(world, tenant, "u-1", T0)
    populate(world, tenant, "u-2", T0)
    populate(world, other_tenant, "u-1", T0)
    old = backup(world, tenant, "u-1")
    neighbours = holdings(world, tenant, "u-2"), holdings(world, other_tenant, "u-1")
    request_id = erase(world, tenant, "u-1", T0 + timedelta(hours=1))
    clock.now = T0 + timedelta(hours=2)
    restore(world, tenant, "u-1", old, key=True)
    world.blobs.delete(object_keys.export_package_key(tenant, "u-1", "gone"))  # a delete marker came back too
    # Its data key came back too (from another backup), so until reconcile runs a lookup finds it
    assert lookup(world, tenant, email="orla@example.org") == ["u-1", "u-2"]
    report = reconcile(ports(world))
    # Then each store's count is what came back, and the tenant's report names the deletion, never the subject
    assert report.removed == {
        "profiles": 1,
        "interactions": 2,
        "lookup_items": 2,
        "other_items": 0,
        "data_keys": 1,
        "idempotency_records": 1,
        "object_versions": 2,
        "delete_markers": 1,
    }
    acme = next(t for t in report.as_dict()["tenants"] if t["tenant_id"] == tenant)  # type: ignore[attr-defined]
    assert acme["reapplied"] == [request_id] and acme["tombstones"] == 1 and acme["reused_ids"] == 0
    assert "u-1" not in repr(report.as_dict())
    assert holdings(world, tenant, "u-1") == {"items": 0, "objects": 0, "records": 0, "key": 0}
    assert (holdings(world, tenant, "u-2"), holdings(world, other_tenant, "u-1")) == neighbours
    assert lookup(world, tenant, email="orla@example.org") == ["u-2"]
    # And a second run finds nothing
    again = reconcile(ports(world))
    assert again.removed == dict.fromkeys(STORES, 0)
    assert all(t["reapplied"] == [] for t in again.as_dict()["tenants"])  # type: ignore[attr-defined]


def test_a_new_person_who_reused_the_id_keeps_everything_of_theirs(world: World, clock: Clock) -> None:
    tenant = world.new_tenant()[0]
    populate(world, tenant, "u-1", T0)
    package = add_package(world, tenant, "u-1", T0)
    old = backup(world, tenant, "u-1")
    erase(world, tenant, "u-1", T0 + timedelta(hours=1))
    # A new person takes the id explicitly, after the erasure, with an email only
    reused_at = T0 + timedelta(hours=2)
    clock.now = reused_at
    populate(world, tenant, "u-1", reused_at, SubjectIn(name="Someone Else", email="else@example.org"))
    new_package = add_package(world, tenant, "u-1", reused_at)
    mine = backup(world, tenant, "u-1")
    # The restore brings back the old interactions, their objects, the old package and the old phone lookup
    clock.now = T0 + timedelta(hours=3)
    restore(world, tenant, "u-1", old, profile=False)
    world.subjects.lookups[(tenant, "u-1", "phone")] = old.lookups["phone"]
    report = reconcile(ports(world))
    assert report.removed == {
        "profiles": 0,
        "interactions": 2,
        "lookup_items": 1,
        "other_items": 0,
        "data_keys": 0,
        "idempotency_records": 1,
        "object_versions": 2,  # the old long text and the old package, though the restore wrote them just now
        "delete_markers": 0,
    }
    assert report.tenants[0].reused_ids == 1
    # and the new person's profile, interactions, texts, package, key and record are all there
    assert backup(world, tenant, "u-1") == mine
    kept = intake.get_subject(world.intake, tenant, "u-1")
    assert kept.name == "Someone Else"
    listed = intake.list_interactions(world.intake, tenant, "u-1", 10, None)
    assert sorted(i.text[:10] for i in listed.items) == ["L" * 10, "hello from"]
    prefix = object_keys.subject_prefix(tenant, "u-1")
    assert object_keys.export_package_key(tenant, "u-1", new_package) in world.blobs.objects
    assert object_keys.export_package_key(tenant, "u-1", package) not in world.blobs.objects
    assert sum(k.startswith(prefix) for k in world.blobs.objects) == 2
    assert lookup(world, tenant, phone="+12015550177") == []
    assert lookup(world, tenant, email="else@example.org") == ["u-1"]


def test_a_dry_run_counts_and_removes_nothing(world: World, clock: Clock) -> None:
    tenant = world.new_tenant()[0]
    populate(world, tenant, "u-1", T0)
    old = backup(world, tenant, "u-1")
    erase(world, tenant, "u-1", T0 + timedelta(hours=1))
    restore(world, tenant, "u-1", old)
    before = holdings(world, tenant, "u-1")
    dry = reconcile(ports(world), dry_run=True)
    assert dry.removed["interactions"] == 2 and dry.as_dict()["dry_run"] is True
    assert holdings(world, tenant, "u-1") == before
    assert reconcile(ports(world)).removed == dry.removed


def test_a_data_key_alone_that_came_back_goes(world: World) -> None:
    tenant = world.new_tenant()[0]
    populate(world, tenant, "u-1", T0)
    old = backup(world, tenant, "u-1")
    erase(world, tenant, "u-1", T0 + timedelta(hours=1))
    world.data_keys.rows[(tenant, "u-1")] = old.wrapped_key or b""
    world.data_keys.created[(tenant, "u-1")] = old.key_created or ""
    assert reconcile(ports(world)).removed["data_keys"] == 1
    assert world.data_keys.get(tenant, "u-1") is None


def test_an_erasure_still_running_is_left_to_its_job_and_counted(world: World) -> None:
    tenant = world.new_tenant()[0]
    populate(world, tenant, "u-1", T0)
    request_erasure(world, tenant, "u-1", T0)
    p = world.deletion
    assert deletion.run_deletion(p, world.deletion_jobs.sent[0], T0, chunk=1) == "continue"  # stopped midway
    before = holdings(world, tenant, "u-1")
    report = reconcile(ports(world))
    assert report.tenants[0].erasures_running == 1 and report.removed == dict.fromkeys(STORES, 0)
    assert holdings(world, tenant, "u-1") == before


def test_until_reconcile_runs_a_restored_profile_is_refused_by_every_write_and_skipped_by_lookups(
    world: World,
) -> None:
    tenant = world.new_tenant()[0]
    populate(world, tenant, "u-1", T0)
    old = backup(world, tenant, "u-1")
    request_id = erase(world, tenant, "u-1", T0 + timedelta(hours=1))
    restore(world, tenant, "u-1", old)
    later = T0 + timedelta(hours=2)
    w = world
    for attempt in (
        lambda: intake.put_subject(w.intake, tenant, "u-1", PERSON, later),
        lambda: intake.put_subject(w.intake, tenant, "u-1", PERSON, later, reuse_deleted_id=True),
        lambda: intake.get_subject(w.intake, tenant, "u-1"),
        lambda: add_package(w, tenant, "u-1", later),
        lambda: deletion.request_deletion(w.deletion, tenant, "u-1", later),
    ):
        with pytest.raises(Gone) as raised:
            attempt()
        assert raised.value.request_id == request_id
    assert w.data_keys.get(tenant, "u-1") is None  # no new key was made for the restored profile
    assert lookup(world, tenant, email="orla@example.org") == []
    assert lookup(world, tenant, phone="+12015550177") == []


def test_a_restore_of_the_records_loses_no_tombstone_the_ledger_keeps_nor_leaves_an_id_in_clear(
    world: World, clock: Clock
) -> None:
    from chatsphere.logic import ledger

    tenant = world.new_tenant()[0]
    populate(world, tenant, "u-1", T0)
    request_id = request_erasure(world, tenant, "u-1", T0 + timedelta(minutes=30))
    records_then = copy.deepcopy(world.requests.items)  # the erasure asked, not yet carried out
    job = DeletionJob(tenant_id=tenant, request_id=request_id)
    while deletion.run_deletion(world.deletion, job, T0 + timedelta(hours=1)) == "continue":
        pass
    ledger.sequence(world.wiring.ledger, tenant, iso_now())
    subject_hash = world.tombstones.hash(tenant, "u-1")
    # A restore of RequestsTable to before the erasure: the tombstone is gone, the records name u-1 again
    world.requests.items, world.requests.tombstone_items = records_then, {}
    assert any(r.subject_id == "u-1" for r in world.requests.items.values())
    report = reconcile(ports(world))
    acme = report.as_dict()["tenants"][0]  # type: ignore[index]
    assert (acme["tombstones_restored"], acme["records_closed"]) == (1, 1)
    assert acme["records_pseudonymised"] >= 1
    assert all(r.subject_id != "u-1" for r in world.requests.items.values())
    record = world.requests.get(tenant, request_id)
    assert record is not None and (record.status, record.subject_id) == ("completed", subject_hash)
    stone = world.requests.get_tombstone(tenant, subject_hash)
    assert stone is not None and stone.deleted_at is not None
    with pytest.raises(Gone):  # the erased id answers 410 again
        intake.get_subject(world.intake, tenant, "u-1")
    # and the run is in the ledger; a second run changes nothing
    assert [e.type for e in world.outbox.entries(tenant)][-1] == "reconcile.run"
    again = reconcile(ports(world)).as_dict()["tenants"][0]  # type: ignore[index]
    assert (again["tombstones_restored"], again["records_pseudonymised"], again["records_closed"]) == (0, 0, 0)


def iso_now() -> str:
    from chatsphere.models.common import iso

    return iso(T0 + timedelta(hours=2))
