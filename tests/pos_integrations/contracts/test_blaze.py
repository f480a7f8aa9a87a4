"""Blaze against its published members swagger: every request our client sends passes the swagger (checked by
the `rsps` fixture as it is sent), and a member as a real listing sends it reads as the customer it is.

The swagger gives no example answers. The member here carries the facts of a real `/partner/members` listing
(its values are not reproduced): `sex: 0` for everyone, a phone only in `cpn` when `primaryPhone` is empty,
`dob` at local midnight on the US west coast (07:00 or 08:00 UTC), `middleName`, `lastVisitDate` and an
identification's `type` null. Those are the only ways it departs from the swagger's `Member`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from pos_integrations import CustomerRecord, PosClient

from ..conftest import NOW, SINCE, blaze_record
from .specs import ContractViolation, answer_problems

MakeClient = Callable[..., PosClient]
MEMBERS = "https://blaze.test/api/v1/partner/members"
REAL = {
    key: value
    for key, value in blaze_record(
        7,
        primaryPhone="",
        cpn="+14155550123",
        dob=int(datetime(1988, 9, 12, 7, 0, tzinfo=UTC).timestamp() * 1000),  # midnight, PDT
    ).items()
    if key != "birthdate"  # the date comes from `dob` alone
}
EXPECTED = CustomerRecord(
    customer_id="000000000000000000000007",
    first_name="JANE",
    last_name="ROE7",
    email="roe7@example.com",
    phone="4155550123",
    birthday=date(1988, 9, 12),
    gender="",
    drivers_license="X0000007",
    drivers_license_expiration=date(2030, 1, 1),
    customer_type="recreational",
    active=True,
    banned=False,
    notes="likes edibles",
    street="1 MAIN ST",
    city="LOS ANGELES",
    state="CA",
    postal_code="90001",
    loyalty_points=Decimal("10.98"),
    pos_created_at=datetime(2025, 9, 19, 1, 59, 9, 594000, tzinfo=UTC),
    pos_updated_at=datetime(2026, 11, 24, 9, 0, 0, 7000, tzinfo=UTC),
)


def listing(*members: dict[str, Any]) -> dict[str, Any]:
    return {"values": list(members), "skip": 0, "limit": 500, "total": len(members)}


def test_a_real_members_departures_from_the_swagger_are_the_known_ones() -> None:
    problems = answer_problems("blaze", "GET", "/api/v1/partner/members?skip=0&limit=500", 200, listing(REAL))
    assert {problem.split(":")[0] for problem in problems} == {
        "values/0/sex",  # an integer (0: not set), where the swagger says MALE/FEMALE/OTHER
        "values/0/middleName",  # null
        "values/0/lastVisitDate",  # null
        "values/0/identifications/0/type",  # null
    }
    swagger_shaped = {**REAL, "sex": "FEMALE", "middleName": "", "lastVisitDate": 1761793355390}
    swagger_shaped["identifications"] = [{**REAL["identifications"][0], "type": "Drivers"}]
    assert answer_problems("blaze", "GET", "/api/v1/partner/members", 200, listing(swagger_shaped)) == []


def test_full_listing_without_dates(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(
        responses.GET, MEMBERS, json=listing(REAL), match=[matchers.query_param_matcher({"skip": "0", "limit": "500"})]
    )
    rsps.add(responses.GET, MEMBERS, json=listing())  # the closing window: nobody modified during the walk
    records = [r for page in make_client("blaze").iter_customers() for r in page.records]
    assert records == [EXPECTED]
    closing = {k: v[0] for k, v in parse_qs(urlsplit(rsps.calls[1].request.url or "").query).items()}
    assert closing["endDate"] == str(int(NOW.timestamp() * 1000))


def test_incremental_listing(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, MEMBERS, json=listing(REAL))
    assert [r for page in make_client("blaze").iter_customers(SINCE) for r in page.records] == [EXPECTED]


@pytest.mark.parametrize(
    ("filters", "url", "body"),
    [
        ({"email": "roe7@example.com"}, f"{MEMBERS}/email/roe7%40example.com", REAL),
        ({"phone": "415-555-0123"}, f"{MEMBERS}/search/phone", {"values": [REAL]}),  # ListResultMember
        ({"drivers_license": "X0000007"}, f"{MEMBERS}/search", {"values": [REAL]}),
        ({"birthday": date(1988, 9, 12)}, f"{MEMBERS}/search/dob", listing(REAL)),  # SearchResultMember
    ],
)
def test_each_lookup(
    rsps: responses.RequestsMock, make_client: MakeClient, filters: dict[str, Any], url: str, body: Any
) -> None:
    rsps.add(responses.GET, url, json=body)
    assert make_client("blaze").search_customers(**filters) == [EXPECTED]


def test_get_member_by_id(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, f"{MEMBERS}/000000000000000000000007", json=REAL)
    assert make_client("blaze").get_customer("000000000000000000000007") == EXPECTED


def test_a_request_the_swagger_does_not_allow_fails_the_test(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    """The check is live: epoch milliseconds where the swagger wants an int64 pass, text does not."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps(listing())

    rsps.add_callback(responses.GET, MEMBERS, callback=answer)
    client = make_client("blaze")
    client.http.get_json("/api/v1/partner/members", params={"startDate": 1, "endDate": 2})
    with pytest.raises(ContractViolation, match="startDate"):
        client.http.get_json("/api/v1/partner/members", params={"startDate": "2024-01-01"})
