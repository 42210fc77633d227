"""Conditional writes of subjects (If-Match as the write's own condition) and the correction a PUT makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatsphere.errors import PreconditionFailed
from chatsphere.logic import intake, subject_rights
from chatsphere.logic.preconditions import ANY, IfMatch, etag, parse_if_match, require
from chatsphere.models.items import ProfileItem
from chatsphere.models.requests import CorrectionDetails
from chatsphere.models.subjects import Subject, SubjectIn, SubjectPatch
from tests.unit.fakes import World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
ADA = SubjectIn(name="Ada Lovelace", email="ada@example.org", phone="+12015550123")


def put(world: World, tenant: str, body: SubjectIn, if_match: IfMatch = None, sid: str = "u-1") -> Subject:
    w = world
    subject, _ = intake.put_subject(w.intake, tenant, sid, body, LATER, if_match=if_match)
    return subject


def correct(world: World, tenant: str, if_match: IfMatch = None, **fields: object) -> Subject:
    patch = SubjectPatch.model_validate(fields)
    return subject_rights.correct_subject(world.subject_rights, tenant, "u-1", patch, LATER, if_match=if_match)


def stored(world: World, tenant: str) -> ProfileItem | None:
    return world.subjects.get_profile(tenant, "u-1")


# ------------------------------------------------------------------ If-Match
@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (None, None),
        ("*", ANY),
        (" * ", ANY),
        ('"3"', frozenset({3})),
        ('"3", "5" ,"7"', frozenset({3, 5, 7})),
        ('W/"3"', frozenset()),  # If-Match compares strongly: a weak tag never matches
        ('W/"3", "4"', frozenset({4})),
        ('"03"', frozenset()),  # not one of this API's tags: "3" is
        ('"x"', frozenset()),
        ('"99999999999999999999999"', frozenset()),
    ],
)
def test_if_match_names_versions_by_strong_tags_only(header: str | None, parsed: IfMatch) -> None:
    assert parse_if_match(header) == parsed


def test_an_etag_is_the_version_quoted_and_reads_back() -> None:
    assert etag(12) == '"12"'
    assert parse_if_match(etag(12)) == frozenset({12})


def test_require() -> None:
    require(None, None)
    require(ANY, 1)
    require(frozenset({1, 2}), 2)
    cases: list[tuple[IfMatch, int | None]] = [
        (ANY, None),
        (frozenset({1}), None),
        (frozenset({1}), 2),
        (frozenset(), 0),
    ]
    for if_match, version in cases:
        with pytest.raises(PreconditionFailed):
            require(if_match, version)


def test_the_subjects_version_is_its_etag_and_every_write_moves_it(world: World, tenant: str) -> None:
    created = put(world, tenant, ADA)
    assert created.version == 1
    assert "version" not in created.model_dump() and "_version" not in created.model_dump_json()
    assert correct(world, tenant, name="Ada King").version == 2
    assert intake.get_subject(world.intake, tenant, "u-1").version == 2


def test_a_stale_if_match_is_412_and_writes_nothing(world: World, tenant: str) -> None:
    put(world, tenant, ADA)
    correct(world, tenant, name="Ada King")  # version 2
    before, saves = stored(world, tenant), world.subjects.saves
    with pytest.raises(PreconditionFailed):
        correct(world, tenant, frozenset({1}), name="Mallory")
    with pytest.raises(PreconditionFailed):
        put(world, tenant, SubjectIn(name="Mallory"), frozenset({1}))
    assert stored(world, tenant) == before and world.subjects.saves == saves
    assert len(world.subjects.records) == 1  # the correction that made version 2 only


def test_two_writers_with_the_same_etag_one_wins(world: World, tenant: str) -> None:
    seen = frozenset({put(world, tenant, ADA).version})
    assert correct(world, tenant, seen, name="Ada King").name == "Ada King"
    with pytest.raises(PreconditionFailed):
        correct(world, tenant, seen, name="Ada Byron")
    with pytest.raises(PreconditionFailed):
        put(world, tenant, SubjectIn(name="Ada Byron"), seen)
    assert intake.get_subject(world.intake, tenant, "u-1").name == "Ada King"


def test_the_version_read_is_the_writes_own_condition(world: World, tenant: str) -> None:
    # Given a writer holding version 1 whose read races another write (after its check, before its write)
    seen = frozenset({put(world, tenant, ADA).version})
    real_get = world.subjects.get_profile

    def read_then_lose_the_race(tenant_id: str, subject_id: str) -> ProfileItem | None:
        found = real_get(tenant_id, subject_id)
        world.subjects.get_profile = real_get  # type: ignore[method-assign]
        correct(world, tenant, name="Ada King")  # the other writer
        return found

    world.subjects.get_profile = read_then_lose_the_race  # type: ignore[method-assign]
    # Then its write fails its condition, and the re-read check answers 412
    with pytest.raises(PreconditionFailed):
        correct(world, tenant, seen, name="Ada Byron")
    assert intake.get_subject(world.intake, tenant, "u-1").name == "Ada King"


def test_if_match_on_a_subject_that_does_not_exist_creates_nothing(world: World, tenant: str) -> None:
    for if_match in (ANY, frozenset({0}), frozenset({1})):
        with pytest.raises(PreconditionFailed):
            put(world, tenant, ADA, if_match)
    assert stored(world, tenant) is None and world.data_keys.rows == {}


def test_if_match_star_or_the_current_tag_writes(world: World, tenant: str) -> None:
    put(world, tenant, ADA)
    assert put(world, tenant, ADA, ANY).version == 1  # the same document writes nothing and keeps its tag
    assert put(world, tenant, ADA.model_copy(update={"name": "Ada King"}), ANY).version == 2
    assert correct(world, tenant, frozenset({9, 2}), name="Ada Byron").version == 3


# ------------------------------------------------------------ a PUT that corrects
def test_a_put_that_changes_values_leaves_a_correction_record_with_the_profile(world: World, tenant: str) -> None:
    put(world, tenant, ADA)
    assert world.subjects.records == []  # a create is no correction
    saves = world.subjects.saves
    put(world, tenant, SubjectIn(name="Ada Lovelace", email="ada@analytical.example", contact={"x": "y"}))
    (record,) = world.subjects.records  # written in the profile's own save
    assert world.subjects.saves == saves + 1
    assert (record.type, record.status, record.subject_id) == ("correction", "completed", "u-1")
    assert record.details == CorrectionDetails(fields_changed=["contact", "email", "phone"])
    assert "analytical" not in record.model_dump_json()


def test_a_put_that_changes_nothing_leaves_no_record(world: World, tenant: str) -> None:
    put(world, tenant, ADA)
    put(world, tenant, SubjectIn(name="Ada Lovelace", email="ada@EXAMPLE.org", phone="+12015550123"))  # normalised
    assert world.subjects.records == []
