"""Blaze dialect: partner_key + raw key, the undated listing for full syncs, 7-day windows for incremental ones,
skip/limit/total pages, member mapping (phone, sex, birthdays in the store's time zone), lookups."""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
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


def query_of(request: requests.PreparedRequest) -> dict[str, int]:
    return {k: int(v[0]) for k, v in parse_qs(urlsplit(request.url or "").query).items()}


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
    assert pages[-1].is_last
    assert len(rsps.calls) == 2


class Store:
    """A Blaze store's members, listed newest-modified first (as a real listing came) or by date window."""

    def __init__(self, size: int, *, newest_first: bool = True) -> None:
        oldest = ms(datetime(2019, 3, 1, tzinfo=UTC))
        self.members = [blaze_record(i, modified=oldest + i * 3_600_000) for i in range(size)]
        self.newest_first = newest_first  # else oldest-modified first: a change moves a member to the end
        self.requests: list[dict[str, int]] = []
        self.on_request: Callable[[Store], None] = lambda store: None

    def answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = query_of(request)
        self.requests.append(query)
        self.on_request(self)
        members = sorted(self.members, key=lambda m: -m["modified"] if self.newest_first else m["modified"])
        if "startDate" in query:
            assert query["endDate"] - query["startDate"] <= 7 * DAY_MS, "a dated window longer than 7 days"
            members = [m for m in members if query["startDate"] <= m["modified"] <= query["endDate"]]
        skip, limit = query.get("skip", 0), query.get("limit", 100)
        page = members[skip : skip + limit]
        return 200, {}, json.dumps({"values": page, "skip": skip, "limit": limit, "total": len(members)})


def test_full_sync_reads_the_undated_listing_page_by_page(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    store = Store(5_000)
    rsps.add_callback(responses.GET, MEMBERS, callback=store.answer)
    pages = list(make_client("blaze").iter_customers())
    ids = [r.customer_id for p in pages for r in p.records]
    assert sorted(ids) == sorted(m["id"] for m in store.members)
    assert len(ids) == 5_000
    # 11 pages of 500 (each after the first starts 20 members early) and one closing window, instead of 7-day
    # windows since 2014 (about 670 requests).
    assert len(store.requests) == 12
    assert [q["skip"] for q in store.requests[:11]] == [480 * n for n in range(11)]
    assert all("startDate" not in q for q in store.requests[:11])
    assert store.requests[11]["startDate"] == ms(NOW) - 60_000
    assert store.requests[11]["endDate"] == ms(NOW)
    assert pages[-1].is_last


def test_a_member_modified_during_the_walk_is_read_by_the_closing_window(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    store = Store(1_200)
    moved = store.members[3]  # old: on the last page of a newest-first listing
    recent = store.members[-1]
    recent["modified"] = ms(NOW) - 10_000  # changed just before the sync: on the first page, and in the window

    def modify_after_the_first_page(store: Store) -> None:
        if len(store.requests) == 2:
            moved.update(modified=ms(NOW) - 5_000, lastName="MOVED")

    store.on_request = modify_after_the_first_page
    rsps.add_callback(responses.GET, MEMBERS, callback=store.answer)
    pages = list(make_client("blaze").iter_customers())
    by_id = {r.customer_id: r for p in pages for r in p.records}
    assert len(by_id) == 1_200
    assert by_id[moved["id"]].last_name == "MOVED"
    assert store.requests[-1]["startDate"] == ms(NOW) - 60_000
    # The closing window hands back only what the walk did not read as it is now.
    assert [r.customer_id for r in pages[-1].records] == [moved["id"]]


@pytest.mark.parametrize("newest_first", [True, False])
def test_the_walk_misses_and_repeats_no_one_whichever_way_members_move(
    rsps: responses.RequestsMock, make_client: MakeClient, newest_first: bool
) -> None:
    """Changes between two pages shift the listing by a few places, forwards or backwards."""
    store = Store(1_500, newest_first=newest_first)
    changed: list[str] = []

    def change_between_pages(store: Store) -> None:
        if len(store.requests) in (2, 3):  # before the second and the third page
            for member in store.members[::150][:8]:  # some read already, some not
                member.update(modified=ms(NOW) - 5_000 + len(store.requests))
                changed.append(member["id"])
            del store.members[600:604]

    store.on_request = change_between_pages
    rsps.add_callback(responses.GET, MEMBERS, callback=store.answer)
    ids = [r.customer_id for p in make_client("blaze").iter_customers() for r in p.records]
    counts = collections.Counter(ids)
    assert set(counts) >= {m["id"] for m in store.members}  # nobody skipped
    # Each member once, but those changed during the walk, read again as they are now.
    assert {i for i, n in counts.items() if n > 1} <= set(changed)


def test_incremental_sync_walks_seven_day_windows_from_the_cursor(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    windows: list[tuple[int, int]] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = query_of(request)
        windows.append((query["startDate"], query["endDate"]))
        return 200, {}, json.dumps({"values": [blaze_record(1)], "skip": 0, "limit": 500, "total": 1})

    rsps.add_callback(responses.GET, MEMBERS, callback=answer)
    since = NOW - timedelta(days=20)
    pages = list(make_client("blaze").iter_customers(since))
    assert windows[0][0] == ms(since)
    assert windows[-1][1] == ms(NOW)
    assert all(0 < end - start <= 7 * DAY_MS for start, end in windows)
    assert len(windows) == 3
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))  # no gaps
    # The same member in another window (modified again meanwhile) is no pagination loop.
    assert [r.customer_id for p in pages for r in p.records] == ["000000000000000000000001"] * 3
    assert pages[-1].is_last


def test_member_mapping(make_client: MakeClient) -> None:
    client = make_client("blaze")
    record = client.parse_record(blaze_record(1))
    assert record.customer_id == "000000000000000000000001"
    assert record.phone == "5550100001"
    assert record.gender == ""  # a real listing's integer 0: not set
    assert record.birthday == date(1990, 1, 1)
    assert (record.drivers_license, record.drivers_license_expiration) == ("X0000001", date(2030, 1, 1))  # type null
    assert record.loyalty_points == Decimal("10.98")
    assert record.notes == "likes edibles"
    assert record.street == "1 MAIN ST"
    assert record.postal_code == "90001"
    assert record.pos_created_at == datetime(2025, 9, 19, 1, 59, 9, 594000, tzinfo=UTC)
    assert record.banned is False
    assert record.merged_customer_ids == ()
    medical = client.parse_record(
        blaze_record(
            2,
            sex="MALE",
            consumerType="MedicinalState",
            deleted=True,
            banPatient=True,
            recommendations=[{"recommendationNumber": "REC-9", "expirationDate": 1893456000000}],
            identifications=[{"licenseNumber": "P1", "type": "Passport"}, {"licenseNumber": "DL2", "type": "Drivers"}],
        )
    )
    assert medical.gender == "M"
    assert medical.customer_type == "medical"
    assert medical.active is False
    assert medical.banned is True
    assert (medical.medical_card_number, medical.medical_card_expiration) == ("REC-9", date(2030, 1, 1))
    assert medical.drivers_license == "DL2"
    assert client.parse_record(blaze_record(4, status="Inactive")).active is False


@pytest.mark.parametrize(
    ("sex", "gender"), [("MALE", "M"), ("FEMALE", "F"), ("OTHER", "X"), (0, ""), (1, ""), (2, ""), (None, "")]
)
def test_sex_maps_only_the_swagger_values(make_client: MakeClient, sex: Any, gender: str) -> None:
    assert make_client("blaze").parse_record(blaze_record(1, sex=sex)).gender == gender


def test_an_empty_primary_phone_falls_back_to_cpn(make_client: MakeClient) -> None:
    record = make_client("blaze").parse_record(blaze_record(1, primaryPhone="", cpn="+14155550123"))
    assert record.phone == "4155550123"


@pytest.mark.parametrize(
    ("fields", "birthday"),
    [
        ({"birthdate": "1990-13-45", "localDob": "1991-02-03"}, date(1991, 2, 3)),
        ({"birthdate": "not a date", "localDob": None}, date(1990, 1, 1)),  # from dob
        ({"birthdate": None, "localDob": "garbage", "dob": ms(datetime(1990, 7, 1, 7, tzinfo=UTC))}, date(1990, 7, 1)),
        ({"birthdate": "", "dob": -86_400_000 + 8 * 3_600_000}, date(1969, 12, 31)),
    ],
)
def test_a_malformed_birthdate_falls_back_to_local_dob_then_dob(
    make_client: MakeClient, fields: dict[str, Any], birthday: date
) -> None:
    assert make_client("blaze").parse_record(blaze_record(1, **fields)).birthday == birthday


def test_a_member_whose_every_birthday_field_is_malformed_is_rejected(make_client: MakeClient) -> None:
    records, errors = make_client("blaze").parse_items(
        [blaze_record(1, birthdate="1990-02-30", localDob="x", dob="y"), blaze_record(2)]
    )
    assert [r.customer_id for r in records] == ["000000000000000000000002"]
    assert errors[0].customer_id == "000000000000000000000001"
    assert errors[0].reason.startswith("birthday:")


def test_dob_is_the_date_in_the_stores_time_zone(make_client: MakeClient) -> None:
    tokyo_midnight = ms(datetime(1989, 12, 31, 15, 0, tzinfo=UTC))  # 1990-01-01 00:00 in Tokyo
    member = blaze_record(1, birthdate=None, dob=tokyo_midnight)
    assert make_client("blaze", time_zone="Asia/Tokyo").parse_record(member).birthday == date(1990, 1, 1)
    # With no zone set, the store is taken to be on the US west coast (America/Los_Angeles).
    assert make_client("blaze").parse_record(member).birthday == date(1989, 12, 31)


def test_an_unknown_time_zone_is_refused(make_client: MakeClient) -> None:
    with pytest.raises(ValueError, match="time zone"):
        make_client("blaze", time_zone="Mars/Olympus_Mons")


@pytest.mark.parametrize(
    ("filters", "url", "query"),
    [
        ({"email": "roe1@example.com"}, f"{MEMBERS}/email/roe1%40example.com", {}),
        ({"phone": "555-010-0001"}, f"{MEMBERS}/search/phone", {"phoneNumber": "5550100001"}),
        ({"drivers_license": "X0000001"}, f"{MEMBERS}/search", {"licenceNumber": "X0000001"}),
        # The swagger types the search's `dob` as a string: the date, not epoch milliseconds.
        ({"birthday": date(1990, 1, 1)}, f"{MEMBERS}/search/dob", {"dob": "1990-01-01"}),
    ],
)
def test_lookups(
    rsps: responses.RequestsMock, make_client: MakeClient, filters: dict, url: str, query: dict[str, Any]
) -> None:
    body: Any = blaze_record(1) if "email" in filters else {"values": [blaze_record(1)]}
    rsps.add(responses.GET, url, json=body, match=[matchers.query_param_matcher(query)])
    assert [r.customer_id for r in make_client("blaze").search_customers(**filters)] == ["000000000000000000000001"]


def test_get_member(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, f"{MEMBERS}/abc", json=blaze_record(9))
    record = make_client("blaze").get_customer("abc")
    assert record is not None
    assert record.last_name == "ROE9"


def test_check_connection(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, MEMBERS, json={"values": [], "total": 0})
    assert make_client("blaze").check_connection() == "Connected to Blaze partner API"
