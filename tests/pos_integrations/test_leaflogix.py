"""LeafLogix / Dutchie POS dialect: Basic auth, PageNumber pages, lookups, create with duplicate check."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import responses
from responses import matchers

from pos_integrations import CustomerInput, PosClient, PosDuplicate

from .conftest import CREDENTIALS, SINCE, leaflogix_record

MakeClient = Callable[..., PosClient]
LIST = "https://ll.test/customer/customers-paginated"
LOOKUP = "https://ll.test/customer/customerLookup"


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_with_the_location_key_and_an_empty_password(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    rsps.add(responses.GET, LIST, json=[], match=[matchers.header_matcher({"Authorization": basic("ll-s3cr3t-value")})])
    pages = list(make_client("leaflogix").iter_customers())
    assert [p.records for p in pages] == [[]]
    assert pages[0].is_last


def test_integrator_key_is_the_basic_password(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    creds = {**CREDENTIALS["leaflogix"], "integrator_key": "int-1"}
    rsps.add(
        responses.GET,
        LIST,
        json=[],
        match=[matchers.header_matcher({"Authorization": basic("ll-s3cr3t-value", "int-1")})],
    )
    list(make_client("leaflogix", credentials=creds).iter_customers())


def test_pages_to_the_last_page_with_modified_since(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    since = "2026-11-24T09:00:00Z"
    first = [leaflogix_record(i) for i in range(100)]
    rsps.add(
        responses.GET,
        LIST,
        json=first,
        match=[matchers.query_param_matcher({"PageNumber": "1", "PageSize": "100", "fromLastModifiedDateUTC": since})],
    )
    rsps.add(
        responses.GET,
        LIST,
        json={"data": [leaflogix_record(100)]},
        match=[matchers.query_param_matcher({"PageNumber": "2", "PageSize": "100", "fromLastModifiedDateUTC": since})],
    )
    pages = list(make_client("leaflogix").iter_customers(SINCE))
    assert [len(p.records) for p in pages] == [100, 1]
    assert pages[0].position == {"page": 2, "since": since}
    assert pages[1].is_last
    assert len(rsps.calls) == 2


def test_full_listing_sends_no_modified_since(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(
        responses.GET,
        LIST,
        json=[leaflogix_record(1)],
        match=[matchers.query_param_matcher({"PageNumber": "1", "PageSize": "100"})],
    )
    assert len(next(make_client("leaflogix").iter_customers()).records) == 1


def test_resume_from_a_position(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(
        responses.GET,
        LIST,
        json=[leaflogix_record(7)],
        match=[matchers.query_param_matcher({"PageNumber": "5", "PageSize": "100"})],
    )
    pages = list(make_client("leaflogix").iter_customers(start={"page": 5, "since": None}))
    assert pages[0].records[0].customer_id == "1007"
    assert list(make_client("leaflogix").iter_customers(start=pages[-1].position)) == []


def test_field_mapping(make_client: MakeClient) -> None:
    raw = leaflogix_record(
        3,
        customerType="Medical",
        mmjidNumber="MM-1",
        mmjidExpirationDate="2027-05-01T00:00:00",
        gender="Male",
        dateOfBirth="1900-01-01T00:00:00",
    )
    record = make_client("leaflogix").parse_record(raw)
    assert record.customer_id == "1003"
    assert (record.first_name, record.last_name, record.email) == ("Ann3", "Lee", "ann3@example.com")
    assert record.phone == "5550100003"
    assert record.birthday is None  # year-1900 placeholder
    assert record.gender == "M"
    assert record.customer_type == "medical"
    assert (record.medical_card_number, record.medical_card_expiration) == ("MM-1", date(2027, 5, 1))
    assert record.drivers_license == ""  # Dutchie only has a hash, never shown as a licence
    assert record.drivers_license_hash == "ab12cd34"
    assert record.street == "1 Main St, Apt 2"
    assert record.loyalty_points == Decimal(0)
    assert record.pos_updated_at == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert record.active is True


def test_merged_customer_is_inactive(make_client: MakeClient) -> None:
    record = make_client("leaflogix").parse_record(leaflogix_record(1, mergedIntoCustomerId=1002))
    assert record.active is False
    assert record.merged_into_customer_id == "1002"
    assert make_client("leaflogix").parse_record(leaflogix_record(1, status="Inactive")).active is False


@pytest.mark.parametrize(
    ("filters", "body"),
    [
        ({"phone": "(555) 010-0001"}, {"phone": "5550100001"}),
        ({"email": "ann1@example.com"}, {"emailAddress": "ann1@example.com"}),
        ({"first_name": "Ann1", "last_name": "Lee"}, {"firstName": "Ann1", "lastName": "Lee"}),
        ({"birthday": date(1990, 2, 3)}, {"dateOfBirth": "1990-02-03"}),
    ],
)
def test_lookup(rsps: responses.RequestsMock, make_client: MakeClient, filters: dict, body: dict) -> None:
    rsps.add(responses.POST, LOOKUP, json=leaflogix_record(1), match=[matchers.json_params_matcher(body)])
    found = make_client("leaflogix").search_customers(**filters)
    assert [r.customer_id for r in found] == ["1001"]


def test_lookup_miss(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.POST, LOOKUP, status=404, json={"message": "not found"})
    assert make_client("leaflogix").search_customers(email="nobody@example.com") == []


def test_lookup_is_retried_as_a_read(rsps: responses.RequestsMock, make_client: MakeClient, sleeps: list) -> None:
    rsps.add(responses.POST, LOOKUP, status=502)
    rsps.add(responses.POST, LOOKUP, body="null", content_type="application/json")
    assert make_client("leaflogix").search_customers(phone="5550100001") == []
    assert len(sleeps) == 1


def test_get_customer(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(
        responses.GET,
        "https://ll.test/customer/customers",
        json=[leaflogix_record(5)],
        match=[matchers.query_param_matcher({"customerID": "1005"})],
    )
    record = make_client("leaflogix").get_customer("1005")
    assert record is not None
    assert record.first_name == "Ann5"


def test_create_checks_phone_and_email_then_posts(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.POST, LOOKUP, body="", status=204, match=[matchers.json_params_matcher({"phone": "5551234567"})])
    rsps.add(responses.POST, LOOKUP, json=[], match=[matchers.json_params_matcher({"emailAddress": "new@example.com"})])
    created = leaflogix_record(9, firstName="New", lastName="Person", emailAddress="new@example.com")
    rsps.add(responses.POST, "https://ll.test/customer/customer", json=created)
    record = make_client("leaflogix").create_customer(
        CustomerInput(
            first_name="New",
            last_name="Person",
            email="new@example.com",
            phone="555-123-4567",
            birthday=date(1991, 4, 5),
            gender="F",
            notes="walk-in",
        )
    )
    assert record.customer_id == "1009"
    sent = json.loads(rsps.calls[-1].request.body)
    assert sent == {
        "firstName": "New",
        "lastName": "Person",
        "emailAddress": "new@example.com",
        "phone": "5551234567",
        "dateOfBirth": "1991-04-05",
        "gender": "F",
        "notes": "walk-in",
        "customerType": "Recreational",
    }
    assert "customerId" not in sent


def test_create_reads_back_when_only_the_id_comes_back(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.POST, "https://ll.test/customer/customer", json={"customerId": 1011})
    rsps.add(responses.GET, "https://ll.test/customer/customers", json=[leaflogix_record(11)])
    record = make_client("leaflogix").create_customer(CustomerInput(first_name="Ann11", last_name="Lee"))
    assert record.customer_id == "1011"


def test_create_duplicate_by_email(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.POST, LOOKUP, json=None, match=[matchers.json_params_matcher({"phone": "5551234567"})])
    rsps.add(
        responses.POST,
        LOOKUP,
        json=leaflogix_record(4, emailAddress="Dup@Example.com"),
        match=[matchers.json_params_matcher({"emailAddress": "dup@example.com"})],
    )
    # No create is registered: a create sent anyway would meet no mock and fail the test.
    with pytest.raises(PosDuplicate) as caught:
        make_client("leaflogix").create_customer(
            CustomerInput(first_name="A", last_name="B", email="dup@example.com", phone="5551234567")
        )
    assert caught.value.existing_customer_id == "1004"
    assert [call.request.url for call in rsps.calls] == [LOOKUP, LOOKUP]


def test_check_connection_names_the_location(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(
        responses.GET,
        "https://ll.test/whoami",
        json={"LocationName": "Oakland", "LocationId": 7, "CompanyName": "Greenleaf", "CompanyId": 1},
    )
    assert (
        make_client("leaflogix").check_connection()
        == "Connected to LeafLogix (Dutchie POS) location Oakland (Greenleaf)"
    )
