"""The description of processing over in-memory ports: the record of processing (GDPR art. 30) and the export's
processing record come from one builder; its flags fire when something is missing and only then; its counts are
the stores'."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from chatsphere.logic import intake, processing
from chatsphere.logic.requests import new_request
from chatsphere.models.processing import RecordOfProcessing
from chatsphere.models.requests import ExportDetails
from chatsphere.models.settings import Controller, Processor, Purposes, TenantSettings
from chatsphere.models.subjects import PURPOSES, InteractionIn, SubjectIn
from tests.page_check import assert_self_contained
from tests.unit.fakes import World

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
EU = Processor(name="MailCo", purpose="e-mail delivery", data_categories=["contact"], country="IE")
US = Processor(name="CloudAI", purpose="reply drafts", data_categories=["interactions"], country="US")
CONTROLLER = Controller(name="Acme Shop Ltd", contact="privacy@acme.example", dpo_contact="dpo@acme.example")


def build(world: World, tenant: str, settings: TenantSettings) -> RecordOfProcessing:
    world.tenants.put_settings(tenant, settings, "x")
    return processing.record_of_processing(world.wiring.processing, tenant, NOW)


def test_a_processor_outside_the_eea_without_a_safeguard_is_flagged_and_with_one_is_not(
    world: World, tenant: str
) -> None:
    record = build(world, tenant, TenantSettings(processors=[EU, US]))
    assert [(f.kind, f.subject) for f in record.flags] == [("transfer_without_safeguard", "CloudAI")]
    assert [(t.processor, t.country, t.safeguard) for t in record.transfers] == [("CloudAI", "US", None)]
    assert "transfer_without_safeguard: CloudAI" in processing.to_html(record)
    guarded = US.model_copy(update={"safeguard": "SCC 2021/914"})
    record = build(world, tenant, TenantSettings(processors=[EU, guarded]))
    assert record.flags == [] and record.transfers[0].safeguard == "SCC 2021/914"
    assert "Nothing is missing." in processing.to_html(record)
    # Norway is in the EEA, Switzerland is not (an adequacy decision is a safeguard the tenant states)
    record = build(world, tenant, TenantSettings(processors=[EU.model_copy(update={"country": "NO"})]))
    assert record.transfers == [] and record.flags == []
    record = build(world, tenant, TenantSettings(processors=[EU.model_copy(update={"country": "CH"})]))
    assert [f.kind for f in record.flags] == ["transfer_without_safeguard"]


def test_a_category_a_processor_receives_with_no_retention_period_is_flagged(world: World, tenant: str) -> None:
    tracker = Processor(name="Tracker", purpose="usage statistics", data_categories=["usage"], country="FR")
    record = build(world, tenant, TenantSettings(processors=[EU, tracker]))
    assert [(f.kind, f.subject) for f in record.flags] == [("category_without_retention", "usage")]
    assert record.retention["usage"].days is None and "usage" in record.data_categories
    # the settings' own categories all have a period: no flag without such a processor
    assert build(world, tenant, TenantSettings(processors=[EU])).flags == []
    assert "usage" not in build(world, tenant, TenantSettings()).retention


def test_each_purpose_has_its_legal_basis_recipients_and_retention(world: World, tenant: str) -> None:
    settings = TenantSettings(processors=[EU, US], purposes=Purposes(analytics="consent"), controller=CONTROLLER)
    record = build(world, tenant, settings)
    activities = {a.purpose: a for a in record.activities}
    assert list(activities) == list(PURPOSES)
    assert activities["analytics"].legal_basis == "consent" and activities["inquiries"].legal_basis == "contract"
    # analytics uses interactions only: MailCo (contact) does not receive what it uses
    assert activities["analytics"].recipients == ["CloudAI"] and activities["inquiries"].recipients == [
        "MailCo",
        "CloudAI",
    ]
    assert activities["analytics"].transfers == ["CloudAI (US): no safeguard stated"]
    assert activities["inquiries"].retention[0] == "identity: 1095 days after the last interaction, then erased"
    assert record.controller == CONTROLLER and record.controller_name == "Acme Shop Ltd"
    assert record.settings_version == world.tenants.read_settings(tenant)[1]


def test_without_a_controller_the_record_names_the_tenant(world: World) -> None:
    tenant = world.new_tenant("Acme Support")[0]
    record = processing.record_of_processing(world.wiring.processing, tenant, NOW)
    assert record.controller is None and record.controller_name == "Acme Support"
    assert "not set" in processing.to_html(record)


def test_the_counts_are_the_stores_subjects_open_requests_and_the_last_seven_days(world: World, tenant: str) -> None:
    for subject_id in ("u-1", "u-2"):
        intake.put_subject(world.intake, tenant, subject_id, SubjectIn(name="Ada"), NOW - timedelta(days=30))
    # one interaction a day, from 9 days ago to today: the last 7 days (today included) hold 7 of them
    for days_ago in range(10):
        message = InteractionIn(conversation_id="c", role="customer", text="hi", occurred_at=NOW - timedelta(days_ago))
        intake.add_interaction(world.intake, tenant, "u-1", message, NOW)
    other = world.new_tenant("Other")[0]
    intake.put_subject(world.intake, other, "u-9", SubjectIn(name="Bo"), NOW)
    settings = world.tenants.get_settings(tenant)
    world.requests.create(new_request(settings, tenant, "u-2", NOW, ExportDetails(format="json")))
    counts = processing.record_of_processing(world.wiring.processing, tenant, NOW).counts
    assert (counts.subjects, counts.open_requests, counts.interactions_last_7_days) == (2, 1, 7)
    assert processing.record_of_processing(world.wiring.processing, other, NOW).counts.subjects == 1


def test_the_csv_has_one_row_per_purpose_in_the_cnil_column_order(world: World, tenant: str) -> None:
    hostile = US.model_copy(update={"name": "=HYPERLINK(1)"})
    record = build(world, tenant, TenantSettings(processors=[hostile]))
    rows = list(csv.reader(io.StringIO(processing.to_csv(record), newline="")))
    assert rows[0] == [
        "purpose",
        "legal_basis",
        "categories_of_subjects",
        "categories_of_data",
        "recipients",
        "transfers_outside_eea_and_safeguards",
        "retention",
        "security_measures",
    ]
    assert [row[0].split(":")[0] for row in rows[1:]] == list(PURPOSES)
    analytics = rows[1 + list(PURPOSES).index("analytics")]
    assert analytics[1] == "legitimate interests (GDPR art. 6(1)(f))"
    assert analytics[4] == "'=HYPERLINK(1)"  # no spreadsheet runs a tenant's text
    assert analytics[5].startswith("'=HYPERLINK(1) (US): no safeguard stated")


@pytest.mark.parametrize("field", ["name", "contact"])
def test_the_html_escapes_every_tenant_text_and_loads_nothing(world: World, tenant: str, field: str) -> None:
    hostile = '<script>alert("x")</script><img src="https://evil.example/x">'
    controller = CONTROLLER.model_copy(update={field: hostile})
    processor = EU.model_copy(update={"name": hostile[:128], "purpose": hostile})
    page = processing.to_html(build(world, tenant, TenantSettings(controller=controller, processors=[processor])))
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert_self_contained(page)
    assert 'http-equiv="Content-Security-Policy"' in page


def test_the_exports_processing_record_comes_from_the_same_settings(world: World, tenant: str) -> None:
    settings = TenantSettings(processors=[US], controller=CONTROLLER, purposes=Purposes(personalization="contract"))
    record = processing.processing_record(settings, "Acme", {"analytics": "2026-01-01T00:00:00Z"})
    assert (record["controller"], record["controller_contact"], record["dpo_contact"]) == (
        "Acme Shop Ltd",
        "privacy@acme.example",
        "dpo@acme.example",
    )
    purposes = {p["purpose"]: p for p in record["purposes"]}
    assert purposes["personalization"]["legal_basis"] == "contract" and purposes["analytics"]["objected"] is True
    assert record["transfers"] == [{"processor": "CloudAI", "country": "US", "safeguard": None}]
    assert record["retention"] == {k: v.text for k, v in processing.retention(settings).items()}


def test_the_page_check_finds_what_a_page_would_load() -> None:
    from tests.page_check import read

    _, found = read('<p style="background:url(x)"><a href="https://x">y</a><img src=y><style>@import "z";</style>')
    assert len(found) == 4
    with pytest.raises(AssertionError):
        assert_self_contained("<script>1</script>")
