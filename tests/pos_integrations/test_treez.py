"""Treez dialect: v2 tokens, v3 JWT, `/page/{n}/pagesize/50` until empty, lookups by path, create/duplicate."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from responses import matchers

from pos_integrations import (
    CredentialsError,
    CustomerInput,
    PosAuthError,
    PosClient,
    PosDuplicate,
    PosNotSupported,
    PosValidationError,
)

from .conftest import SINCE, TREEZ_TOKEN_URL, treez_record, v3_credentials

MakeClient = Callable[..., PosClient]
ROOT = "https://treez.test/v2.0/dispensary/greenleaf"
AUTH = {"Authorization": "Bearer tz-token-1", "client_id": "treez-client"}
JANE = CustomerInput(first_name="Jane", last_name="Doe", birthday=date(1990, 1, 1))


def page_url(page: int) -> re.Pattern[str]:
    return re.compile(re.escape(ROOT) + rf"/customer/lastUpdated/after/[^/]+/page/{page}/pagesize/50$")


def ok(data: object) -> dict:
    return {"resultCode": "SUCCESS", "resultReason": None, "data": data}


def token(rsps: responses.RequestsMock, value: str = "tz-token-1") -> responses.BaseResponse:
    return rsps.add(responses.POST, TREEZ_TOKEN_URL, json={"resultCode": "SUCCESS", "access_token": value})


def test_v2_token_is_fetched_once_and_sent_with_client_id(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    tokens = token(rsps)
    rsps.add(responses.GET, page_url(1), json=ok([treez_record(1)]), match=[matchers.header_matcher(AUTH)])
    rsps.add(responses.GET, page_url(2), json=ok([treez_record(2)]), match=[matchers.header_matcher(AUTH)])
    rsps.add(responses.GET, page_url(3), json=ok([]), match=[matchers.header_matcher(AUTH)])
    pages = list(make_client("treez").iter_customers(SINCE))
    assert [r.customer_id for p in pages for r in p.records] == ["21", "22"]
    assert tokens.call_count == 1
    assert parse_qs(rsps.calls[0].request.body) == {"client_id": ["treez-client"], "apikey": ["tz-s3cr3t-value"]}


def test_modified_since_is_iso_with_offset_in_the_path(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    rsps.add(responses.GET, page_url(1), json=ok([]))
    list(make_client("treez").iter_customers(SINCE))
    path = rsps.calls[1].request.path_url
    after = "2026-11-24T09%3A00%3A00.000%2B00%3A00"
    assert path == f"/v2.0/dispensary/greenleaf/customer/lastUpdated/after/{after}/page/1/pagesize/50"


def test_newest_first_pages_and_positions(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    newest = treez_record(1, last_update="2026-11-24T02:00:00.000-07:00")
    older = treez_record(2, last_update="2026-11-23T02:00:00.000-07:00")
    rsps.add(responses.GET, page_url(1), json=ok([newest]))
    rsps.add(responses.GET, page_url(2), json=ok([older]))
    rsps.add(responses.GET, page_url(3), json=ok([]))
    pages = list(make_client("treez").iter_customers(SINCE))
    assert pages[0].newest_updated_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert pages[1].position["page"] == 3
    # Resuming after page 1 fetches page 2 first.
    resumed = list(make_client("treez").iter_customers(start=pages[0].position))
    assert [r.customer_id for p in resumed for r in p.records] == ["22"]


def test_token_expiring_mid_pagination_is_refreshed_once(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps, "tz-token-1")
    token(rsps, "tz-token-2")
    rsps.add(responses.GET, page_url(1), json=ok([treez_record(1)]))
    rsps.add(
        responses.GET,
        page_url(2),
        status=401,
        json={"resultCode": "FAIL", "resultReason": "Full authentication is required to access this resource"},
    )
    rsps.add(
        responses.GET,
        page_url(2),
        json=ok([treez_record(2)]),
        match=[matchers.header_matcher({"Authorization": "Bearer tz-token-2"})],
    )
    rsps.add(responses.GET, page_url(3), json=ok([]))
    pages = list(make_client("treez").iter_customers(SINCE))
    assert [r.customer_id for p in pages for r in p.records] == ["21", "22"]
    assert sum(1 for c in rsps.calls if c.request.url == TREEZ_TOKEN_URL) == 2


def test_a_second_401_is_an_auth_error(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    rsps.add(responses.GET, page_url(1), status=401, json={"resultCode": "FAIL", "resultReason": "nope"})
    with pytest.raises(PosAuthError):
        list(make_client("treez").iter_customers(SINCE))


def test_refused_token_is_an_auth_error(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.POST, TREEZ_TOKEN_URL, status=400, json={"resultCode": "FAIL", "resultReason": "bad key"})
    with pytest.raises(PosAuthError):
        make_client("treez").check_connection()


def test_field_mapping_and_merged_customers(make_client: MakeClient) -> None:
    client = make_client("treez")
    record = client.parse_record(treez_record(1))
    assert record.customer_id == "21"
    assert (record.first_name, record.last_name, record.phone) == ("JANE", "DOE1", "5550000001")
    assert record.gender == ""  # Treez "U"
    assert (record.drivers_license, record.drivers_license_expiration) == ("D0000001", date(2030, 1, 1))
    assert (record.medical_card_number, record.medical_card_expiration) == ("MED100", date(2027, 1, 31))
    assert record.customer_type == "medical"
    assert (record.street, record.city, record.state, record.postal_code) == ("1 MAIN ST", "OAKLAND", "CA", "94601")
    assert record.loyalty_points == Decimal(12)
    assert record.pos_updated_at == datetime(2026, 11, 24, 9, 26, 36, tzinfo=UTC)
    assert record.active
    assert record.merged_into_customer_id is None
    assert record.merged_customer_ids == ()
    assert record.banned is False
    merged = client.parse_record(treez_record(2, status="MERGED", merged_into_customer_id="21", patient_type="ADULT"))
    assert (merged.active, merged.merged_into_customer_id, merged.customer_type) == (False, "21", "recreational")


def test_the_survivor_of_a_merge_is_active(make_client: MakeClient) -> None:
    client = make_client("treez")
    # As the spec's example: MERGED, no merged_into_customer_id, the absorbed ids listed.
    survivor = client.parse_record(treez_record(1, status="MERGED", merged_customer_ids=[19, 18]))
    assert survivor.active is True
    assert survivor.merged_into_customer_id is None
    assert survivor.merged_customer_ids == ("19", "18")
    # MERGED without either side of the merge named stays inactive; so does a deactivated survivor.
    assert client.parse_record(treez_record(2, status="MERGED", merged_customer_ids=[])).active is False
    assert client.parse_record(treez_record(3, status="INACTIVE", merged_customer_ids=[19])).active is False


@pytest.mark.parametrize(("value", "banned"), [(True, True), (False, False), (None, False)])
def test_banned_is_kept(make_client: MakeClient, value: object, banned: bool) -> None:
    record = make_client("treez").parse_record(treez_record(1, banned=value))
    assert record.banned is banned
    assert record.active is True


@pytest.mark.parametrize(("gender", "ours"), [("M", "M"), ("F", "F"), ("N", "X"), ("U", ""), ("", "")])
def test_gender_codes(make_client: MakeClient, gender: str, ours: str) -> None:
    assert make_client("treez").parse_record(treez_record(1, gender=gender)).gender == ours


@pytest.mark.parametrize(
    ("filters", "path"),
    [
        ({"phone": "(555) 000-0001"}, "/customer/phone/5550000001"),
        ({"email": "jane1@example.com"}, "/customer/email/jane1%40example.com"),
        ({"drivers_license": "D0000001"}, "/customer/driverlicense/D0000001"),
        ({"first_name": "Jane", "last_name": "Doe1"}, "/customer/firstname/Jane/lastname/Doe1"),
    ],
)
def test_lookups_by_path_and_logs_redact_them(
    rsps: responses.RequestsMock, make_client: MakeClient, filters: dict, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    token(rsps)
    rsps.add(responses.GET, ROOT + path, json=ok([treez_record(1)]))
    with caplog.at_level(logging.INFO, logger="pos_integrations"):
        found = make_client("treez").search_customers(**filters)
    assert [r.customer_id for r in found] == ["21"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    for value in filters.values():
        assert str(value) not in logged
    assert "5550000001" not in logged
    assert "example.com" not in logged


def test_lookup_miss_and_object_answers(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    rsps.add(responses.GET, ROOT + "/customer/email/x%40example.com", json=ok([]))
    rsps.add(
        responses.GET,
        ROOT + "/customer/phone/5550000009",
        status=404,
        json={"resultCode": "FAIL", "resultReason": "NOT_FOUND", "resultDetail": "Nothing was found"},
    )
    rsps.add(responses.GET, ROOT + "/customer/31", json=ok(treez_record(11)))
    client = make_client("treez")
    assert client.search_customers(email="x@example.com") == []
    assert client.search_customers(phone="5550000009") == []
    record = client.get_customer("31")
    assert record is not None
    assert record.customer_id == "31"


def test_last_name_alone_is_not_searchable(make_client: MakeClient) -> None:
    with pytest.raises(PosNotSupported):
        make_client("treez").search_customers(last_name="Doe")


def test_create(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    rsps.add(responses.POST, ROOT + "/customer/detailcustomer", json=ok(treez_record(40, first_name="NEW")))
    record = make_client("treez").create_customer(
        CustomerInput(
            first_name="New",
            last_name="Doe",
            birthday=date(1990, 1, 1),
            phone="555 000 1111",
            gender="X",
            drivers_license="D1234567",
            drivers_license_expiration=date(2030, 1, 1),
        )
    )
    assert record.customer_id == "60"
    assert record.first_name == "NEW"
    sent = json.loads(rsps.calls[-1].request.body)
    # Non-binary is the spec's N; the create schema has no drivers_license_expiration, so it is not sent.
    assert sent == {
        "first_name": "New",
        "last_name": "Doe",
        "birthday": "1990-01-01",
        "phone": "5550001111",
        "gender": "N",
        "drivers_license": "D1234567",
        "patient_type": "ADULT",
    }


@pytest.mark.parametrize(
    ("card", "expiry", "sent"),
    [
        (
            "MED-1",
            date(2027, 1, 31),
            {"patient_type": "MEDICAL_MMID", "state_medical_id": "MED-1", "permit_expiration": "2027-01-31"},
        ),
        ("MED-1", None, {"patient_type": "ADULT"}),
        ("", date(2027, 1, 31), {"patient_type": "ADULT"}),
    ],
)
def test_medical_mmid_only_with_the_card_and_its_expiry(
    rsps: responses.RequestsMock, make_client: MakeClient, card: str, expiry: date | None, sent: dict
) -> None:
    token(rsps)
    rsps.add(responses.POST, ROOT + "/customer/detailcustomer", json=ok(treez_record(40)))
    make_client("treez").create_customer(
        CustomerInput(
            first_name="Med",
            last_name="Doe",
            birthday=date(1990, 1, 1),
            customer_type="medical",
            medical_card_number=card,
            medical_card_expiration=expiry,
        )
    )
    body = json.loads(rsps.calls[-1].request.body)
    assert {k: v for k, v in body.items() if k not in ("first_name", "last_name", "birthday")} == sent


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (CustomerInput(first_name="Jane", last_name="Doe"), "birthday"),
        (CustomerInput(first_name="", last_name="Doe", birthday=date(1990, 1, 1)), "first_name"),
        (CustomerInput(first_name="Jane", last_name="Doe", birthday=date(1990, 1, 1), phone="555-0101"), "phone"),
    ],
)
def test_create_refuses_what_treez_would_before_calling_it(
    rsps: responses.RequestsMock, make_client: MakeClient, data: CustomerInput, field: str
) -> None:
    client = make_client("treez")
    with pytest.raises(PosValidationError) as caught:
        client.create_customer(data)
    assert list(caught.value.field_errors) == [field]
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("status", [200, 400, 409])
def test_duplicate_carries_the_existing_id(
    rsps: responses.RequestsMock, make_client: MakeClient, status: int, sleeps: list
) -> None:
    token(rsps)
    rsps.add(
        responses.POST,
        ROOT + "/customer/detailcustomer",
        status=status,
        json={"resultCode": "FAIL", "resultReason": "Customer is a duplicate", "data": {"customer_id": "31"}},
    )
    with pytest.raises(PosDuplicate) as caught:
        make_client("treez").create_customer(JANE)
    assert caught.value.existing_customer_id == "31"
    assert sleeps == []  # never retried


def test_duplicate_id_in_the_detail_text(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    token(rsps)
    rsps.add(
        responses.POST,
        ROOT + "/customer/detailcustomer",
        json={"resultCode": "FAIL", "resultReason": "DUPLICATE_CUSTOMER", "resultDetail": "existing customer_id: 77"},
    )
    with pytest.raises(PosDuplicate) as caught:
        make_client("treez").create_customer(JANE)
    assert caught.value.existing_customer_id == "77"


def test_create_is_not_retried_on_5xx(rsps: responses.RequestsMock, make_client: MakeClient, sleeps: list) -> None:
    token(rsps)
    create = rsps.add(responses.POST, ROOT + "/customer/detailcustomer", status=503)
    with pytest.raises(Exception, match="503"):
        make_client("treez").create_customer(JANE)
    assert create.call_count == 1
    assert sleeps == []


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_v3_token_is_a_standard_jwt_signed_per_request_for_the_exact_url(
    rsps: responses.RequestsMock, make_client: MakeClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    client = make_client("treez", base_url="", credentials=v3_credentials(rsa_key))
    assert client.base_url == "https://api-prod.treez.io/dispensary/v3"
    url = "https://api-prod.treez.io/dispensary/v3/greenleaf/customer/31"
    rsps.add(responses.GET, url, json=ok(treez_record(11)))
    assert client.get_customer("31") is not None
    token = rsps.calls[0].request.headers["Authorization"]
    # A standard JWT (RFC 7519, JWS compact): three parts, each base64url without padding; RS256 over the first two.
    header_part, claims_part, signature_part = token.split(".")
    for part in (header_part, claims_part, signature_part):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", part)
    assert json.loads(unb64url(header_part)) == {"alg": "RS256", "typ": "JWT"}
    signed = f"{header_part}.{claims_part}".encode()
    rsa_key.public_key().verify(unb64url(signature_part), signed, padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(unb64url(claims_part))
    assert claims["aud"] == url
    assert (claims["iss"], claims["oid"]) == ("cert-1", "org-guid")
    assert claims["exp"] - claims["iat"] == 30000
    assert claims["jti"]
    assert not any(c.request.url.endswith("gettokens") for c in rsps.calls)


def test_v3_bad_private_key_is_a_credentials_error(make_client: MakeClient) -> None:
    creds = {"dispensary": "g", "certificate_id": "c", "organization_id": "o", "private_key": "not a pem"}
    with pytest.raises(CredentialsError):
        make_client("treez", credentials=creds)


def test_v2_default_base_url(make_client: MakeClient) -> None:
    assert make_client("treez", base_url=None).base_url == "https://api.treez.io/v2.0/dispensary"
