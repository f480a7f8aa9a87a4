"""Treez: v2 token auth or v3 self-signed JWT, `/page/{n}/pagesize/50` pages until empty, snake_case fields."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import parsing
from .base import PosClient, ensure_list
from .errors import PosAuthError, PosBadResponse, PosDuplicate, PosError, PosNotSupported, PosValidationError
from .http import Auth, ErrorHook, HttpClient, TokenAuth, request_token
from .mapping import Source, computed, key, status_active
from .pagination import PageRequest, Position, RawPage
from .records import MEDICAL, Capabilities, CustomerInput
from .vendors import TREEZ, CredentialsError

V2_URL = "https://api.treez.io/v2.0/dispensary"
V3_URL = "https://api-prod.treez.io/dispensary/v3"
PAGE_SIZE = 50
TOKEN_TTL = 2 * 3600.0
JWT_LIFETIME_MS = 30_000
FULL_SYNC_FROM = datetime(1970, 1, 1, tzinfo=UTC)
# Our search field -> the lookup path segment (names need both first and last).
LOOKUP_PATHS = {"drivers_license": "driverlicense", "phone": "phone", "email": "email"}


def _primary_address(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    addresses = [a for a in raw.get("addresses") or [] if isinstance(a, Mapping)]
    return next((a for a in addresses if a.get("primary")), addresses[0] if addresses else {})


# Treez's gender codes (the create schema's enum: Male, Female, Unspecified, Non-Binary) -> ours, and back.
GENDERS = {"M": "M", "F": "F", "N": "X", "U": ""}
GENDER_CODES = {"M": "M", "F": "F", "X": "N"}
# The adult-use type, and the medical one that needs the state card and its expiry (the create schema says so).
ADULT, MEDICAL_MMID = "ADULT", "MEDICAL_MMID"


def _gender(value: Any) -> str:
    text = parsing.clean_str(value)
    return GENDERS[text.upper()] if text.upper() in GENDERS else parsing.normalize_gender(text)


def _address(field: str) -> Source:
    return computed(f"`addresses[primary or first].{field}`", lambda raw: _primary_address(raw).get(field))


FIELD_SOURCES: dict[str, Source] = {
    "customer_id": key("customer_id"),
    "first_name": key("first_name"),
    "last_name": key("last_name"),
    "email": key("email"),
    "phone": key("phone"),
    "birthday": key("birthday"),
    "gender": key("gender", convert=_gender, doc="`gender` (M / F / N non-binary / U)"),
    "drivers_license": key("drivers_license"),
    "drivers_license_expiration": key("drivers_license_expiration"),
    "medical_card_number": key("state_medical_id"),
    "medical_card_expiration": key("permit_expiration"),
    "customer_type": key("patient_type"),
    # The spec's example: `status: MERGED`, no `merged_into_customer_id`, `merged_customer_ids: [19]` is the
    # surviving record of a merge (active); the records it absorbed are inactive and name it.
    "active": status_active(
        "status",
        active=("ACTIVE",),
        merged="merged_into_customer_id",
        survivor=("MERGED", "merged_customer_ids"),
    ),
    "banned": key("banned"),
    "notes": key("notes"),
    "street": computed(
        "`addresses[primary or first].street1` + `street2`",
        lambda raw: parsing.join_nonempty(_primary_address(raw).get("street1"), _primary_address(raw).get("street2")),
    ),
    "city": _address("city"),
    "state": _address("state"),
    "postal_code": _address("zipcode"),
    "loyalty_points": key("rewards_balance"),
    "pos_created_at": key("signup_date"),
    "pos_updated_at": key("last_update"),
    "merged_into_customer_id": key("merged_into_customer_id"),
    "merged_customer_ids": key("merged_customer_ids"),
    "drivers_license_hash": Source("—", lambda raw: None),
}


class JwtAuth(Auth):
    """Treez v3: a fresh self-signed token per request, a standard JWT (RFC 7519: `header.claims.signature`, each
    part base64url without padding, RS256) whose claims are Treez's: `aud` (the exact URL), `iss` (certificate
    id), `oid` (organization id), `iat`/`exp` in milliseconds (exp = iat + 30 s) and a fresh `jti`.

    Treez's authentication page calls the token a JWT (RFC 7519) but writes its form as `<claims>.<signature>`;
    we send the standard form, which any JWT library verifies (README, "Treez v3 token").
    """

    def __init__(
        self,
        *,
        certificate_id: str,
        organization_id: str,
        private_key_pem: str,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        try:
            key_obj = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise CredentialsError(TREEZ, [], "Treez private_key is not a readable PEM private key") from exc
        if not isinstance(key_obj, rsa.RSAPrivateKey):
            raise CredentialsError(TREEZ, [], "Treez private_key must be an RSA key")
        self._key = key_obj
        self._certificate_id = certificate_id
        self._organization_id = organization_id
        self._now_ms = now_ms

    def token(self, url: str) -> str:
        """A signed token whose audience is this exact URL."""
        issued = self._now_ms()
        claims = {
            "aud": url,
            "iss": self._certificate_id,
            "oid": self._organization_id,
            "iat": issued,
            "exp": issued + JWT_LIFETIME_MS,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm="RS256")

    def headers(self, http: HttpClient, method: str, url: str) -> dict[str, str]:
        return {"Authorization": self.token(url)}

    def __repr__(self) -> str:
        return "JwtAuth(<key hidden>)"


def _existing_id(body: Mapping[str, Any]) -> str | None:
    """Where a Treez duplicate answer names the customer it already has."""
    for candidate in (body, body.get("data"), body.get("resultDetail")):
        if isinstance(candidate, list) and candidate:
            candidate = candidate[0]
        if isinstance(candidate, Mapping):
            found = candidate.get("customer_id") or candidate.get("existing_customer_id")
            if found not in (None, ""):
                return str(found)
    text = " ".join(
        parsing.clean_str(body.get(k)) for k in ("resultDetail", "resultReason") if isinstance(body.get(k), str)
    )
    match = re.search(r"customer[ _]?id\W{0,3}(\w+)", text, re.IGNORECASE)
    return match[1] if match else None


def failure(body: Any, *, vendor: str, label: str, status_code: int | None) -> PosError | None:
    """The error a Treez `resultCode: FAIL` body means, or None for a success body."""
    if not isinstance(body, Mapping) or str(body.get("resultCode", "")).upper() != "FAIL":
        return None
    reason = parsing.clean_str(body.get("resultReason"))
    common: dict[str, Any] = {"vendor": vendor, "status_code": status_code}
    if "duplicate" in reason.lower() or "already exist" in reason.lower():
        return PosDuplicate(f"{label} already has this customer", existing_customer_id=_existing_id(body), **common)
    if "authentication" in reason.lower() or status_code in (401, 403):
        return PosAuthError(f"{label} rejected our credentials", **common)
    if status_code is not None and status_code >= 500:
        return None
    return PosValidationError(
        f"{label} refused the request: {reason or 'FAIL'}", field_errors={"__all__": [reason or "FAIL"]}, **common
    )


class TreezClient(PosClient):
    """Treez SellTreez API (v2 token auth) or the v3 API (JWT auth), chosen by the credentials."""

    vendor = TREEZ
    default_base_url = V2_URL
    capabilities = Capabilities(
        can_create=True,
        search_fields=frozenset({"phone", "email", "drivers_license", "first_name", "last_name"}),
        incremental=True,
        create_requires=frozenset({"first_name", "last_name", "birthday"}),  # the create schema's required fields
    )
    FIELD_SOURCES = FIELD_SOURCES
    id_key = "customer_id"

    @property
    def uses_jwt(self) -> bool:
        """True when the credentials are for v3 JWT auth."""
        return all(self.credential(k) for k in ("certificate_id", "organization_id", "private_key"))

    def production_url(self) -> str:
        return V3_URL if self.uses_jwt else V2_URL

    def prefix(self) -> str:
        """`/{dispensary}`, URL-quoted."""
        return "/" + quote(self.credential("dispensary"), safe="")

    def build_auth(self) -> Auth:
        if self.uses_jwt:
            return JwtAuth(
                certificate_id=self.credential("certificate_id"),
                organization_id=self.credential("organization_id"),
                private_key_pem=self.credential("private_key"),
            )
        client_id = self.credential("client_id")
        return TokenAuth(
            self._fetch_token,
            lambda token: {"Authorization": f"Bearer {token}", "client_id": client_id},
            default_ttl=TOKEN_TTL,
            clock=self.clock,
        )

    def _fetch_token(self, http: HttpClient) -> tuple[str, float | None]:
        form = {"client_id": self.credential("client_id"), "apikey": self.credential("api_key")}
        return request_token(http, self.prefix() + "/config/api/gettokens", form)

    def error_hook(self) -> ErrorHook:
        def hook(response: requests.Response, body: Any) -> PosError | None:
            if response.status_code == 404:
                return None
            return failure(body, vendor=self.vendor, label=self.label, status_code=response.status_code)

        return hook

    def _data(self, body: Any) -> list[Any]:
        """The records in a Treez envelope; FAIL bodies become errors, NOT_FOUND is no records."""
        if isinstance(body, Mapping):
            if str(body.get("resultReason", "")).upper() == "NOT_FOUND":
                return []
            error = failure(body, vendor=self.vendor, label=self.label, status_code=None)
            if error is not None:
                raise error
            if "data" not in body:
                raise PosBadResponse(f"{self.label} sent an answer without `data`", vendor=self.vendor)
            body = body["data"]
        return ensure_list(body, self.label, self.vendor)

    def first_position(self, modified_since: datetime | None) -> Position:
        moment = parsing.to_utc(modified_since or FULL_SYNC_FROM)
        after = moment.isoformat(timespec="milliseconds")  # 2024-05-01T12:00:00.000+00:00
        return {"after": after, "page": 1}

    def page_request(self, position: Position) -> PageRequest:
        return PageRequest(
            f"{self.prefix()}/customer/lastUpdated/after/{quote(position['after'], safe='')}"
            f"/page/{position['page']}/pagesize/{PAGE_SIZE}"
        )

    def request_ahead(self, position: Position, pages: int) -> PageRequest:
        return self.page_request({**position, "page": position["page"] + pages})

    def send_page_request(self, request: PageRequest) -> list[Any]:
        return self._get(request.path)

    def read_page(self, position: Position, items: list[Any]) -> RawPage:
        return RawPage(items, {**position, "page": position["page"] + 1} if items else None)

    def lookup(self, filters: Mapping[str, str]) -> tuple[list[Any], set[str]]:
        field = next((f for f in LOOKUP_PATHS if f in filters), None)
        if field is not None:
            segments = f"/customer/{LOOKUP_PATHS[field]}/{quote(filters[field], safe='')}"
            shown = f"/customer/{LOOKUP_PATHS[field]}/<{field}>"
            applied = {field}
        elif "first_name" in filters and "last_name" in filters:
            first, last = (quote(filters[k], safe="") for k in ("first_name", "last_name"))
            segments, shown = (
                f"/customer/firstname/{first}/lastname/{last}",
                "/customer/firstname/<first>/lastname/<last>",
            )
            applied = {"first_name", "last_name"}
        else:
            raise PosNotSupported(f"{self.label} searches names only with both first and last name", vendor=self.vendor)
        return self._get(self.prefix() + segments, log_path=self.prefix() + shown), applied

    def fetch_customer(self, customer_id: str) -> Any:
        items = self._get(f"{self.prefix()}/customer/{quote(customer_id, safe='')}")
        return items[0] if items else None

    def _get(self, path: str, *, log_path: str | None = None) -> list[Any]:
        """GET a Treez envelope; a 404 (Treez's "Nothing was found") is no records."""
        response = self.http.request("GET", path, log_path=log_path, ok_statuses=frozenset({404}))
        if response.status_code == 404:
            return []
        return self._data(self.http.decode(response, log_path or path))

    def send_create(self, data: CustomerInput) -> Any:
        """POST the customer as the v3 create schema has it (`CustomerWrite`), and nothing it lacks."""
        phone = parsing.parse_phone(data.phone)
        if phone and len(phone) != 10:
            raise PosValidationError(
                f"{self.label} takes a 10-digit phone number",
                vendor=self.vendor,
                field_errors={"phone": [f"{self.label} takes a 10-digit phone number."]},
            )
        # MEDICAL_MMID requires the state medical id and its expiry; without both the customer is adult-use.
        mmid = data.customer_type == MEDICAL and bool(data.medical_card_number and data.medical_card_expiration)
        payload = {
            "first_name": data.first_name,
            "last_name": data.last_name,
            "birthday": data.birthday.isoformat() if data.birthday else None,
            "patient_type": MEDICAL_MMID if mmid else ADULT,
            "email": data.email,
            "phone": phone,
            "gender": GENDER_CODES.get(data.gender),
            "notes": data.notes,
            "drivers_license": data.drivers_license,
            "state_medical_id": data.medical_card_number if mmid else None,
            "permit_expiration": (
                data.medical_card_expiration.isoformat() if mmid and data.medical_card_expiration else None
            ),
        }
        body = self.http.post_json(
            self.prefix() + "/customer/detailcustomer",
            json={k: v for k, v in payload.items() if v not in (None, "")},
            idempotent=False,
        )
        items = self._data(body)
        if not items:
            raise PosBadResponse(f"{self.label} did not return the new customer", vendor=self.vendor)
        return items[0]

    def connection_target(self) -> str:
        return f"dispensary {self.credential('dispensary')}" + (" (v3)" if self.uses_jwt else "")
