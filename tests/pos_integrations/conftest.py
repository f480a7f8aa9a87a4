"""Fixtures for the POS client tests: credentials, vendor records, a recording sleep, mocked HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pos_integrations import PosClient, get_client

from .contracts.specs import check_request, checked

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=1)
SECRET = "s3cr3t-value"

CREDENTIALS: dict[str, dict[str, str]] = {
    "leaflogix": {"api_key": f"ll-{SECRET}"},
    "treez": {"dispensary": "greenleaf", "client_id": "treez-client", "api_key": f"tz-{SECRET}"},
    "flowhub": {"client_id": "fh-client", "api_key": f"fh-{SECRET}", "store_id": "store-9"},
    "covasoft": {
        "company_id": "42",
        "username": "cova-user",
        "password": f"pw-{SECRET}",
        "client_id": "cova-client",
        "client_secret": f"cs-{SECRET}",
    },
    "blaze": {"partner_key": f"pk-{SECRET}", "api_key": f"bk-{SECRET}"},
}
BASES = {
    "leaflogix": "https://ll.test",
    "treez": "https://treez.test/v2.0/dispensary",
    "flowhub": "https://fh.test",
    "covasoft": "https://cova.test/crm",
    "blaze": "https://blaze.test",
}
TREEZ_TOKEN_URL = "https://treez.test/v2.0/dispensary/greenleaf/config/api/gettokens"
COVA_TOKEN_URL = "https://cova.test/crm/oauth2/token"


def leaflogix_record(i: int, **over: Any) -> dict[str, Any]:
    return {
        "customerId": 1000 + i,
        "firstName": f"Ann{i}",
        "lastName": "Lee",
        "emailAddress": f"ann{i}@example.com",
        "phone": f"(555) 010-{i:04d}",
        "cellPhone": None,
        "dateOfBirth": "1990-02-03T00:00:00",
        "gender": "Female",
        "status": "Active",
        "customerType": "Recreational",
        "mmjidNumber": None,
        "mmjidExpirationDate": None,
        "address1": "1 Main St",
        "address2": "Apt 2",
        "city": "Oakland",
        "state": "CA",
        "postalCode": "94601",
        "notes": "",
        "creationDate": "2024-01-02T09:00:00",
        "lastModifiedDateUTC": "11/24/2026 09:30:00",
        "driversLicenseHash": "ab12cd34",
        "mergedIntoCustomerId": None,
        **over,
    }


def treez_record(i: int, **over: Any) -> dict[str, Any]:
    return {
        "customer_id": str(20 + i),
        "status": "ACTIVE",
        "first_name": "JANE",
        "last_name": f"DOE{i}",
        "birthday": "1990-01-01",
        "drivers_license": f"D{i:07d}",
        "drivers_license_expiration": "2030-01-01",
        "state_medical_id": "MED100",
        "permit_expiration": "2027-01-31 00:00:00.000",
        "email": f"jane{i}@example.com",
        "phone": f"555000{i:04d}",
        "gender": "U",
        "rewards_balance": 12,
        "signup_date": "2024-01-02T09:00:00.000-07:00",
        "last_update": "2026-11-24T02:26:36.000-07:00",
        "patient_type": "MEDICAL_MMID",
        "merged_into_customer_id": None,
        "addresses": [
            {
                "type": "address_of_record",
                "street1": "1 MAIN ST",
                "city": "OAKLAND",
                "state": "CA",
                "zipcode": "94601",
                "primary": True,
            }
        ],
        **over,
    }


def flowhub_record(i: int, **over: Any) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "createdAt": "2023-06-15T22:57:35.836575Z",
        "updatedAt": "2026-11-24T09:10:00.000000Z",
        "type": "recCustomer",
        "name": f"Mary Ann Smith{i}",
        "state": "CO",
        "birthDate": "1985-05-06",
        "loyaltyPoints": 27,
        "phone": f"+1 (555) 020-{i:04d}",
        "email": f"mary{i}@example.com",
        "streetAddress1": "5 Elm St",
        "streetAddress2": None,
        "city": "Denver",
        "zip": "80202",
        "country": "US",
        **over,
    }


def covasoft_record(i: int, **over: Any) -> dict[str, Any]:
    return {
        "Id": f"659c2a38-d083-4421-9330-{i:012d}",
        "PrimaryName": "Princess",
        "FamilyName": f"Jasmine{i}",
        "CustomerTypeId": 2,
        "DateOfBirth": "1952-07-23T12:00:00.000",
        "Disabled": False,
        "Notes": "vip",
        "MergedIntoCustomerId": None,
        "CreatedDateUtc": "2024-01-01T00:00:00.000Z",
        "LastModifiedDateUtc": "2026-11-24T09:15:00.000Z",
        "Addresses": [
            {
                "AddressTypeId": 2,
                "StreetAddress1": "1600 Amphitheatre Pkwy",
                "Locality": "Mountain View",
                "StateCode": "CA",
                "CountryCode": "US",
                "PostalCode": "94043",
                "Default": True,
            }
        ],
        "ContactMethods": [
            {"ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": f"(306) 222-{i:04d}"},
            {"ContactMethodCategoryId": 2, "ContactMethodTypeId": 9, "Value": f"jas{i}@example.com", "Default": True},
        ],
        **over,
    }


def blaze_record(i: int, **over: Any) -> dict[str, Any]:
    """A member shaped as a real /partner/members listing sends them (fake values)."""
    return {
        "id": f"{i:024x}",
        "created": 1758247149594,
        "modified": 1795510800000 + i,
        "deleted": False,
        "firstName": "JANE",
        "middleName": None,
        "lastName": f"ROE{i}",
        "email": f"roe{i}@example.com",
        "primaryPhone": f"555010{i:04d}",
        "cpn": f"+1555010{i:04d}",
        "dob": 631180800000,  # 1990-01-01T08:00:00Z: midnight in Los Angeles
        "birthdate": "1990-01-01",
        "sex": 0,
        "status": "Active",
        "medical": False,
        "consumerType": "AdultUse",
        "address": {"address": "1 MAIN ST", "city": "LOS ANGELES", "state": "CA", "zipCode": "90001", "country": "US"},
        "identifications": [
            {
                "licenseNumber": f"X{i:07d}",
                "expirationDate": 1893456000000,
                "localExpirationDate": "2030-01-01",
                "state": "CA",
                "type": None,
            }
        ],
        "recommendations": [],
        "loyaltyPoints": 10.98,
        "lastVisitDate": None,
        "banPatient": False,
        "notes": [{"message": "likes edibles"}],
        **over,
    }


@dataclass(frozen=True)
class Dialect:
    """How one vendor lists customers, for tests that run against every vendor."""

    vendor: str
    list_url: str | re.Pattern[str]
    record: Callable[..., dict[str, Any]]
    wrap: Callable[[list[Any]], Any]
    id_key: str
    updated_key: str
    end_url: str | re.Pattern[str] | None = None  # a further URL that must answer "no more" (Treez)
    end_body: Any = None
    token_url: str | None = None
    token_body: Any = None


DIALECTS: dict[str, Dialect] = {
    "leaflogix": Dialect(
        "leaflogix",
        "https://ll.test/customer/customers-paginated",
        leaflogix_record,
        lambda items: items,
        "customerId",
        "lastModifiedDateUTC",
    ),
    "treez": Dialect(
        "treez",
        re.compile(
            r"https://treez\.test/v2\.0/dispensary/greenleaf/customer/lastUpdated/after/[^/]+/page/1/pagesize/50"
        ),
        treez_record,
        lambda items: {"resultCode": "SUCCESS", "data": items},
        "customer_id",
        "last_update",
        end_url=re.compile(r"https://treez\.test/.*/page/2/pagesize/50"),
        end_body={"resultCode": "SUCCESS", "data": []},
        token_url=TREEZ_TOKEN_URL,
        token_body={"resultCode": "SUCCESS", "access_token": "tz-token-1"},
    ),
    "flowhub": Dialect(
        "flowhub", "https://fh.test/v1/customers/", flowhub_record, lambda items: {"data": items}, "id", "updatedAt"
    ),
    "covasoft": Dialect(
        "covasoft",
        "https://cova.test/crm/v1/Companies(42)/CustomerFull",
        covasoft_record,
        lambda items: items,
        "Id",
        "LastModifiedDateUtc",
        token_url=COVA_TOKEN_URL,
        token_body={"access_token": "cova-token-1", "expires_in": 43200},
    ),
    "blaze": Dialect(
        "blaze",
        "https://blaze.test/api/v1/partner/members",
        blaze_record,
        lambda items: {"values": items, "skip": 0, "limit": 500, "total": len(items)},
        "id",
        "modified",
    ),
}


class Sleeps(list[float]):
    """A sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """The key a Treez v3 integrator signs with (RSA generation takes a moment: once per run)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def v3_credentials(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Treez v3 (self-signed JWT) credentials with this private key."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"dispensary": "greenleaf", "certificate_id": "cert-1", "organization_id": "org-guid", "private_key": pem}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """Mocked HTTP; every Treez and Blaze request is checked against the vendor's published spec as it is sent
    (a request no mock answered is checked when the test ends)."""
    # A mock the test registered but never called fails it: it was testing nothing.
    with responses.RequestsMock(assert_all_requests_are_fired=True, response_callback=checked) as mock:
        yield mock
        for call in mock.calls:
            if isinstance(call.response, Exception):
                check_request(call.request)


@pytest.fixture
def make_client(sleeps: Sleeps) -> Callable[..., PosClient]:
    def make(vendor: str, **overrides: Any) -> PosClient:
        options: dict[str, Any] = {
            "base_url": BASES[vendor],
            "credentials": CREDENTIALS[vendor],
            "store_label": "greenleaf-oakland",
            "sleep": sleeps,
            "now": lambda: NOW,
            "rng": lambda: 0.5,
        }
        options.update(overrides)
        return get_client(vendor, **options)

    return make


def serve_tokens(rsps: responses.RequestsMock, dialect: Dialect) -> None:
    """Register the vendor's token endpoint, if it has one."""
    if dialect.token_url:
        rsps.add(responses.POST, dialect.token_url, json=dialect.token_body)


def serve_one_page(rsps: responses.RequestsMock, dialect: Dialect, items: list[Any], **response: Any) -> None:
    """Register the vendor's token endpoint and one listing answer: `items` as a page (and whatever ends the
    listing after it), or the given `response` (a failure, after which the client asks nothing more)."""
    serve_tokens(rsps, dialect)
    if response:
        rsps.add(responses.GET, dialect.list_url, **response)
        return
    rsps.add(responses.GET, dialect.list_url, json=dialect.wrap(items))
    if dialect.end_url is not None:
        rsps.add(responses.GET, dialect.end_url, json=dialect.end_body)


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]
