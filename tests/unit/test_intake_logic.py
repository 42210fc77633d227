"""Intake logic over in-memory ports: profiles, lookups, interactions, pages, and their limits."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from chatsphere.errors import Conflict, DeletionInProgress, DomainError, Gone, InvalidInput, NotFound, PayloadTooLarge
from chatsphere.logic import codec, cursors, intake
from chatsphere.logic.crypto import subject_key_context
from chatsphere.models.common import PAGE_BYTE_BUDGET, iso, response_bytes
from chatsphere.models.items import InteractionItem, ProfileAdmission, ProfileItem, TombstoneItem
from chatsphere.models.requests import ProfileRecords
from chatsphere.models.subjects import MAX_TEXT_RESPONSE_BYTES, InteractionIn, InteractionPage, LookupIn, SubjectIn
from tests.unit.fakes import FakeDataKeyStore, FakeSubjectStore, World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KIB = 1024
MIB = 1024 * 1024


def full_profile() -> SubjectIn:
    return SubjectIn(
        name="Ada Lovelace",
        email="Ada.Lovelace@EXAMPLE.org",
        phone="+12015550123",
        contact={"telegram": "@ada_l", "fax": "+44 20 7946 0000"},
    )


def message(text: str = "hello", **fields: object) -> InteractionIn:
    return InteractionIn.model_validate({"conversation_id": "c-1", "role": "customer", "text": text, **fields})


def lookup(world: World, tenant: str, **identifier: str) -> list[str]:
    return intake.lookup_subjects(world.intake, tenant, LookupIn.model_validate(identifier)).subject_ids


def texts(world: World, tenant: str, subject: str) -> list[str]:
    return [i.text for i in intake.list_interactions(world.intake, tenant, subject, 100, None).items]


# ---------------------------------------------------------------- profiles
def test_a_new_subject_is_created_with_its_fields_normalised(world: World, tenant: str) -> None:
    # Given a tenant with no subjects
    # When it puts a full profile
    subject, created = intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    # Then the subject is new, active, and reads back with e-mail domain lower-cased and phone in E.164
    assert created is True
    assert subject.status == "active"
    assert subject.email == "Ada.Lovelace@example.org"
    assert subject.phone == "+12015550123"
    assert subject.contact == {"telegram": "@ada_l", "fax": "+44 20 7946 0000"}
    assert subject.created_at == subject.updated_at == NOW
    assert intake.get_subject(world.intake, tenant, "u-1") == subject


def test_putting_again_replaces_the_whole_profile(world: World, tenant: str) -> None:
    # Given a subject with every field
    intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    # When the tenant puts a profile with the name only
    later = NOW + timedelta(hours=1)
    subject, created = intake.put_subject(world.intake, tenant, "u-1", SubjectIn(name="Ada King"), later)
    # Then it is a replacement: the fields left out are cleared, creation time is kept
    assert created is False
    read = intake.get_subject(world.intake, tenant, "u-1")
    assert read == subject
    assert (read.name, read.email, read.phone, read.contact) == ("Ada King", None, None, None)
    assert read.created_at == NOW
    assert read.updated_at == later


def test_lookup_finds_a_subject_by_email_in_any_case_and_by_phone(world: World, tenant: str) -> None:
    # Given a subject with an e-mail address and a phone number
    intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    # When the tenant looks either up, e-mail in another case
    # Then the subject is found
    assert lookup(world, tenant, email="ada.lovelace@example.ORG") == ["u-1"]
    assert lookup(world, tenant, email="ADA.LOVELACE@example.org") == ["u-1"]
    assert lookup(world, tenant, phone="+12015550123") == ["u-1"]
    assert lookup(world, tenant, email="someone.else@example.org") == []


def test_lookup_follows_a_replaced_email_and_phone(world: World, tenant: str) -> None:
    # Given a subject whose e-mail and phone were replaced
    intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    replacement = SubjectIn(email="ada@analytical.example", phone="+441212345678")
    intake.put_subject(world.intake, tenant, "u-1", replacement, NOW + timedelta(seconds=1))
    # When the tenant looks up the old and the new identifiers
    # Then only the new ones find the subject
    assert lookup(world, tenant, email="Ada.Lovelace@example.org") == []
    assert lookup(world, tenant, phone="+12015550123") == []
    assert lookup(world, tenant, email="ada@analytical.example") == ["u-1"]
    assert lookup(world, tenant, phone="+441212345678") == ["u-1"]


def test_lookup_forgets_identifiers_a_replacement_leaves_out(world: World, tenant: str) -> None:
    # Given a subject whose replacement profile has no e-mail or phone
    intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    intake.put_subject(world.intake, tenant, "u-1", SubjectIn(name="Ada"), NOW + timedelta(seconds=1))
    # Then neither old identifier finds it
    assert lookup(world, tenant, email="ada.lovelace@example.org") == []
    assert lookup(world, tenant, phone="+12015550123") == []


def test_lookup_lists_every_subject_sharing_an_identifier(world: World, tenant: str) -> None:
    # Given two subjects of one tenant with the same e-mail address
    intake.put_subject(world.intake, tenant, "u-2", SubjectIn(email="shared@example.org"), NOW)
    intake.put_subject(world.intake, tenant, "u-1", SubjectIn(email="Shared@Example.org"), NOW)
    # Then a lookup returns both
    assert lookup(world, tenant, email="shared@example.org") == ["u-1", "u-2"]


def test_lookup_never_returns_another_tenants_subjects(world: World, tenant: str) -> None:
    # Given another tenant with a subject that has the same e-mail and phone
    other = world.new_tenant("Globex")[0]
    intake.put_subject(world.intake, other, "theirs", full_profile(), NOW)
    # When this tenant looks them up
    # Then it finds nothing, and the other tenant still finds its own
    assert lookup(world, tenant, email="ada.lovelace@example.org") == []
    assert lookup(world, tenant, phone="+12015550123") == []
    assert lookup(world, other, email="ada.lovelace@example.org") == ["theirs"]


def test_another_tenants_subject_is_not_found(world: World, tenant: str) -> None:
    # Given a subject of another tenant
    other = world.new_tenant("Globex")[0]
    intake.put_subject(world.intake, other, "u-1", full_profile(), NOW)
    # When this tenant reads the same subject id
    # Then it is not found
    with pytest.raises(NotFound):
        intake.get_subject(world.intake, tenant, "u-1")
    with pytest.raises(NotFound):
        intake.add_interaction(world.intake, tenant, "u-1", message(), NOW)


def test_stored_profile_holds_no_personal_value(world: World, tenant: str) -> None:
    # Given a subject with every field
    intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    # When we look at what the store holds
    profile = world.subjects.profiles[(tenant, "u-1")]
    stored = b"".join(profile.sealed.values()) + repr(profile.model_dump(exclude={"sealed"})).encode()
    stored += repr(world.subjects.lookups).encode()
    # Then no value appears in it, in any case
    for value in ("Ada Lovelace", "Ada.Lovelace", "ada.lovelace", "2015550123", "@ada_l", "7946"):
        assert value.encode() not in stored, value


def test_a_concurrent_write_is_retried_on_top_of_the_winner(tenant: str) -> None:
    # Given a store where another writer replaces the profile just before our first save
    class RacingStore(FakeSubjectStore):
        def __init__(self) -> None:
            super().__init__()
            self.raced = False

        def save_profile(
            self,
            profile: ProfileItem,
            expected_version: int | None,
            record: ProfileRecords = None,
            admission: ProfileAdmission | None = None,
        ) -> None:
            if not self.raced:
                self.raced = True
                theirs = profile.model_copy(update={"version": (expected_version or 0) + 1, "sealed": {}})
                super().save_profile(theirs, expected_version, admission=admission)  # and its key, if new
            super().save_profile(profile, expected_version, record, admission)

    world = World(RacingStore())
    tenant = world.new_tenant()[0]
    # When the tenant puts a profile
    _subject, created = intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    # Then the put succeeds after a retry, as a replacement of what the other writer created
    assert world.subjects.saves == 3  # theirs, our conflicting attempt, our retry
    assert created is False
    assert intake.get_subject(world.intake, tenant, "u-1").email == "Ada.Lovelace@example.org"
    assert world.subjects.profiles[(tenant, "u-1")].version == 2


def test_a_write_that_always_conflicts_gives_up_with_conflict(tenant: str) -> None:
    # Given a store where every save loses to another writer
    class HotStore(FakeSubjectStore):
        def save_profile(
            self,
            profile: ProfileItem,
            expected_version: int | None,
            record: ProfileRecords = None,
            admission: ProfileAdmission | None = None,
        ) -> None:
            current = self.profiles.get((profile.tenant_id, profile.subject_id))
            # theirs holds other values (none): with the same values, a retry would change nothing, and write nothing
            version = (current.version if current else 0) + 1
            theirs = profile.model_copy(update={"version": version, "sealed": {}, "lookups": {}})
            super().save_profile(theirs, current.version if current else None, admission=admission)
            super().save_profile(profile, expected_version, record, admission)

    world = World(HotStore())
    tenant = world.new_tenant()[0]
    # When the tenant puts a profile
    # Then it gets a 409 Conflict after a bounded number of attempts, not a hang or a lost write
    with pytest.raises(Conflict) as raised:
        intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW)
    assert raised.value.status == 409
    assert world.subjects.saves == 2 * codec.SAVE_ATTEMPTS


def test_concurrent_first_writers_agree_on_one_data_key() -> None:
    # Given a key store where another writer stores the subject's first key between our read and our write
    class RacingKeys(FakeDataKeyStore):
        def put_if_absent(self, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> bool:
            if (tenant_id, subject_id) not in self.rows:
                theirs = racing.kms.generate(subject_key_context(tenant_id))[1]
                super().put_if_absent(tenant_id, subject_id, theirs, created_at)
            return super().put_if_absent(tenant_id, subject_id, wrapped, created_at)

    racing = World(data_keys=RacingKeys())
    tenant = racing.new_tenant()[0]
    # When the tenant puts a profile
    intake.put_subject(racing.intake, tenant, "u-1", full_profile(), NOW)
    # Then the subject has one key, the other writer's, and its profile opens with it
    assert len(racing.data_keys.rows) == 1
    assert intake.get_subject(racing.intake, tenant, "u-1").name == "Ada Lovelace"


def put(world: World, tenant: str, reuse_deleted_id: bool = False) -> tuple[Any, bool]:
    return intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW, reuse_deleted_id=reuse_deleted_id)


def tombstone(world: World, tenant: str, completed: bool) -> None:
    world.requests.put_tombstone(
        TombstoneItem(
            tenant_id=tenant,
            subject_hash=world.tombstones.hash(tenant, "u-1"),
            request_id="r-1",
            started_at=iso(NOW - timedelta(days=1)),
            deleted_at=iso(NOW - timedelta(hours=1)) if completed else None,
        )
    )


def test_a_new_subject_reads_no_key_and_stores_its_own_in_the_profiles_write(world: World, tenant: str) -> None:
    # Given a key store that counts its reads and writes
    class CountingKeys(FakeDataKeyStore):
        def __init__(self) -> None:
            super().__init__()
            self.reads = self.puts = 0

        def get(self, tenant_id: str, subject_id: str) -> bytes | None:
            self.reads += 1
            return super().get(tenant_id, subject_id)

        def put_if_absent(self, tenant_id: str, subject_id: str, wrapped: bytes, created_at: str) -> bool:
            self.puts += 1
            return super().put_if_absent(tenant_id, subject_id, wrapped, created_at)

    keys = CountingKeys()
    counted = World(data_keys=keys)
    tenant = counted.new_tenant()[0]
    generated = counted.kms.generated  # the tenant's secret
    # When the tenant creates a subject
    _subject, created = put(counted, tenant)
    # Then one key is made and stored by the profile's one save (its admission), and no key was read first
    assert created is True
    assert (counted.subjects.saves, counted.kms.generated - generated, keys.puts, keys.reads) == (1, 1, 1, 0)
    assert keys.created[(tenant, "u-1")] == iso(NOW)
    assert intake.get_subject(counted.intake, tenant, "u-1").name == "Ada Lovelace"


@pytest.mark.parametrize(
    ("completed", "reuse", "error"),
    [(True, False, Gone), (False, False, DeletionInProgress), (False, True, DeletionInProgress)],
)
def test_an_id_refused_by_its_tombstone_gets_the_same_answer_and_no_key(
    world: World, tenant: str, completed: bool, reuse: bool, error: type[DomainError]
) -> None:
    # Given an id whose erasure completed, or still runs (its profile removed, its tombstone not yet completed)
    tombstone(world, tenant, completed)
    # When the tenant puts a subject under it
    with pytest.raises(error):
        put(world, tenant, reuse_deleted_id=reuse)
    # Then nothing is stored: neither a profile nor a key (the create transaction's check refused both at once)
    assert world.subjects.profiles == {} and world.data_keys.rows == {}


def test_a_reused_erased_id_is_created_by_the_transaction_with_a_fresh_key(world: World, tenant: str) -> None:
    # Given an id whose erasure completed
    tombstone(world, tenant, completed=True)
    # When the tenant says that a new person reuses it
    subject, created = put(world, tenant, reuse_deleted_id=True)
    # Then it is created, with a key of its own, in one save
    assert created is True and subject.name == "Ada Lovelace"
    assert world.subjects.saves == 1 and len(world.data_keys.rows) == 1


def test_an_erasure_that_lands_between_the_read_and_the_create_refuses_it(tenant: str) -> None:
    # Given a store where an erased subject's tombstone is completed just before our first save
    class DeletedMeanwhile(FakeSubjectStore):
        erase: Callable[[], None] = staticmethod(lambda: None)

        def save_profile(
            self,
            profile: ProfileItem,
            expected_version: int | None,
            record: ProfileRecords = None,
            admission: ProfileAdmission | None = None,
        ) -> None:
            if self.saves == 0:
                self.erase()
            super().save_profile(profile, expected_version, record, admission)

    store = DeletedMeanwhile()
    world = World(store)
    tenant = world.new_tenant()[0]
    store.erase = lambda: tombstone(world, tenant, completed=True)
    # When the tenant puts a profile (not reusing the id)
    # Then it gets the erased id's 410, and no profile or key is left
    with pytest.raises(Gone):
        put(world, tenant)
    assert world.subjects.profiles == {} and world.data_keys.rows == {}


def test_a_key_left_without_its_profile_is_the_one_the_create_uses(world: World, tenant: str) -> None:
    # Given a key stored for the subject by an earlier attempt whose profile write never happened
    theirs = world.kms.generate(subject_key_context(tenant))[1]
    world.data_keys.put_if_absent(tenant, "u-1", theirs, iso(NOW))
    # When the tenant creates the subject
    _subject, created = put(world, tenant)
    # Then the create is refused once (the key exists), and the retry seals under that key, storing no other
    assert created is True
    assert world.subjects.saves == 2
    assert world.data_keys.rows == {(tenant, "u-1"): theirs}
    assert intake.get_subject(world.intake, tenant, "u-1").name == "Ada Lovelace"


def test_a_create_that_loses_to_a_concurrent_creator_replaces_its_profile_under_its_key(tenant: str) -> None:
    # Given a store where another writer creates the subject, with a key of its own, just before our first save
    class RacingCreator(FakeSubjectStore):
        their_key: Callable[[str], bytes] = staticmethod(lambda tenant_id: b"")

        def save_profile(
            self,
            profile: ProfileItem,
            expected_version: int | None,
            record: ProfileRecords = None,
            admission: ProfileAdmission | None = None,
        ) -> None:
            if admission is not None and self.saves == 0:
                theirs = self.their_key(profile.tenant_id)
                super().save_profile(
                    profile.model_copy(update={"sealed": {}}),
                    None,
                    None,
                    admission.model_copy(update={"wrapped_key": theirs}),
                )
            super().save_profile(profile, expected_version, record, admission)

    store = RacingCreator()
    world = World(store)
    store.their_key = lambda tenant_id: world.kms.generate(subject_key_context(tenant_id))[1]
    tenant = world.new_tenant()[0]
    # When the tenant puts the profile
    subject, created = put(world, tenant)
    # Then it replaces the other writer's, sealed under the other writer's key (the only key stored)
    assert created is False and subject.name == "Ada Lovelace"
    assert len(world.data_keys.rows) == 1
    assert intake.get_subject(world.intake, tenant, "u-1").name == "Ada Lovelace"
    assert world.subjects.profiles[(tenant, "u-1")].version == 2


# ---------------------------------------------------------------- interactions
@pytest.fixture
def subject(world: World, tenant: str) -> str:
    intake.put_subject(world.intake, tenant, "u-1", full_profile(), NOW - timedelta(days=400))
    return "u-1"


@pytest.mark.parametrize(
    ("text", "inline"),
    [
        pytest.param("a" * (32 * KIB), True, id="exactly-32KiB-inline"),
        pytest.param("a" * (32 * KIB + 1), False, id="32KiB+1-to-blob"),
        pytest.param("é" * (16 * KIB), True, id="32KiB-of-2-byte-chars-inline"),
        pytest.param("é" * (16 * KIB) + "a", False, id="32KiB+1-bytes-of-fewer-chars-to-blob"),
    ],
)
def test_text_up_to_32_kib_is_stored_inline_and_longer_text_in_the_blob_store(
    world: World, tenant: str, subject: str, text: str, inline: bool
) -> None:
    # When an interaction of this size (in UTF-8 bytes) is added
    created = intake.add_interaction(world.intake, tenant, subject, message(text), NOW)
    # Then it is inline or in a blob under the subject's prefix, and reads back whole either way
    (item,) = world.subjects.all_interactions(tenant, subject)
    assert item.text_bytes == len(text.encode())
    if inline:
        assert item.text_sealed is not None
        assert item.text_blob_key is None
        assert world.blobs.objects == {}
    else:
        assert item.text_sealed is None
        assert item.text_blob_key == f"tenants/{tenant}/subjects/{subject}/interactions/{created.interaction_id}"
        assert list(world.blobs.objects) == [item.text_blob_key]
        assert text.encode() not in world.blobs.objects[item.text_blob_key]
    assert texts(world, tenant, subject) == [text]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * MIB, id="1MiB-ascii"),
        pytest.param("€" * (MIB // 3) + "a", id="1MiB-of-3-byte-chars"),
    ],
)
def test_text_of_exactly_1_mib_is_accepted(world: World, tenant: str, subject: str, text: str) -> None:
    assert len(text.encode()) == MIB
    intake.add_interaction(world.intake, tenant, subject, message(text), NOW)
    assert texts(world, tenant, subject) == [text]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * (MIB + 1), id="1MiB+1-ascii"),
        pytest.param("€" * (MIB // 3) + "ab", id="1MiB+1-bytes-of-far-fewer-chars"),
    ],
)
def test_text_over_1_mib_is_refused_as_too_large_and_nothing_is_stored(
    world: World, tenant: str, subject: str, text: str
) -> None:
    assert len(text.encode()) == MIB + 1
    with pytest.raises(PayloadTooLarge) as raised:
        intake.add_interaction(world.intake, tenant, subject, message(text), NOW)
    assert raised.value.status == 413
    assert text not in raised.value.detail
    assert world.subjects.all_interactions(tenant, subject) == []
    assert world.blobs.objects == {}


def test_an_interaction_in_the_future_is_refused(world: World, tenant: str, subject: str) -> None:
    # When occurred_at lies one microsecond after now
    with pytest.raises(InvalidInput) as raised:
        intake.add_interaction(world.intake, tenant, subject, message(occurred_at=NOW + timedelta(microseconds=1)), NOW)
    # Then it is a 422 and nothing is stored
    assert raised.value.status == 422
    assert world.subjects.all_interactions(tenant, subject) == []


def test_occurred_at_defaults_to_now_and_may_be_now_or_past(world: World, tenant: str, subject: str) -> None:
    first = intake.add_interaction(world.intake, tenant, subject, message("default"), NOW)
    at_now = intake.add_interaction(world.intake, tenant, subject, message("now", occurred_at=NOW), NOW)
    past = NOW - timedelta(days=3650)
    old = intake.add_interaction(world.intake, tenant, subject, message("old", occurred_at=past), NOW)
    assert (first.occurred_at, at_now.occurred_at, old.occurred_at) == (NOW, NOW, past)


def test_occurred_at_in_another_offset_is_kept_as_the_same_instant(world: World, tenant: str, subject: str) -> None:
    local = datetime(2025, 3, 1, 4, 0, tzinfo=timezone(timedelta(hours=-5)))
    created = intake.add_interaction(world.intake, tenant, subject, message(occurred_at=local), NOW)
    assert created.occurred_at == local
    page = intake.list_interactions(world.intake, tenant, subject, 10, None)
    assert page.items[0].occurred_at == local


def test_very_old_interactions_list_first_and_read_back(world: World, tenant: str, subject: str) -> None:
    # Given an archive import with interactions from the years 999 and 1 among recent ones
    ancient = [datetime(999, 5, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]
    intake.add_interaction(world.intake, tenant, subject, message("recent", occurred_at=NOW - timedelta(days=1)), NOW)
    for at in ancient:
        created = intake.add_interaction(world.intake, tenant, subject, message(f"year {at.year}", occurred_at=at), NOW)
        assert created.occurred_at == at
    # Then they list oldest first, each page after the first reachable by cursor
    first = intake.list_interactions(world.intake, tenant, subject, 1, None)
    assert [i.text for i in first.items] == ["year 1"]
    assert first.next_cursor is not None
    second = intake.list_interactions(world.intake, tenant, subject, 1, first.next_cursor)
    assert [i.text for i in second.items] == ["year 999"]
    assert texts(world, tenant, subject) == ["year 1", "year 999", "recent"]


def test_a_deactivated_subject_takes_no_interactions(world: World, tenant: str, subject: str) -> None:
    # Given a deactivated subject
    profile = world.subjects.get_profile(tenant, subject)
    assert profile is not None
    world.subjects.save_profile(
        profile.model_copy(update={"status": "deactivated", "version": profile.version + 1}), profile.version
    )
    # When an interaction is added
    with pytest.raises(Conflict) as raised:
        intake.add_interaction(world.intake, tenant, subject, message(), NOW)
    # Then it is a 409 and nothing is stored
    assert raised.value.status == 409
    assert world.subjects.all_interactions(tenant, subject) == []
    assert world.blobs.objects == {}


def test_a_long_interaction_refused_at_its_write_removes_exactly_the_version_it_wrote(
    world: World, tenant: str, subject: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a long interaction whose text is in the blob store when the subject is deactivated, and another
    # writer that put a second version under the same key meanwhile
    original = world.subjects.add_interaction
    written: list[str] = []

    def deactivated_first(item: InteractionItem, accepts: str | None = None) -> None:
        assert item.text_blob_key is not None
        written.append(world.blobs.write(item.text_blob_key, b"another writer's version"))
        profile = world.subjects.get_profile(tenant, subject)
        assert profile is not None
        world.subjects.save_profile(
            profile.model_copy(update={"status": "deactivated", "version": profile.version + 1}), profile.version
        )
        original(item, accepts)

    monkeypatch.setattr(world.subjects, "add_interaction", deactivated_first)
    # When the interaction's write is refused
    with pytest.raises(Conflict):
        intake.add_interaction(world.intake, tenant, subject, message("L" * (40 * KIB)), NOW)
    # Then the version it wrote is gone, with no delete marker, and the other writer's version stays
    assert world.subjects.all_interactions(tenant, subject) == []
    (versions,) = world.blobs.versions_of.values()
    assert [v for v, _ in versions] == written
    assert world.blobs.markers == {}


def test_an_interaction_for_an_unknown_subject_is_not_found(world: World, tenant: str) -> None:
    with pytest.raises(NotFound):
        intake.add_interaction(world.intake, tenant, "nobody", message(), NOW)
    assert world.subjects.interactions == {}
    assert world.data_keys.rows == {}


def test_interactions_list_oldest_first_including_later_historical_imports(
    world: World, tenant: str, subject: str
) -> None:
    # Given live interactions, then an import of older ones added afterwards
    for minutes, text in [(10, "third"), (20, "fourth")]:
        intake.add_interaction(
            world.intake,
            tenant,
            subject,
            message(text, occurred_at=NOW + timedelta(minutes=minutes)),
            NOW + timedelta(hours=1),
        )
    for days, text in [(30, "first"), (1, "second")]:
        intake.add_interaction(
            world.intake,
            tenant,
            subject,
            message(text, occurred_at=NOW - timedelta(days=days)),
            NOW + timedelta(hours=1),
        )
    # When the tenant lists them
    # Then they come in order of occurrence, not of arrival
    assert texts(world, tenant, subject) == ["first", "second", "third", "fourth"]


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8, 100])
def test_pages_walk_every_interaction_exactly_once_and_the_last_page_says_so(
    world: World, tenant: str, subject: str, limit: int
) -> None:
    # Given seven interactions, two of them at the same instant
    expected = []
    for n in range(7):
        at = NOW - timedelta(minutes=10 - min(n, 5))
        expected.append(
            intake.add_interaction(world.intake, tenant, subject, message(f"m{n}", occurred_at=at), NOW).interaction_id
        )
    # When the tenant follows next_cursor until it is null
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = intake.list_interactions(world.intake, tenant, subject, limit, cursor)
        pages += 1
        assert len(page.items) <= limit
        seen += [i.interaction_id for i in page.items]
        if page.next_cursor is None:
            break
        assert page.items, "a page with a cursor must not be empty"
        cursor = page.next_cursor
    # Then every interaction came exactly once, in as few pages as the limit allows
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert pages == max(1, -(-7 // limit))


def walk_pages(world: World, tenant: str, subject: str, limit: int = 100) -> list[InteractionPage]:
    pages: list[InteractionPage] = []
    cursor = None
    while True:
        pages.append(intake.list_interactions(world.intake, tenant, subject, limit, cursor))
        cursor = pages[-1].next_cursor
        if cursor is None:
            return pages
        assert pages[-1].items, "a page with a cursor must not be empty"


def items_bytes(page: InteractionPage) -> int:
    return sum(response_bytes(i) + 1 for i in page.items)


@pytest.mark.parametrize(
    "long_text",
    [
        pytest.param(lambda n: chr(ord("a") + n) * 1_000_000, id="seven-1MB-ascii"),
        pytest.param(lambda n: 'é"' * 349_525, id="seven-1MiB-of-e-acute-and-quotes-3.8MB-each-in-a-response"),
    ],
)
def test_a_page_ends_before_its_items_pass_the_byte_budget_and_the_cursor_goes_on_from_there(
    world: World, tenant: str, subject: str, long_text: Any
) -> None:
    """Pages are capped by count and a text may be 1 MiB: seven would be a 7 MB answer, over Lambda's 6 MB."""
    # Given seven long texts, each in its own minute, and a short one
    texts_in = [long_text(n) for n in range(7)] + ["short"]
    expected = []
    for n, text in enumerate(texts_in):
        at = NOW - timedelta(minutes=10 - n)
        body = message(text, occurred_at=at)
        created = intake.add_interaction(world.intake, tenant, subject, body, NOW)
        expected.append(created.interaction_id)
    # When the tenant lists them, 100 a page
    pages = walk_pages(world, tenant, subject)
    # Then no page's items take more than the budget, the first stopped short of the count, and the cursors
    # gave every interaction exactly once, in order
    assert len(pages) > 1 and len(pages[0].items) < len(texts_in)
    for page in pages:
        assert items_bytes(page) <= PAGE_BYTE_BUDGET
    seen = [i for page in pages for i in page.items]
    assert [i.interaction_id for i in seen] == expected
    assert [i.text for i in seen] == texts_in


def test_one_interaction_always_fits_a_page_even_at_the_most_a_text_may_take(
    world: World, tenant: str, subject: str
) -> None:
    # Given two interactions whose texts take the most a response may carry of one (control characters: 7 bytes
    # each once escaped twice), then one of 1 MiB of 2-byte characters
    most = "\x01" * ((MAX_TEXT_RESPONSE_BYTES - 4) // 7)
    assert response_bytes(most) <= MAX_TEXT_RESPONSE_BYTES < response_bytes(most + "\x01")
    texts_in = [most, most, "é" * (MIB // 2)]
    for n, text in enumerate(texts_in):
        body = message(text, occurred_at=NOW - timedelta(minutes=5 - n))
        intake.add_interaction(world.intake, tenant, subject, body, NOW)
    # Then each comes on a page of its own, within the budget
    pages = walk_pages(world, tenant, subject)
    assert [[i.text for i in p.items] for p in pages] == [[t] for t in texts_in]
    assert all(items_bytes(p) <= PAGE_BYTE_BUDGET for p in pages)


def test_a_text_that_would_not_fit_a_page_once_escaped_is_too_large_and_nothing_is_stored(
    world: World, tenant: str, subject: str
) -> None:
    # A text under 1 MiB of UTF-8, of control characters only: 7 bytes each in a response
    text = "\x01" * ((MAX_TEXT_RESPONSE_BYTES - 4) // 7 + 1)
    assert len(text.encode()) < MIB
    with pytest.raises(PayloadTooLarge) as raised:
        intake.add_interaction(world.intake, tenant, subject, message(text), NOW)
    assert raised.value.status == 413 and "escaped" in raised.value.detail
    assert world.subjects.all_interactions(tenant, subject) == []
    assert world.blobs.objects == {}


def test_a_cursor_round_trips_only_in_its_own_scope() -> None:
    sk = "I#2025-03-01T12:00:00.000000Z#" + "ab" * 16
    cursor = cursors.sign(b"k" * 32, "interactions\nu-1", sk)
    assert cursors.verify(b"k" * 32, "interactions\nu-1", cursor) == sk
    for secret, scope in ((b"k" * 32, "interactions\nu-2"), (b"j" * 32, "interactions\nu-1")):
        with pytest.raises(DomainError):
            cursors.verify(secret, scope, cursor)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("x", id="one-char"),
        pytest.param(_b64("PROFILE"), id="another-item"),
        pytest.param(_b64("LOOKUP#email"), id="lookup-item"),
        pytest.param(_b64("I#2025-03-01T12:00:00Z#" + "ab" * 16), id="time-without-micros"),
        pytest.param(_b64("I#2025-03-01T12:00:00.000000Z#" + "AB" * 16), id="not-our-id"),
        pytest.param(_b64("I#2025-03-01T12:00:00.000000Z#" + "ab" * 16 + "#x"), id="trailing"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(), id="not-utf8"),
    ],
)
def test_a_cursor_this_api_did_not_return_is_a_bad_request(
    world: World, tenant: str, subject: str, cursor: str
) -> None:
    with pytest.raises(DomainError) as raised:
        intake.list_interactions(world.intake, tenant, subject, 10, cursor)
    assert raised.value.status == 400


def test_a_tampered_cursor_is_a_bad_request(world: World, tenant: str, subject: str) -> None:
    # Given a real cursor
    for n in range(3):
        intake.add_interaction(world.intake, tenant, subject, message(f"m{n}"), NOW - timedelta(minutes=n))
    cursor = intake.list_interactions(world.intake, tenant, subject, 1, None).next_cursor
    assert cursor is not None
    # When its position is edited and re-encoded (keeping the old signature)
    body, _, tag = cursor.partition(".")
    position = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    tampered = f"{_b64(position.replace('Z#', 'X#'))}.{tag}"
    assert tampered != cursor
    # Then the next page is a 400, not an arbitrary page
    with pytest.raises(DomainError) as raised:
        intake.list_interactions(world.intake, tenant, subject, 1, tampered)
    assert raised.value.status == 400


# ---------------------------------------------------------------- crypto-shredding
def test_a_subject_whose_key_is_shredded_is_gone(world: World, tenant: str, subject: str) -> None:
    # Given a subject with an interaction, whose data key is then deleted
    intake.add_interaction(world.intake, tenant, subject, message("x" * (40 * KIB)), NOW)
    world.data_keys.destroy(tenant, subject)
    # Then reading, listing and adding all say the subject is not found
    with pytest.raises(NotFound):
        intake.get_subject(world.intake, tenant, subject)
    with pytest.raises(NotFound):
        intake.list_interactions(world.intake, tenant, subject, 10, None)
    with pytest.raises(NotFound):
        intake.add_interaction(world.intake, tenant, subject, message(), NOW)


@pytest.mark.parametrize(
    ("stored", "other"),
    [("straße@example.com", "strasse@example.com"), ("a\u03c2@example.com", "a\u03c3@example.com")],
)
def test_lookup_never_makes_two_different_mailboxes_equal(world: World, tenant: str, stored: str, other: str) -> None:
    # Given a subject stored with one mailbox
    intake.put_subject(world.intake, tenant, "u-1", SubjectIn(email=stored), NOW)
    # When the tenant looks up a different mailbox that full case-folding would confuse with it
    # Then it finds nobody, while the stored one is found
    assert lookup(world, tenant, email=other) == []
    assert lookup(world, tenant, email=stored) == ["u-1"]


def test_lookup_matches_case_and_the_idna_form_of_the_domain(world: World, tenant: str) -> None:
    intake.put_subject(world.intake, tenant, "u-1", SubjectIn(email="Ada@Bücher.de"), NOW)
    for same in ("ada@bücher.de", "ADA@BÜCHER.DE", "ada@xn--bcher-kva.de"):
        assert lookup(world, tenant, email=same) == ["u-1"], same
