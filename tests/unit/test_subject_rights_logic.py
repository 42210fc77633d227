"""Subject rights logic over in-memory ports: correction, objection and deactivation, each with its record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chatsphere.errors import Conflict, NotFound
from chatsphere.logic import intake, subject_rights
from chatsphere.models.requests import CorrectionDetails, DeactivationDetails, ObjectionDetails, RequestItem
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import InteractionIn, LookupIn, ObjectablePurpose, Subject, SubjectIn, SubjectPatch
from tests.unit.fakes import World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)


@pytest.fixture
def subject(world: World, tenant: str) -> str:
    body = SubjectIn(
        name="Ada Lovelace",
        email="ada@example.org",
        phone="+12015550123",
        contact={"telegram": "@ada_l"},
    )
    intake.put_subject(world.intake, tenant, "u-1", body, NOW - timedelta(days=1))
    return "u-1"


def correct(world: World, tenant: str, subject: str, at: datetime = LATER, **fields: Any) -> Subject:
    patch = SubjectPatch.model_validate(fields)
    return subject_rights.correct_subject(world.subject_rights, tenant, subject, patch, at)


def object_to(
    world: World, tenant: str, subject: str, purpose: ObjectablePurpose, objecting: bool = True, at: datetime = LATER
) -> Subject:
    return subject_rights.set_objection(world.subject_rights, tenant, subject, purpose, at, on=objecting)


def deactivate(world: World, tenant: str, subject: str, deactivated: bool = True, at: datetime = LATER) -> Subject:
    return subject_rights.set_deactivated(world.subject_rights, tenant, subject, at, on=deactivated)


def lookup(world: World, tenant: str, **identifier: str) -> list[str]:
    return intake.lookup_subjects(world.intake, tenant, LookupIn.model_validate(identifier)).subject_ids


def add_message(world: World, tenant: str, subject: str, at: datetime = LATER) -> None:
    body = InteractionIn(conversation_id="c-1", role="customer", text="hello")
    intake.add_interaction(world.intake, tenant, subject, body, at)


def only_record(world: World) -> RequestItem:
    (record,) = world.subjects.records
    return record


# ---------------------------------------------------------------- correction
def test_a_correction_changes_the_given_fields_and_keeps_the_others(world: World, tenant: str, subject: str) -> None:
    # Given a subject with every field
    # When the tenant corrects the name only
    corrected = correct(world, tenant, subject, name="Ada King")
    # Then the name changed and every other field stayed, also when read back
    read = intake.get_subject(world.intake, tenant, subject)
    assert read == corrected
    assert read.name == "Ada King"
    assert (read.email, read.phone, read.contact) == ("ada@example.org", "+12015550123", {"telegram": "@ada_l"})
    assert read.updated_at == LATER
    assert read.created_at == NOW - timedelta(days=1)


def test_a_null_in_the_correction_clears_that_field_only(world: World, tenant: str, subject: str) -> None:
    # When the tenant sends phone: null and contact: null
    correct(world, tenant, subject, phone=None, contact=None)
    # Then those two are cleared, name and e-mail are kept
    read = intake.get_subject(world.intake, tenant, subject)
    assert (read.name, read.email, read.phone, read.contact) == ("Ada Lovelace", "ada@example.org", None, None)
    # and the cleared phone no longer finds the subject
    assert lookup(world, tenant, phone="+12015550123") == []
    assert lookup(world, tenant, email="ada@example.org") == [subject]


def test_the_correction_record_names_exactly_the_fields_whose_value_changed(
    world: World, tenant: str, subject: str
) -> None:
    # When the tenant sends a new e-mail, the same name, a null for a field that is set and one that changes
    correct(
        world,
        tenant,
        subject,
        name="Ada Lovelace",
        email="ada.king@example.org",
        phone=None,
        contact={"telegram": "@ada_l", "signal": "+12015550123"},
    )
    # Then one completed correction record was written with the profile, naming only the changed fields
    record = only_record(world)
    assert world.subjects.saves == 2  # the initial put and the correction: the record joined the latter
    assert (record.type, record.status, record.tenant_id, record.subject_id) == (
        "correction",
        "completed",
        tenant,
        subject,
    )
    assert record.details == CorrectionDetails(fields_changed=["contact", "email", "phone"])
    assert record.received_at == record.completed_at
    assert datetime.fromisoformat(record.received_at) == LATER


def test_a_correction_that_changes_nothing_leaves_no_record(world: World, tenant: str, subject: str) -> None:
    # When the tenant sends the values the subject has already, and a null for a field never set
    other_subject = "u-2"
    intake.put_subject(world.intake, tenant, other_subject, SubjectIn(name="Bo"), NOW)
    correct(world, tenant, other_subject, name="Bo", email=None)
    # Then it answers as before and leaves no record: nothing was corrected
    assert world.subjects.records == []
    read = intake.get_subject(world.intake, tenant, other_subject)
    assert (read.name, read.email) == ("Bo", None)


def test_the_correction_record_uses_the_tenants_deadline(world: World, tenant: str, subject: str) -> None:
    world.tenants.put_settings(tenant, TenantSettings(deadline_days=10), "x")
    correct(world, tenant, subject, name="Ada King")
    assert datetime.fromisoformat(only_record(world).due_at) == LATER + timedelta(days=10)


def test_lookups_follow_a_corrected_email_and_phone(world: World, tenant: str, subject: str) -> None:
    # Given the subject is found by its e-mail and phone
    assert lookup(world, tenant, email="ada@example.org") == [subject]
    # When both are corrected
    correct(world, tenant, subject, email="Ada@Analytical.example", phone="+441212345678")
    # Then the new values find it (e-mail in any case), the old ones do not
    assert lookup(world, tenant, email="ada@analytical.example") == [subject]
    assert lookup(world, tenant, phone="+441212345678") == [subject]
    assert lookup(world, tenant, email="ada@example.org") == []
    assert lookup(world, tenant, phone="+12015550123") == []


def test_a_correction_merges_contact_entry_by_entry_and_null_removes_an_entry(
    world: World, tenant: str, subject: str
) -> None:
    """RFC 7396 all the way down, as settings PATCH: {telegram} + {skype} is both, {telegram: null} removes one."""
    # When the tenant adds a skype entry, then removes the telegram one
    added = correct(world, tenant, subject, contact={"skype": "ada.l"})
    removed = correct(world, tenant, subject, contact={"telegram": None, "skype": "ada.lovelace"})
    # Then the first merged, the second removed one entry and changed the other, and nothing else changed
    assert added.contact == {"telegram": "@ada_l", "skype": "ada.l"}
    read = intake.get_subject(world.intake, tenant, subject)
    assert read == removed and read.contact == {"skype": "ada.lovelace"}
    assert (read.name, read.email, read.phone) == ("Ada Lovelace", "ada@example.org", "+12015550123")
    assert [r.details for r in world.subjects.records] == [CorrectionDetails(fields_changed=["contact"])] * 2


def test_a_correction_whose_result_is_not_a_valid_profile_writes_nothing(
    world: World, tenant: str, subject: str
) -> None:
    # Given a subject with one contact entry; when a patch, valid on its own, adds 32 more (a profile holds 32)
    with pytest.raises(ValidationError) as raised:
        correct(world, tenant, subject, contact={f"k{n}": "v" for n in range(32)})
    # Then the merged profile is refused as a PUT body would be, and nothing is written
    assert [e["loc"] for e in raised.value.errors()] == [("contact",)]
    assert world.subjects.saves == 1 and world.subjects.records == []
    read = intake.get_subject(world.intake, tenant, subject)
    assert read.contact == {"telegram": "@ada_l"}


def test_a_correction_of_an_unknown_subject_is_not_found_and_writes_nothing(world: World, tenant: str) -> None:
    with pytest.raises(NotFound) as raised:
        correct(world, tenant, "nobody", name="X")
    assert raised.value.status == 404
    assert world.subjects.profiles == {}
    assert world.subjects.records == []


def test_a_correction_of_another_tenants_subject_is_not_found(world: World, tenant: str, subject: str) -> None:
    # Given another tenant, asking for this tenant's subject id
    other = world.new_tenant("Globex")[0]
    # When it corrects the subject
    with pytest.raises(NotFound):
        correct(world, other, subject, name="Mallory")
    # Then the subject is untouched and no record was written
    assert intake.get_subject(world.intake, tenant, subject).name == "Ada Lovelace"
    assert world.subjects.records == []
    assert (other, subject) not in world.subjects.profiles


# ---------------------------------------------------------------- objection
def test_an_objection_stops_that_purpose_and_is_recorded(world: World, tenant: str, subject: str) -> None:
    # When the subject objects to analytics
    result = object_to(world, tenant, subject, "analytics")
    # Then analytics is listed and no longer allowed; every other purpose still is
    assert result.objections == ["analytics"]
    assert result.processing["analytics"] is False
    assert all(allowed for purpose, allowed in result.processing.items() if purpose != "analytics")
    assert intake.get_subject(world.intake, tenant, subject).objections == ["analytics"]
    # and the record says what was done
    record = only_record(world)
    assert (record.type, record.status) == ("objection", "completed")
    assert record.details == ObjectionDetails(purpose="analytics", action="object", changed=True)


def test_objecting_twice_keeps_the_first_since_and_leaves_no_second_record(
    world: World, tenant: str, subject: str
) -> None:
    # Given an objection made at LATER
    object_to(world, tenant, subject, "personalization", at=LATER)
    # When the subject objects to the same purpose again a day later
    result = object_to(world, tenant, subject, "personalization", at=LATER + timedelta(days=1))
    # Then it still objects, since the first time, and only the first call left a record
    assert result.objections == ["personalization"]
    profile = world.subjects.get_profile(tenant, subject)
    assert profile is not None
    assert datetime.fromisoformat(profile.objections["personalization"]) == LATER
    assert only_record(world).details == ObjectionDetails(purpose="personalization", action="object", changed=True)


def test_withdrawing_an_objection_allows_the_purpose_again(world: World, tenant: str, subject: str) -> None:
    # Given objections to analytics and improvement
    object_to(world, tenant, subject, "analytics")
    object_to(world, tenant, subject, "improvement")
    # When the analytics objection is withdrawn
    result = object_to(world, tenant, subject, "analytics", objecting=False)
    # Then only improvement is objected to
    assert result.objections == ["improvement"]
    assert result.processing["analytics"] is True
    assert result.processing["improvement"] is False
    assert world.subjects.records[-1].details == ObjectionDetails(purpose="analytics", action="withdraw", changed=True)


def test_withdrawing_an_objection_never_made_leaves_no_record(world: World, tenant: str, subject: str) -> None:
    result = object_to(world, tenant, subject, "improvement", objecting=False)
    assert result.objections == []
    assert world.subjects.records == []


def test_an_objection_keeps_the_profile_values(world: World, tenant: str, subject: str) -> None:
    result = object_to(world, tenant, subject, "analytics")
    assert (result.name, result.email, result.phone) == ("Ada Lovelace", "ada@example.org", "+12015550123")
    assert lookup(world, tenant, email="ada@example.org") == [subject]


def test_an_objection_for_an_unknown_or_another_tenants_subject_is_not_found(
    world: World, tenant: str, subject: str
) -> None:
    other = world.new_tenant("Globex")[0]
    with pytest.raises(NotFound):
        object_to(world, tenant, "nobody", "analytics")
    with pytest.raises(NotFound):
        object_to(world, other, subject, "analytics")
    assert world.subjects.records == []
    assert intake.get_subject(world.intake, tenant, subject).objections == []


def test_an_objection_for_a_subject_whose_key_is_shredded_is_not_found_and_writes_nothing(
    world: World, tenant: str, subject: str
) -> None:
    # Given a subject whose data key was deleted (the first step of erasure), its rows still present
    world.data_keys.destroy(tenant, subject)
    before = world.subjects.get_profile(tenant, subject)
    # When the tenant records an objection
    with pytest.raises(NotFound):
        object_to(world, tenant, subject, "analytics")
    # Then nothing is recorded as done for a subject that is gone
    assert world.subjects.records == []
    assert world.subjects.get_profile(tenant, subject) == before


# ---------------------------------------------------------------- deactivation
def test_a_deactivated_subject_takes_no_interactions_until_reactivated(world: World, tenant: str, subject: str) -> None:
    # Given an active subject that takes interactions
    add_message(world, tenant, subject, at=LATER - timedelta(minutes=1))
    # When it is deactivated
    result = deactivate(world, tenant, subject)
    # Then it reads as deactivated with its data kept, and a new interaction is refused
    assert result.status == "deactivated"
    assert result.name == "Ada Lovelace"
    assert intake.get_subject(world.intake, tenant, subject).status == "deactivated"
    with pytest.raises(Conflict):
        add_message(world, tenant, subject, at=LATER)
    assert len(world.subjects.all_interactions(tenant, subject)) == 1
    # When it is reactivated
    again = deactivate(world, tenant, subject, deactivated=False, at=LATER + timedelta(hours=1))
    # Then it takes interactions again
    assert again.status == "active"
    add_message(world, tenant, subject, at=LATER + timedelta(hours=1))
    assert len(world.subjects.all_interactions(tenant, subject)) == 2


def test_deactivation_leaves_a_record_only_when_the_status_changes(world: World, tenant: str, subject: str) -> None:
    # When the subject is deactivated twice, then reactivated twice
    deactivate(world, tenant, subject)
    deactivate(world, tenant, subject)
    deactivate(world, tenant, subject, deactivated=False)
    deactivate(world, tenant, subject, deactivated=False)
    # Then two completed records: the second of each pair changed nothing and left none
    assert [r.details for r in world.subjects.records] == [
        DeactivationDetails(action="deactivate", changed=True),
        DeactivationDetails(action="reactivate", changed=True),
    ]
    assert {(r.type, r.status, r.subject_id) for r in world.subjects.records} == {
        ("deactivation", "completed", subject)
    }


def test_deactivating_an_unknown_or_another_tenants_subject_is_not_found(
    world: World, tenant: str, subject: str
) -> None:
    other = world.new_tenant("Globex")[0]
    with pytest.raises(NotFound):
        deactivate(world, tenant, "nobody")
    with pytest.raises(NotFound):
        deactivate(world, other, subject)
    assert world.subjects.records == []
    assert intake.get_subject(world.intake, tenant, subject).status == "active"
