"""Flowhub dialect: clientId/key headers, page_size=500 pages until a short one, date-only updated_after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import responses
from responses import matchers

from pos_integrations import PosClient

from .conftest import SINCE, flowhub_record

MakeClient = Callable[..., PosClient]
LIST = "https://fh.test/v1/customers/"
HEADERS = {"clientId": "fh-client", "key": "fh-s3cr3t-value"}


def test_headers_pages_and_date_filter(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    first = [flowhub_record(i) for i in range(500)]
    rsps.add(
        responses.GET,
        LIST,
        json={"data": first},
        match=[
            matchers.header_matcher(HEADERS),
            matchers.query_param_matcher({"page": "1", "page_size": "500", "updated_after": "2026-11-23"}),
        ],
    )
    rsps.add(
        responses.GET,
        LIST,
        json=[flowhub_record(500)],
        match=[
            matchers.header_matcher(HEADERS),
            matchers.query_param_matcher({"page": "2", "page_size": "500", "updated_after": "2026-11-23"}),
        ],
    )
    pages = list(make_client("flowhub").iter_customers(SINCE))
    assert [len(p.records) for p in pages] == [500, 1]
    assert pages[-1].is_last
    assert len(rsps.calls) == 2


def test_date_filter_is_never_later_than_any_store_local_date(make_client: MakeClient) -> None:
    # 09:00 UTC on the 24th is still the 23rd in Honolulu (UTC-10): asking from the 24th would miss it.
    position = make_client("flowhub").first_position(SINCE)
    assert position["updated_after"] == "2026-11-23"


def test_overlap_is_a_whole_day(make_client: MakeClient) -> None:
    assert make_client("flowhub").overlap == timedelta(days=1)
    assert make_client("blaze").overlap == timedelta(seconds=60)


def test_single_name_is_split_on_the_last_space(make_client: MakeClient) -> None:
    client = make_client("flowhub")
    record = client.parse_record(flowhub_record(1, type="medCustomer"))
    assert (record.first_name, record.last_name) == ("Mary Ann", "Smith1")
    assert record.raw["name"] == "Mary Ann Smith1"
    assert record.phone == "5550200001"  # +1 dropped, digits kept
    assert record.customer_type == "medical"
    assert record.active
    assert str(record.loyalty_points) == "27"
    assert client.parse_record(flowhub_record(2, name="Cher")).first_name == "Cher"


def test_phone_lookup_and_get(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(
        responses.GET,
        "https://fh.test/v1/customers/findByPhoneNumber",
        json=[flowhub_record(3)],
        match=[matchers.query_param_matcher({"phone_number": "5550200003"})],
    )
    rsps.add(
        responses.GET,
        "https://fh.test/v1/customers/abc",
        json={"data": flowhub_record(4)},
        match=[matchers.query_param_matcher({"store_id": "store-9"})],
    )
    client = make_client("flowhub")
    assert [r.last_name for r in client.search_customers(phone="555-020-0003")] == ["Smith3"]
    record = client.get_customer("abc")
    assert record is not None
    assert record.last_name == "Smith4"


def test_429_without_retry_after_backs_off(rsps: responses.RequestsMock, make_client: MakeClient, sleeps: list) -> None:
    rsps.add(responses.GET, LIST, status=429)
    rsps.add(responses.GET, LIST, json=[])
    list(make_client("flowhub").iter_customers())
    assert sleeps == [0.375]


def test_check_connection(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, LIST, json={"data": []})
    assert make_client("flowhub").check_connection() == "Connected to Flowhub store store-9"
