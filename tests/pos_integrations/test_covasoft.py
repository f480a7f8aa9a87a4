"""Cova dialect: password-grant token, OData $filter/$skip/$top, HAL or array pages, ContactMethods, Search."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from pos_integrations import PosAuthError, PosBadResponse, PosClient, PosUnavailable
from pos_integrations.parsing import parse_datetime

from .conftest import COVA_TOKEN_URL, SINCE, covasoft_record

MakeClient = Callable[..., PosClient]
LIST = "https://cova.test/crm/v1/Companies(42)/CustomerFull"
SEARCH = "https://cova.test/crm/v1/Companies(42)/Search"
FILTER = "LastModifiedDateUtc ge datetime'2026-11-24T09:00:00Z'"


def token(rsps: responses.RequestsMock, value: str = "cova-token-1") -> responses.BaseResponse:
    return rsps.add(
        responses.POST, COVA_TOKEN_URL, json={"access_token": value, "expires_in": 43200, "refresh_token": "r"}
    )


def test_token_once_and_pages_with_skip_top(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    tokens = token(rsps)
    bearer = matchers.header_matcher({"Authorization": "Bearer cova-token-1"})
    rsps.add(
        responses.GET,
        LIST,
        json=[covasoft_record(i) for i in range(100)],
        match=[bearer, matchers.query_param_matcher({"$filter": FILTER, "$skip": "0", "$top": "100"})],
    )
    rsps.add(
        responses.GET,
        LIST,
        json={"_links": {}, "_embedded": {"self": [covasoft_record(100)]}},
        match=[bearer, matchers.query_param_matcher({"$filter": FILTER, "$skip": "100", "$top": "100"})],
    )
    pages = list(make_client("covasoft").iter_customers(SINCE))
    assert [len(p.records) for p in pages] == [100, 1]
    assert tokens.call_count == 1
    assert parse_qs(rsps.calls[0].request.body) == {
        "grant_type": ["password"],
        "username": ["cova-user"],
        "password": ["pw-s3cr3t-value"],
        "client_id": ["cova-client"],
        "client_secret": ["cs-s3cr3t-value"],
    }
    assert "%20ge%20datetime%272026-11-24T09%3A00%3A00Z%27" in rsps.calls[1].request.url


class IgnoringServer:
    """A Cova listing that applies the LastModifiedDateUtc filter but ignores $skip (and, if asked, $top)."""

    def __init__(self, size: int, *, honours_top: bool) -> None:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        # Three records per instant, so page boundaries fall between records modified at the same moment.
        self.records = [
            covasoft_record(i, LastModifiedDateUtc=(start + timedelta(seconds=i // 3)).isoformat()) for i in range(size)
        ]
        self.honours_top = honours_top
        self.requests = 0

    def answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests += 1
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}
        match = re.search(r"datetime'([^']+)'", query["$filter"])
        assert match is not None
        since = parse_datetime(match[1])
        assert since is not None
        found = [r for r in self.records if parse_datetime(r["LastModifiedDateUtc"]) >= since]  # type: ignore[operator]
        found.sort(key=lambda r: r["LastModifiedDateUtc"])
        if self.honours_top:
            found = found[: int(query["$top"])]
        return 200, {}, json.dumps(found)


@pytest.mark.parametrize("in_flight", [1, 4])
@pytest.mark.parametrize("honours_top", [True, False])
def test_a_server_that_ignores_skip_is_walked_by_moving_the_filter(
    rsps: responses.RequestsMock, make_client: MakeClient, honours_top: bool, in_flight: int
) -> None:
    token(rsps)
    server = IgnoringServer(250, honours_top=honours_top)
    rsps.add_callback(responses.GET, LIST, callback=server.answer)
    client = make_client("covasoft", pages_in_flight=in_flight)
    ids = [r.customer_id for page in client.iter_customers() for r in page.records]
    assert sorted(ids) == sorted(r["Id"] for r in server.records)  # each once: ties at a boundary are not repeated
    # Everything at once: one request. Pages of 100: the first, its repeat (which shows $skip is ignored), then
    # one per page from the newest instant read so far, until a short page. Pages asked ahead by $skip are
    # dropped once the repeat shows $skip is ignored (at most the 3 asked with the repeat).
    expected = 4 if honours_top else 1
    assert expected <= server.requests <= expected + (in_flight - 1 if honours_top else 0)


def test_hal_page_without_embedded_is_empty(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    rsps.add(responses.GET, LIST, json={"_links": {"self": {"href": "x"}}})
    pages = list(make_client("covasoft").iter_customers(SINCE))
    assert [p.records for p in pages] == [[]]


def test_token_expiring_mid_pagination(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps, "cova-token-1")
    token(rsps, "cova-token-2")
    rsps.add(
        responses.GET,
        LIST,
        json=[covasoft_record(i) for i in range(100)],
        match=[matchers.query_param_matcher({"$filter": FILTER, "$skip": "0", "$top": "100"})],
    )
    rsps.add(
        responses.GET,
        LIST,
        status=401,
        json={"Message": "token expired"},
        match=[matchers.header_matcher({"Authorization": "Bearer cova-token-1"})],
    )
    rsps.add(
        responses.GET,
        LIST,
        json=[covasoft_record(100)],
        match=[matchers.header_matcher({"Authorization": "Bearer cova-token-2"})],
    )
    pages = list(make_client("covasoft").iter_customers(SINCE))
    assert sum(len(p.records) for p in pages) == 101


def test_token_cached_until_expiry(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    now = [0.0]
    tokens = token(rsps)
    rsps.add(responses.GET, LIST, json=[])
    client = make_client("covasoft", clock=lambda: now[0])
    client.check_connection()
    now[0] = 43200 - 120
    client.check_connection()
    assert tokens.call_count == 1
    now[0] = 43200
    client.check_connection()
    assert tokens.call_count == 2


def test_token_url_default_and_override(make_client: MakeClient) -> None:
    assert make_client("covasoft", base_url="").token_url() == "https://accounts.iqmetrix.net/v1/oauth2/token"  # type: ignore[attr-defined]
    creds = {**make_client("covasoft")._credentials, "token_url": "https://auth.test/token"}
    assert make_client("covasoft", credentials=creds).token_url() == "https://auth.test/token"  # type: ignore[attr-defined]


def test_wrong_password_is_an_auth_error(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.POST, COVA_TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(PosAuthError):
        make_client("covasoft").check_connection()


def test_contact_methods_and_addresses(make_client: MakeClient) -> None:
    record = make_client("covasoft").parse_record(covasoft_record(1, Disabled=True))
    assert record.email == "jas1@example.com"
    assert record.phone == "3062220001"
    assert record.birthday == date(1952, 7, 23)
    assert (record.street, record.city, record.state, record.postal_code) == (
        "1600 Amphitheatre Pkwy",
        "Mountain View",
        "CA",
        "94043",
    )
    assert record.customer_type == "recreational"
    assert record.active is False
    default_phone = covasoft_record(
        2,
        ContactMethods=[
            {"ContactMethodCategoryId": 1, "Value": "111-111-1111"},
            {"ContactMethodCategoryId": 1, "Value": "222-222-2222", "Default": True},
        ],
    )
    assert make_client("covasoft").parse_record(default_phone).phone == "2222222222"


@pytest.mark.parametrize(
    ("filters", "field", "value"),
    [
        ({"phone": "(306) 222-0001"}, "Phone", "3062220001"),
        ({"email": "jas1@example.com"}, "Contact", "jas1@example.com"),
    ],
)
def test_search(rsps: responses.RequestsMock, make_client: MakeClient, filters: dict, field: str, value: str) -> None:
    token(rsps)
    rsps.add(responses.POST, SEARCH, json={"Id": 1, "Criteria": [], "Results": [covasoft_record(1)]})
    found = make_client("covasoft").search_customers(**filters)
    assert [r.last_name for r in found] == ["Jasmine1"]
    body = json.loads(rsps.calls[-1].request.body)
    assert body == {"Criteria": [{"Criteria": value, "Field": field, "Operation": "Equals"}]}


def test_sends_the_documented_accept_header(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    accept = matchers.header_matcher({"Accept": "application/hal+json, application/json"})
    rsps.add(responses.GET, LIST, json=[], match=[accept])
    rsps.add(responses.POST, SEARCH, json={"Id": 1, "Criteria": [], "Results": []}, match=[accept])
    client = make_client("covasoft")
    assert [page.records for page in client.iter_customers(SINCE)] == [[]]
    assert client.search_customers(phone="3062220001") == []


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 404, "json": {"Message": "Resource cannot be found"}}, PosBadResponse),
        ({"status": 200, "json": {"Id": 1, "Criteria": []}}, PosBadResponse),  # no Results
        ({"status": 200, "body": ""}, PosBadResponse),
        ({"status": 503, "json": {"Message": "busy"}}, PosUnavailable),
    ],
)
def test_a_search_that_could_not_search_is_an_error_not_no_match(
    rsps: responses.RequestsMock, make_client: MakeClient, answer: dict, error: type
) -> None:
    token(rsps)
    rsps.add(responses.POST, SEARCH, **answer)
    with pytest.raises(error):
        make_client("covasoft").search_customers(email="jas1@example.com")


def test_get_customer(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    rsps.add(responses.GET, "https://cova.test/crm/v1/Companies(42)/CustomerFull(abc)", json=covasoft_record(5))
    rsps.add(
        responses.GET,
        "https://cova.test/crm/v1/Companies(42)/CustomerFull(gone)",
        status=404,
        json={"Message": "Resource cannot be found"},
        content_type="application/hal+json",
    )
    client = make_client("covasoft")
    record = client.get_customer("abc")
    assert record is not None
    assert record.last_name == "Jasmine5"
    assert client.get_customer("gone") is None


def test_rate_limit_reset_header_stands_in_for_retry_after(
    rsps: responses.RequestsMock, make_client: MakeClient, sleeps: list
) -> None:
    token(rsps)
    rsps.add(responses.GET, LIST, status=429, headers={"X-RateLimit-ResetSeconds": "3"})
    rsps.add(responses.GET, LIST, json=[])
    list(make_client("covasoft").iter_customers(SINCE))
    assert sleeps == [3.0]
