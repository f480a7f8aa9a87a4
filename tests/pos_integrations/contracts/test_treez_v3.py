"""Treez v3 against its published customer API spec: every request our client sends passes the spec (checked
by the `rsps` fixture as it is sent), and the spec's own example answers read as the customers they show.

The spec models a listing's `data` as one customer where the API sends an array: our client reads both. The
listing's `date_time` is checked as its description says, not as its `format: date` (see specs.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa

from pos_integrations import (
    CustomerInput,
    CustomerRecord,
    PosAuthError,
    PosClient,
    PosValidationError,
)

from ..conftest import SINCE, v3_credentials
from .specs import CONTRACTS, ContractViolation, examples

MakeClient = Callable[..., PosClient]
ROOT = "https://api-prod.treez.io/dispensary/v3/greenleaf"
SPEC = CONTRACTS["treez"].spec
CUSTOMER = examples(SPEC, "dispensary-customer-get-by-id", "200")["Result"]
CREATED = examples(SPEC, "dispensary-customer-create", "200")["Result"]
UNAUTHORIZED = examples(SPEC, "dispensary-customer-get-by-id", "401")["Result"]
NOT_FOUND = examples(SPEC, "dispensary-customer-get-by-email", "404")["Result"]
DOESNT_EXIST = examples(SPEC, "dispensary-customer-get-by-id", "404")["Result"]
LIST_400 = examples(SPEC, "dispensary-customer-get-by-last-modified", "400")

# The spec's example customer, as our canonical record: the surviving record of a merge (MERGED, no
# merged_into_customer_id, merged_customer_ids [19]) is active.
EXPECTED = CustomerRecord(
    customer_id="20",
    first_name="KATHLEEN",
    last_name="SCOTT",
    email="SCOTT20@mail.com",
    phone="7777777777",
    birthday=date(1989, 3, 7),
    gender="",  # U: unspecified
    drivers_license="LIC744",
    drivers_license_expiration=date(2028, 5, 12),
    medical_card_number="MED738",
    medical_card_expiration=date(2024, 5, 31),
    customer_type="medical",
    active=True,
    banned=False,
    notes="N/A",
    street="18 KATHLEEN STREET",
    city="SCOTT",
    state="CA",
    postal_code="20555",
    loyalty_points=Decimal(0),
    pos_created_at=datetime(2024, 5, 14, 16, 6, 40, tzinfo=UTC),
    pos_updated_at=datetime(2025, 10, 21, 14, 26, 36, tzinfo=UTC),
    merged_into_customer_id=None,
    merged_customer_ids=("19",),
)


@pytest.fixture
def v3(make_client: MakeClient, rsa_key: rsa.RSAPrivateKey) -> PosClient:
    """A Treez client on the v3 API (production URL, self-signed JWT)."""
    return make_client("treez", base_url="", credentials=v3_credentials(rsa_key))


def test_the_example_customer_reads_as_the_record_it_shows(rsps: responses.RequestsMock, v3: PosClient) -> None:
    rsps.add(responses.GET, f"{ROOT}/customer/20", json=CUSTOMER)
    assert v3.get_customer("20") == EXPECTED


def test_listing_pages_until_an_empty_one(rsps: responses.RequestsMock, v3: PosClient) -> None:
    page = re.compile(re.escape(ROOT) + r"/customer/lastUpdated/after/[^/]+/page/(\d+)/pagesize/50$")
    rsps.add(responses.GET, page, json=CUSTOMER)  # `data` one object, as the spec models it
    rsps.add(responses.GET, page, json={**CUSTOMER, "data": []})
    incremental = [r for p in v3.iter_customers(SINCE) for r in p.records]
    rsps.add(responses.GET, page, json={**CUSTOMER, "data": [CUSTOMER["data"]]})  # an array, as the API sends
    rsps.add(responses.GET, page, json={**CUSTOMER, "data": []})
    full = [r for p in v3.iter_customers() for r in p.records]
    assert incremental == full == [EXPECTED]
    paths = [call.request.path_url for call in rsps.calls]
    assert paths[0].endswith("/after/2026-11-24T09%3A00%3A00.000%2B00%3A00/page/1/pagesize/50")
    assert paths[2].endswith("/after/1970-01-01T00%3A00%3A00.000%2B00%3A00/page/1/pagesize/50")


@pytest.mark.parametrize(
    ("filters", "path"),
    [
        ({"phone": "(777) 777-7777"}, "/customer/phone/7777777777"),
        ({"email": "SCOTT20@mail.com"}, "/customer/email/SCOTT20%40mail.com"),
        ({"drivers_license": "LIC744"}, "/customer/driverlicense/LIC744"),
        ({"first_name": "Kathleen", "last_name": "Scott"}, "/customer/firstname/Kathleen/lastname/Scott"),
    ],
)
def test_each_lookup(rsps: responses.RequestsMock, v3: PosClient, filters: dict[str, str], path: str) -> None:
    rsps.add(responses.GET, ROOT + path, json=CUSTOMER)
    assert v3.search_customers(**filters) == [EXPECTED]
    rsps.replace(responses.GET, ROOT + path, status=404, json=NOT_FOUND)
    assert v3.search_customers(**filters) == []


def test_an_unknown_id_is_none(rsps: responses.RequestsMock, v3: PosClient) -> None:
    rsps.add(responses.GET, f"{ROOT}/customer/21", status=404, json=DOESNT_EXIST)
    assert v3.get_customer("21") is None


def test_create_sends_what_the_schema_has_and_reads_the_answer(rsps: responses.RequestsMock, v3: PosClient) -> None:
    rsps.add(responses.POST, f"{ROOT}/customer/detailcustomer", json=CREATED)
    created = v3.create_customer(
        CustomerInput(
            first_name="Kathleen",
            last_name="Scott",
            birthday=date(1989, 3, 7),
            gender="X",
            email="SCOTT20@mail.com",
            phone="777-777-7777",
            drivers_license="LIC744",
            drivers_license_expiration=date(2028, 5, 12),
            customer_type="medical",
            medical_card_number="MED738",
            medical_card_expiration=date(2024, 5, 31),
            notes="N/A",
        )
    )
    # The created example has no status: active, like any record without one.
    assert created == replace(
        EXPECTED, pos_updated_at=datetime(2024, 5, 14, 16, 6, 40, tzinfo=UTC), merged_customer_ids=()
    )


def test_create_without_a_birthday_never_reaches_treez(rsps: responses.RequestsMock, v3: PosClient) -> None:
    with pytest.raises(PosValidationError) as caught:
        v3.create_customer(CustomerInput(first_name="Kathleen", last_name="Scott"))
    assert caught.value.field_errors == {"birthday": ["Treez requires this field."]}
    assert len(rsps.calls) == 0


def test_the_unauthorized_example_is_an_auth_error(rsps: responses.RequestsMock, v3: PosClient) -> None:
    rsps.add(responses.GET, f"{ROOT}/customer/20", status=401, json=UNAUTHORIZED)
    with pytest.raises(PosAuthError):
        v3.get_customer("20")


@pytest.mark.parametrize("name", sorted(LIST_400))
def test_a_refused_listing_is_an_error_not_an_empty_page(
    rsps: responses.RequestsMock, v3: PosClient, name: str
) -> None:
    page = re.compile(re.escape(ROOT) + r"/customer/lastUpdated/after/.+")
    rsps.add(responses.GET, page, status=400, json=LIST_400[name])
    with pytest.raises(PosValidationError, match=LIST_400[name]["resultReason"]):
        list(v3.iter_customers(SINCE))


def test_a_request_the_spec_does_not_allow_fails_the_test(rsps: responses.RequestsMock, v3: PosClient) -> None:
    """The check is live: a query parameter the spec does not name is caught as it is sent."""
    # The check refuses each request before its mock answers, so the mocks are never used.
    rsps.assert_all_requests_are_fired = False
    rsps.add(responses.GET, f"{ROOT}/customer/20", json=CUSTOMER)
    with pytest.raises(ContractViolation, match="'page' is not in the spec"):
        v3.http.get_json("/greenleaf/customer/20", params={"page": 2})
    body: dict[str, Any] = {"first_name": "A", "last_name": "B", "patient_type": "ADULT"}
    rsps.add(responses.POST, f"{ROOT}/customer/detailcustomer", json=CREATED)
    with pytest.raises(ContractViolation, match="'birthday' is a required property"):
        v3.http.post_json("/greenleaf/customer/detailcustomer", json=body, idempotent=False)
