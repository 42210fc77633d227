"""Rights request records over in-memory ports: deadlines, reads, extensions, listings and the API view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from chatsphere.errors import Conflict, DomainError, InvalidInput, NotFound
from chatsphere.logic import requests
from chatsphere.models.requests import (
    OPEN_STATUSES,
    CorrectionDetails,
    DeletionDetails,
    ExportDetails,
    ExportResult,
    ExportResultView,
    ExtensionIn,
    Refusal,
    RequestDetails,
    RequestItem,
    RequestPage,
    RequestStatus,
    RequestType,
)
from chatsphere.models.settings import TenantSettings
from tests.unit.fakes import FakeRequestStore, World

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def tenant(world: World) -> str:
    tenant_id = world.new_tenant()[0]
    world.tenants.put_settings(tenant_id, TenantSettings(deadline_days=30, extension_days=45), "x")
    return tenant_id


def add(
    world: World,
    tenant: str,
    received: datetime,
    details: RequestDetails | None = None,
    status: RequestStatus = "received",
) -> RequestItem:
    item = requests.new_request(world.tenants.get_settings(tenant), tenant, "u-1", received, details or ExportDetails())
    if status in OPEN_STATUSES:
        item = item.model_copy(update={"status": status})
    else:
        item = requests.finish(item, status, received)
    world.requests.create(item)
    return item


def extend(world: World, tenant: str, request_id: str, days: int, at: datetime = NOW) -> datetime:
    record = requests.extend_request(
        world.wiring.requests, tenant, request_id, ExtensionIn(days=days, reason="complex"), at
    )
    return record.due_at


def listing(
    world: World,
    tenant: str,
    *,
    status: RequestStatus | None = None,
    type_: RequestType | None = None,
    overdue: bool = False,
    limit: int = 100,
    cursor: str | None = None,
    now: datetime = NOW,
) -> RequestPage:
    wanted = requests.RequestFilter(status=status, type_=type_, overdue=overdue)
    return requests.list_requests(world.wiring.requests, tenant, now, wanted, limit=limit, cursor=cursor)


def walk(
    world: World,
    tenant: str,
    limit: int,
    *,
    status: RequestStatus | None = None,
    type_: RequestType | None = None,
    overdue: bool = False,
) -> tuple[list[str], int]:
    """Follow next_cursor to the end: the request ids seen, in order, and the number of pages."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = listing(world, tenant, status=status, type_=type_, overdue=overdue, limit=limit, cursor=cursor)
        pages += 1
        assert len(page.items) <= limit
        seen += [r.root.request_id for r in page.items]
        if page.next_cursor is None:
            return seen, pages
        cursor = page.next_cursor


# ------------------------------------------------------------------- creation
def test_a_new_request_is_due_after_the_tenants_deadline(world: World, tenant: str) -> None:
    world.tenants.put_settings(tenant, TenantSettings(deadline_days=7), "x")
    item = requests.new_request(world.tenants.get_settings(tenant), tenant, "u-1", NOW, ExportDetails())
    assert (item.type, item.status, item.completed_at) == ("export", "received", None)
    assert datetime.fromisoformat(item.received_at) == NOW
    assert datetime.fromisoformat(item.due_at) == NOW + timedelta(days=7)


def test_a_request_created_completed_is_completed_at_once(world: World, tenant: str) -> None:
    item = requests.new_request(
        TenantSettings(), tenant, "u-1", NOW, CorrectionDetails(fields_changed=["name"]), status="completed"
    )
    assert item.type == "correction"
    assert item.completed_at is not None and datetime.fromisoformat(item.completed_at) == NOW
    assert not item.is_open


def test_request_ids_are_unique_and_ordered_by_time(world: World, tenant: str) -> None:
    ids = [requests.new_request_id(NOW + timedelta(milliseconds=n)) for n in range(50)]
    assert ids == sorted(ids)
    assert len({requests.new_request_id(NOW) for _ in range(50)}) == 50


# ------------------------------------------------------------------- reading
def test_a_request_reads_back_as_stored(world: World, tenant: str) -> None:
    item = add(world, tenant, NOW - timedelta(days=1), ExportDetails(format="csv"))
    record = requests.get_request(world.wiring.requests, tenant, item.request_id, NOW)
    assert (record.request_id, record.type, record.subject_id, record.status) == (
        item.request_id,
        "export",
        "u-1",
        "received",
    )
    assert record.details == ExportDetails(format="csv")
    assert record.due_at == NOW + timedelta(days=29)
    assert record.overdue is False


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("r" + "0" * 28, id="well-formed-unknown"),
        pytest.param("not-an-id", id="malformed"),
        pytest.param("R" + "0" * 28, id="upper-case"),
        pytest.param("r" + "0" * 27, id="short"),
        pytest.param("../r" + "0" * 28, id="path"),
    ],
)
def test_an_unknown_or_malformed_request_id_is_not_found(world: World, tenant: str, request_id: str) -> None:
    with pytest.raises(NotFound) as raised:
        requests.get_request(world.wiring.requests, tenant, request_id, NOW)
    assert raised.value.status == 404


def test_another_tenants_request_is_not_found(world: World, tenant: str) -> None:
    other = world.new_tenant("Globex")[0]
    theirs = add(world, other, NOW)
    with pytest.raises(NotFound):
        requests.get_request(world.wiring.requests, tenant, theirs.request_id, NOW)


def test_an_open_request_past_due_reads_as_overdue_and_a_closed_one_never(world: World, tenant: str) -> None:
    open_item = add(world, tenant, NOW - timedelta(days=31))
    closed = add(world, tenant, NOW - timedelta(days=31), status="rejected")
    assert requests.get_request(world.wiring.requests, tenant, open_item.request_id, NOW).overdue is True
    assert requests.get_request(world.wiring.requests, tenant, closed.request_id, NOW).overdue is False


# ------------------------------------------------------------------- the API view of a result
def completed_export(world: World, tenant: str, expires_at: datetime) -> RequestItem:
    item = add(world, tenant, NOW - timedelta(hours=1))
    result = ExportResult(
        package_key=f"tenants/{tenant}/subjects/u-1/exports/{item.request_id}.zip",
        expires_at=expires_at.isoformat(),
        sha256="ab" * 32,
        bytes=1234,
        interaction_count=3,
        files=["interactions.jsonl", "manifest.json"],
    )
    done = requests.finish(item, "completed", NOW - timedelta(minutes=30), result)
    world.requests.set_status(done, expected_status=("received",))
    return done


def test_a_completed_export_shows_a_download_link_until_it_expires(world: World, tenant: str) -> None:
    # Given an export whose package expires in one hour
    done = completed_export(world, tenant, NOW + timedelta(hours=1))
    # When it is read before, at and after expiry
    before = requests.to_record(world.blobs, done, NOW).result
    at_expiry = requests.to_record(world.blobs, done, NOW + timedelta(hours=1)).result
    after = requests.to_record(world.blobs, done, NOW + timedelta(hours=2)).result
    # Then the link is there, signed for what remains (3600 s), and gone once it expired
    assert isinstance(before, ExportResultView) and before.download_url is not None
    assert "expires=3600" in before.download_url
    assert before.sha256 == "ab" * 32 and before.interaction_count == 3
    assert isinstance(at_expiry, ExportResultView) and at_expiry.download_url is None
    assert isinstance(after, ExportResultView) and after.download_url is None


def test_the_package_key_is_never_shown(world: World, tenant: str) -> None:
    done = completed_export(world, tenant, NOW + timedelta(hours=1))
    assert isinstance(done.result, ExportResult)
    for at in (NOW, NOW + timedelta(days=1)):
        record = requests.get_request(world.wiring.requests, tenant, done.request_id, at)
        assert isinstance(record.result, ExportResultView)
        assert "package_key" not in record.result.model_dump()
        assert done.result.package_key is not None and done.result.package_key not in record.model_dump_json()


def test_a_refusal_shows_its_reason(world: World, tenant: str) -> None:
    item = add(world, tenant, NOW)
    refused = requests.finish(item, "rejected", NOW, Refusal(reason="the subject no longer exists"))
    assert requests.to_record(world.blobs, refused, NOW).result == Refusal(reason="the subject no longer exists")


# ------------------------------------------------------------------- extension
def test_an_extension_moves_the_due_date_once(world: World, tenant: str) -> None:
    # Given an open request
    item = add(world, tenant, NOW - timedelta(days=10))
    # When it is extended by 45 days (the tenant's most)
    due = extend(world, tenant, item.request_id, 45)
    # Then it is due 45 days later than before, and says why and when
    assert due == NOW + timedelta(days=20 + 45)
    record = requests.get_request(world.wiring.requests, tenant, item.request_id, NOW)
    assert record.due_at == due
    assert record.extension is not None
    assert (record.extension.days, record.extension.reason, record.extension.extended_at) == (45, "complex", NOW)
    # When it is extended again
    with pytest.raises(Conflict):
        extend(world, tenant, item.request_id, 1)
    # Then the first extension stands
    assert requests.get_request(world.wiring.requests, tenant, item.request_id, NOW).due_at == due


def test_an_extension_longer_than_the_tenant_allows_is_invalid(world: World, tenant: str) -> None:
    item = add(world, tenant, NOW)
    with pytest.raises(InvalidInput) as raised:
        extend(world, tenant, item.request_id, 46)
    assert raised.value.status == 422
    stored = world.requests.get(tenant, item.request_id)
    assert stored is not None and stored.due_at == item.due_at and stored.extension is None


def test_a_tenant_that_allows_no_extension_gets_none(world: World, tenant: str) -> None:
    world.tenants.put_settings(tenant, TenantSettings(extension_days=0), "x")
    item = add(world, tenant, NOW)
    with pytest.raises(InvalidInput):
        extend(world, tenant, item.request_id, 1)


def test_an_in_progress_request_can_be_extended(world: World, tenant: str) -> None:
    item = add(world, tenant, NOW, status="in_progress")
    assert extend(world, tenant, item.request_id, 5) == NOW + timedelta(days=35)
    stored = world.requests.get(tenant, item.request_id)
    assert stored is not None and stored.status == "in_progress"


@pytest.mark.parametrize("status", ["completed", "rejected", "failed"])
def test_a_closed_request_cannot_be_extended(world: World, tenant: str, status: RequestStatus) -> None:
    item = add(world, tenant, NOW, status=status)
    with pytest.raises(Conflict):
        extend(world, tenant, item.request_id, 5)
    assert world.requests.get(tenant, item.request_id) == item


def test_extending_an_unknown_or_another_tenants_request_is_not_found(world: World, tenant: str) -> None:
    theirs = add(world, world.new_tenant("Globex")[0], NOW)
    with pytest.raises(NotFound):
        extend(world, tenant, theirs.request_id, 5)
    with pytest.raises(NotFound):
        extend(world, tenant, "r" + "0" * 28, 5)


class _RacingRequests(FakeRequestStore):
    """Runs `race` (another caller) right after the next read, before the reader writes."""

    def __init__(self) -> None:
        super().__init__()
        self.race: Callable[[], object] | None = None

    def get(self, tenant_id: str, request_id: str) -> RequestItem | None:
        found = super().get(tenant_id, request_id)
        race, self.race = self.race, None
        if race is not None:
            race()
        return found


def test_two_concurrent_extensions_extend_once(world: World, tenant: str) -> None:
    # Given an open request, and another caller that extends it between our read and our write
    racing = _RacingRequests()
    world.requests = racing
    item = add(world, tenant, NOW)
    racing.race = lambda: extend(world, tenant, item.request_id, 10)
    # When we extend it too
    # Then ours is refused as a second extension, and theirs stands
    with pytest.raises(Conflict):
        extend(world, tenant, item.request_id, 40)
    stored = world.requests.get(tenant, item.request_id)
    assert stored is not None and stored.extension is not None and stored.extension["days"] == 10


# ------------------------------------------------------------------- listing
@pytest.fixture
def history(world: World, tenant: str) -> list[RequestItem]:
    """Seven requests a day apart, oldest first: exports and deletions, open and closed."""
    kinds: list[tuple[RequestDetails, RequestStatus]] = [
        (ExportDetails(), "completed"),
        (DeletionDetails(), "received"),
        (ExportDetails(), "received"),
        (DeletionDetails(), "completed"),
        (ExportDetails(), "in_progress"),
        (ExportDetails(), "received"),
        (DeletionDetails(), "rejected"),
    ]
    return [add(world, tenant, NOW - timedelta(days=40 - n), d, s) for n, (d, s) in enumerate(kinds)]


def test_requests_list_newest_first(world: World, tenant: str, history: list[RequestItem]) -> None:
    page = listing(world, tenant)
    assert [r.root.request_id for r in page.items] == [i.request_id for i in reversed(history)]
    assert page.next_cursor is None


def test_requests_list_only_the_tenants_own(world: World, tenant: str, history: list[RequestItem]) -> None:
    other = world.new_tenant("Globex")[0]
    add(world, other, NOW)
    assert listing(world, other).items[0].root.request_id not in {i.request_id for i in history}
    assert len(listing(world, tenant).items) == len(history)


def test_requests_filter_by_status_and_type(world: World, tenant: str, history: list[RequestItem]) -> None:
    def ids(status: RequestStatus | None = None, type_: RequestType | None = None) -> list[str]:
        return [r.root.request_id for r in listing(world, tenant, status=status, type_=type_).items]

    newest_first = list(reversed(history))
    assert ids(status="received") == [i.request_id for i in newest_first if i.status == "received"]
    assert ids(type_="deletion") == [i.request_id for i in newest_first if i.type == "deletion"]
    assert ids(status="received", type_="export") == [history[5].request_id, history[2].request_id]
    assert ids(status="failed") == []


@pytest.mark.parametrize("limit", [1, 2, 3, 6, 7, 8])
def test_pages_list_every_request_exactly_once(
    world: World, tenant: str, history: list[RequestItem], limit: int
) -> None:
    seen, pages = walk(world, tenant, limit)
    assert seen == [i.request_id for i in reversed(history)]
    assert pages == -(-len(history) // limit)


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_filtered_pages_list_every_match_exactly_once(
    world: World, tenant: str, history: list[RequestItem], limit: int
) -> None:
    seen, _ = walk(world, tenant, limit, type_="export")
    assert seen == [i.request_id for i in reversed(history) if i.type == "export"]


def test_a_cursor_from_another_tenant_is_a_bad_request(world: World, tenant: str, history: list[RequestItem]) -> None:
    # Given a cursor another tenant got for its own listing
    other = world.new_tenant("Globex")[0]
    for n in range(3):
        add(world, other, NOW - timedelta(days=n))
    cursor = listing(world, other, limit=1).next_cursor
    assert cursor is not None
    # When this tenant uses it
    with pytest.raises(DomainError) as raised:
        listing(world, tenant, limit=1, cursor=cursor)
    # Then it is a 400
    assert raised.value.status == 400


def test_a_cursor_from_the_other_listing_is_a_bad_request(
    world: World, tenant: str, history: list[RequestItem]
) -> None:
    # Given a cursor of the full listing, and one of the overdue listing
    all_cursor = listing(world, tenant, limit=1).next_cursor
    overdue_cursor = listing(world, tenant, overdue=True, limit=1).next_cursor
    assert all_cursor is not None and overdue_cursor is not None
    # When each is used for the other listing
    # Then both are a 400
    with pytest.raises(DomainError):
        listing(world, tenant, overdue=True, limit=1, cursor=all_cursor)
    with pytest.raises(DomainError):
        listing(world, tenant, limit=1, cursor=overdue_cursor)


def test_a_garbled_cursor_is_a_bad_request(world: World, tenant: str, history: list[RequestItem]) -> None:
    cursor = listing(world, tenant, limit=1).next_cursor
    assert cursor is not None
    with pytest.raises(DomainError):
        listing(world, tenant, limit=1, cursor=cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1])


def test_overdue_lists_open_past_due_requests_most_overdue_first(
    world: World, tenant: str, history: list[RequestItem]
) -> None:
    # Given requests received 40 to 34 days ago (due 30 days after): all past due, four of them open,
    # and one extended so that it is no longer due
    extend(world, tenant, history[1].request_id, 45)
    # When the tenant lists the overdue ones
    page = listing(world, tenant, overdue=True)
    # Then the open, still past-due ones come, oldest due date first, each marked overdue
    assert [r.root.request_id for r in page.items] == [history[n].request_id for n in (2, 4, 5)]
    assert all(r.root.overdue for r in page.items)
    assert page.next_cursor is None


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_overdue_pages_list_every_overdue_request_once(
    world: World, tenant: str, history: list[RequestItem], limit: int
) -> None:
    seen, _ = walk(world, tenant, limit, overdue=True)
    assert seen == [history[n].request_id for n in (1, 2, 4, 5)]


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_overdue_filtered_by_status_and_type_pages_through_every_match(
    world: World, tenant: str, history: list[RequestItem], limit: int
) -> None:
    seen, _ = walk(world, tenant, limit, overdue=True, status="received", type_="export")
    assert seen == [history[2].request_id, history[5].request_id]


def test_overdue_with_a_closed_status_is_empty(world: World, tenant: str, history: list[RequestItem]) -> None:
    page = listing(world, tenant, overdue=True, status="completed")
    assert (page.items, page.next_cursor) == ([], None)
