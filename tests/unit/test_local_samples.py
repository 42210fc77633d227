"""The seed's fixed request ids: exactly the ids named, in order, while it lasts; the real ids before and after."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from chatsphere.logic import requests
from chatsphere.models.requests import REQUEST_ID_PATTERN
from infra.local.samples import DELETION_ID, EXPORT_ID, OFFBOARDING_ID, UnexpectedRequest, fixed_request_ids

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def test_each_new_request_gets_the_next_fixed_id_then_the_real_ids_come_back() -> None:
    with fixed_request_ids(EXPORT_ID, DELETION_ID):
        assert [requests.new_request_id(NOW), requests.new_request_id(NOW)] == [EXPORT_ID, DELETION_ID]
    assert requests.new_request_id(NOW) not in (EXPORT_ID, DELETION_ID)
    assert requests.new_request_id(NOW).startswith(f"r{int(NOW.timestamp() * 1000):012x}")


def test_a_flow_that_makes_more_or_fewer_requests_than_named_fails_the_seed() -> None:
    with fixed_request_ids(EXPORT_ID):
        requests.new_request_id(NOW)
        with pytest.raises(UnexpectedRequest):
            requests.new_request_id(NOW)
    with pytest.raises(UnexpectedRequest), fixed_request_ids(EXPORT_ID, DELETION_ID):
        requests.new_request_id(NOW)
    assert requests.new_request_id(NOW) != EXPORT_ID  # restored after a failure too


def test_the_fixed_ids_are_distinct_and_shaped_as_the_api_takes_them() -> None:
    ids = (EXPORT_ID, DELETION_ID, OFFBOARDING_ID)
    assert len(set(ids)) == 3 and all(re.fullmatch(REQUEST_ID_PATTERN, i) for i in ids)
