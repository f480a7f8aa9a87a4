"""Blaze dialect: partner_key + raw key, epoch-ms windows of at most 7 days, skip/limit/total, lookups."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from pos_integrations import PosClient

from .conftest import NOW, SINCE, blaze_record

MakeClient = Callable[..., PosClient]
MEMBERS = "https://blaze.test/api/v1/partner/members"
HEADERS = {"partner_key": "pk-s3cr3t-value", "Authorization": "bk-s3cr3t-value"}
DAY_MS = 86_400_000


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_headers_epoch_ms_and_skip_limit_total(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    window = {"startDate": str(ms(SINCE)), "endDate": str(ms(NOW)), "limit": "500"}
    rsps.add(
        responses.GET,
        MEMBERS,
        json={"values": [blaze_record(i) for i in range(3)], "skip": 0, "total": 5},
        match=[matchers.header_matcher(HEADERS), matchers.query_param_matcher({**window, "skip": "0"})],
    )
    rsps.add(
        responses.GET,
        MEMBERS,
        json={"values": [blaze_record(i) for i in (3, 4)], "skip": 3, "total": 5},
        match=[matchers.header_matcher(HEADERS), matchers.query_param_matcher({**window, "skip": "3"})],
    )
    pages = list(make_client("blaze").iter_customers(SINCE))
    assert [len(p.records) for p in pages] == [3, 2]
    assert pages[-1].is_last and len(rsps.calls) == 2


def test_full_sync_walks_seven_day_windows_to_now(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    windows: list[tuple[int, int]] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = {k: int(v[0]) for k, v in parse_qs(urlsplit(request.url or "").query).items()}
        windows.append((query["startDate"], query["endDate"]))
        values = [blaze_record(len(windows))] if len(windows) % 50 == 0 else []
        import json

        return 200, {}, json.dumps({"values": values, "skip": 0, "limit": 500, "total": len(values)})

    rsps.add_callback(responses.GET, MEMBERS, callback=answer)
    pages = list(make_client("blaze").iter_customers())
    assert windows[0][0] == ms(datetime(2014, 1, 1, tzinfo=UTC))
    assert windows[-1][1] == ms(NOW)
    assert all(0 < end - start <= 7 * DAY_MS for start, end in windows)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))  # no gaps
    assert sum(len(p.records) for p in pages) == len(windows) // 50
    assert pages[-1].is_last


def test_member_mapping(make_client: MakeClient) -> None:
    client = make_client("blaze")
    record = client.parse_record(blaze_record(1))
    assert record.customer_id == "000000000000000000000001"
    assert record.gender == "F"  # integer 1 = FEMALE
    assert record.birthday == date(1990, 1, 1)
    assert (record.drivers_license, record.drivers_license_expiration) == ("X0000001", date(2030, 1, 1))
    assert record.loyalty_points == Decimal("10.98")
    assert record.notes == "likes edibles"
    assert record.street == "1 MAIN ST" and record.postal_code == "90001"
    assert record.pos_created_at == datetime(2025, 9, 19, 1, 59, 9, 594000, tzinfo=UTC)
    medical = client.parse_record(
        blaze_record(
            2,
            sex="MALE",
            consumerType="MedicinalState",
            deleted=True,
            birthdate=None,
            dob=-86400000,
            recommendations=[{"recommendationNumber": "REC-9", "expirationDate": 1893456000000}],
            identifications=[{"licenseNumber": "P1", "type": "Passport"}, {"licenseNumber": "DL2", "type": "Drivers"}],
        )
    )
    assert medical.gender == "M" and medical.customer_type == "medical" and medical.active is False
    assert medical.birthday == date(1969, 12, 31)
    assert (medical.medical_card_number, medical.medical_card_expiration) == ("REC-9", date(2030, 1, 1))
    assert medical.drivers_license == "DL2"
    assert client.parse_record(blaze_record(3, sex=2)).gender == "X"
    assert client.parse_record(blaze_record(4, status="Inactive")).active is False


@pytest.mark.parametrize(
    ("filters", "url", "query"),
    [
        ({"email": "roe1@example.com"}, f"{MEMBERS}/email/roe1%40example.com", {}),
        ({"phone": "555-010-0001"}, f"{MEMBERS}/search/phone", {"phoneNumber": "5550100001"}),
        ({"drivers_license": "X0000001"}, f"{MEMBERS}/search", {"licenceNumber": "X0000001"}),
        ({"birthday": date(1990, 1, 1)}, f"{MEMBERS}/search/dob", {"dob": "631152000000"}),
    ],
)
def test_lookups(
    rsps: responses.RequestsMock, make_client: MakeClient, filters: dict, url: str, query: dict[str, Any]
) -> None:
    body: Any = (
        blaze_record(1, primaryPhone="5550100001")
        if "email" in filters
        else {"values": [blaze_record(1, primaryPhone="5550100001")]}
    )
    rsps.add(responses.GET, url, json=body, match=[matchers.query_param_matcher(query)])
    assert [r.customer_id for r in make_client("blaze").search_customers(**filters)] == ["000000000000000000000001"]


def test_get_member(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, f"{MEMBERS}/abc", json=blaze_record(9))
    record = make_client("blaze").get_customer("abc")
    assert record is not None and record.last_name == "ROE9"


def test_check_connection(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, MEMBERS, json={"values": [], "total": 0})
    assert make_client("blaze").check_connection() == "Connected to Blaze partner API"
