"""Treez: v2 tokens or v3 self-signed JWTs; `{"resultCode": ..., "data": ...}` envelopes; 50 per page."""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from datetime import date
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.types import Options

from ..data import Dataset, Generator, Person, digits_of
from ..dialect import Dialect
from ..faults import Faults
from ..ids import DecimalIds
from ..protocol import BadRequest, Request, Response, int_param, json_response, parse_text, parse_time_ms, read_fields
from ..render import BAD_TIME, LOCAL_OFFSET_MS, LOCAL_OFFSET_TEXT, iso_seconds, nullable, quote
from ..routing import Route, Router
from ..tokens import TokenStore

FIRST_ID = 1_001
TOKEN_SECONDS = 2 * 3600
AUTH_REQUIRED = "Full authentication is required to access this resource"
NOTHING = "Nothing was found"
CERTIFICATE_ID = "sandbox-treez-certificate"
ORGANIZATION_ID = "7d0c5a7e-3f0b-4c43-9d4e-5b0d2c1a9e01"
JWT_LIFETIME_MS = 30_000
PAGE_LIMIT = 50
# The listing's `date_time` as its description and INVALID_DATE_FORMAT answer give it: yyyy-MM-dd'T'HH:mm:ss.SSSXXX
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

# The write schema (`CustomerWrite`, for create and update): what it requires, its enums, and what
# `patient_type: MEDICAL_MMID` and a populated address add. Fields it does not name are ignored.
REQUIRED = ("first_name", "last_name", "birthday", "patient_type")
MMID = "MEDICAL_MMID"
MMID_REQUIRED = ("state_medical_id", "permit_expiration")
PATIENT_TYPES = ("ADULT", "MEDICAL", MMID)
GENDERS = ("M", "F", "U", "N")
ADDRESS_REQUIRED = ("type", "street1", "city", "state", "zipcode")
ADDRESS_TYPES = ("ADDRESS_OF_RECORD", "ALTERNATIVE_ADDRESS", "SECONDARY_ADDRESS")
# (Person field, Treez field) of what a write may carry; the address comes in `addresses`.
TEXT_FIELDS = (
    ("first", "first_name"),
    ("last", "last_name"),
    ("middle", "middle_name"),
    ("email", "email"),
    ("phone", "phone"),
    ("notes", "notes"),
    ("licence", "drivers_license"),
    ("card", "state_medical_id"),
)
DATE_FIELDS = (("birthday", "birthday"), ("card_exp", "permit_expiration"))
ADDRESS_FIELDS = (("street", "street1"), ("city", "city"), ("state", "state"), ("postal_code", "zipcode"))
_STATUS = {"active": "ACTIVE", "inactive": "INACTIVE", "merged": "MERGED"}

# Parts of every record that do not vary (the sandbox keeps no caregivers, physicians, images or groups).
_VERIFIED = '"verification_status":"VERIFIED","verification_reasons":[],'
_CAREGIVING = (
    '"physician_first_name":null,"physician_last_name":null,"physician_license":null,"physician_address":null,'
    '"physician_phone":null,"is_caregiver":false,"caregiver_license_number":"","caregiver_name_1":"",'
    '"caregiver_name_2":"","caregiver_details":[],'
)
_FLAGS = '"opt_out":false,"referral_source":null,"banned":false,"warning_1":false,"warning_2":false,'
_TAIL = '"imageList":[],"customer_groups":[],"external_ids":{"aiq_contact_id":null}'

# PyJWT verifies the signature; the claims (times in ms) are Treez's own, checked by the dialect.
_CLAIMS_CHECKED_HERE: Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False}

# --- the v3 key pair ---------------------------------------------------------------------------------------
_key_lock = threading.Lock()
_key: rsa.RSAPrivateKey | None = None


def treez_v3_private_key() -> rsa.RSAPrivateKey:
    """The private half of this process's Treez v3 key pair: v3 tests sign with it, the sandbox verifies."""
    global _key
    with _key_lock:
        if _key is None:  # made on first use: RSA generation takes a moment
            _key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _key


def treez_v3_credentials() -> dict[str, str]:
    """Treez credentials for v3 JWT auth against a sandbox running in this process."""
    pem = treez_v3_private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "dispensary": Treez.credentials["dispensary"],
        "certificate_id": CERTIFICATE_ID,
        "organization_id": ORGANIZATION_ID,
        "private_key": pem.decode(),
    }


def _local(ms: int) -> str:
    """2024-05-14T09:06:40.000-07:00: store-local time with its offset (`signup_date`, `last_update`)."""
    return f"{iso_seconds(ms + LOCAL_OFFSET_MS)}.000{LOCAL_OFFSET_TEXT}"


def _local_plain(ms: int) -> str:
    """2024-05-31 09:54:13.000: store-local time without an offset (`last_visit_date`)."""
    return f"{iso_seconds(ms + LOCAL_OFFSET_MS).replace('T', ' ')}.000"


def _local_expiry(ms: int) -> str:
    """2026-01-11T13:56:05.000-0700: a token's `expires_at`, as a published client reads it."""
    return f"{iso_seconds(ms + LOCAL_OFFSET_MS)}.000{LOCAL_OFFSET_TEXT.replace(':', '')}"


def _patient_type(p: Person) -> str:
    if not p.medical:
        return "ADULT"
    return MMID if p.card and p.card_exp else "MEDICAL"


def fail(reason: str, detail: str | None, status: int = 400, **extra: Any) -> Response:
    """Treez's refusal: `{"resultCode": "FAIL", "resultReason": ..., "resultDetail": ...}` (and `extra`)."""
    return json_response(status, {"resultCode": "FAIL", "resultReason": reason, "resultDetail": detail, **extra})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_day(value: Any) -> bool:
    """A YYYY-MM-DD calendar date."""
    if not isinstance(value, str) or not _DAY.fullmatch(value.strip()):
        return False
    try:
        date.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _address_refusal(addresses: Any) -> Response | None:
    """FAIL when an address with any value lacks one the schema then requires, or its type is not one it lists."""
    if addresses is None:
        return None
    if not isinstance(addresses, list) or not all(isinstance(a, dict) for a in addresses):
        return fail("INVALID_ADDRESS", "addresses must be a list of objects")
    for i, address in enumerate(addresses):
        if all(_blank(v) for v in address.values()):
            continue
        for name in ADDRESS_REQUIRED:
            if _blank(address.get(name)):
                return fail(f"CUSTOMER_ADDRESS_{name.upper()}_BLANK", f"Field addresses[{i}].{name} cannot be blank")
        if str(address["type"]).upper() not in ADDRESS_TYPES:
            return fail("INVALID_ADDRESS_TYPE", f"addresses[{i}].type must be one of {', '.join(ADDRESS_TYPES)}")
    return None


class Treez(Dialect):
    vendor = "treez"
    credentials = {"dispensary": "partnersandbox2", "client_id": "sandbox-treez-client", "api_key": "sandbox-treez-key"}
    ids = DecimalIds(FIRST_ID)
    published_rate_limit = None  # Treez publishes none

    def __init__(self, dataset: Dataset, faults: Faults, tokens: TokenStore) -> None:
        super().__init__(dataset, faults, tokens)
        self._public_key = treez_v3_private_key().public_key()
        self._jtis: dict[str, int] = {}
        self._jti_lock = threading.Lock()

    @staticmethod
    def record(gen: Generator, p: Person, bad: bool) -> str:
        # The spec's `Customer`, keys in its order. Its string fields are never null: an unset one is "" (as
        # `nickname`, `caregiver_license_number` and `street2` in its example); fields it leaves untyped
        # (`middle_name`, `physician_*`, `merged_into_customer_id`, ...) are null when unset, as there.
        merged = "null" if p.merged_into is None else str(FIRST_ID + p.merged_into)
        permit = '""' if p.card_exp is None else f'"{p.card_exp} 00:00:00.000"'
        visit = '""' if p.last_visit_ms is None else f'"{_local_plain(p.last_visit_ms)}"'
        modified = BAD_TIME if bad else f'"{_local(p.modified_ms)}"'
        return (
            f'{{"status":"{_STATUS[p.status]}",{_VERIFIED}"customer_id":"{FIRST_ID + p.index}",'
            f'"first_name":{quote(p.first.upper())},"middle_name":{nullable(p.middle)},"nickname":"",'
            f'"last_name":{quote(p.last.upper())},"birthday":{quote(p.birthday or "")},'
            f'"drivers_license":{quote(p.licence or "")},"drivers_license_expiration":{quote(p.licence_exp or "")},'
            f'"state_medical_id":{quote(p.card or "")},"permit_expiration":{permit},"email":{quote(p.email or "")},'
            f'"phone":"{digits_of(p.phone)}","notes":{quote(p.notes)},{_CAREGIVING}'
            f'"rewards_balance":{p.loyalty},"rewards_type":"POINTS","gender":"{p.gender}",'
            f'"signup_date":"{_local(p.created_ms)}","last_visit_date":{visit},"last_update":{modified},{_FLAGS}'
            f'"addresses":[{{"type":"address_of_record","street1":{quote(p.street.upper())},"street2":"",'
            f'"city":{quote(p.city.upper())},"state":{quote(p.state)},"zipcode":{quote(p.postal_code)},'
            f'"primary":true}}],"merged_customer_ids":[],"merged_into_customer_id":{merged},'
            f'"patient_type":"{_patient_type(p)}",{_TAIL}}}'
        )

    # --- errors --------------------------------------------------------------------------------------
    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        if status == 403:
            return json_response(403, {"message": "Forbidden"})
        if status == 404:
            return fail("NOT_FOUND", message, 404)
        return fail(AUTH_REQUIRED if status == 401 else message, message, status)

    def not_found(self, req: Request) -> Response:
        return self.error(404, NOTHING)

    def server_error(self, status: int) -> Response:
        return json_response(status, {"message": "Internal server error" if status == 500 else "Service unavailable"})

    def too_many(self, retry_after: int | None) -> Response:
        r = json_response(429, {"message": "Too Many Requests"})
        if retry_after is not None:
            r.headers["Retry-After"] = str(retry_after)
        return r

    # --- auth ----------------------------------------------------------------------------------------
    def check_path(self, params: dict[str, str]) -> Response | None:
        return None if params.pop("dispensary") == self.creds["dispensary"] else self.error(403, "Forbidden")

    def token(self, req: Request) -> Response:
        form = req.form()
        if not self.presented(form, {"client_id": "client_id", "apikey": "api_key"}):
            return fail("Invalid client_id or apikey", None, 401)
        # What a published client reads: `expires_at` (store-local, offset without a colon) and `expires_in`
        # (seconds, as text).
        expires = int(time.time() * 1000) + TOKEN_SECONDS * 1000
        return json_response(
            200,
            {
                "resultCode": "SUCCESS",
                "resultReason": None,
                "access_token": self.tokens.issue(self.vendor),
                "refresh_token": secrets.token_urlsafe(16),
                "expires_at": _local_expiry(expires),
                "expires_in": str(TOKEN_SECONDS),
            },
        )

    def authenticate(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization", "").strip()
        if not auth:
            return self.error(403, "Forbidden")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else auth
        if "." in token and len(token) > 100:
            return self._check_jwt(req, token)
        if not self.same(req.headers.get("client_id"), self.creds["client_id"]):
            return self.error(401, "client_id header missing or wrong")
        if not self.tokens.check(self.vendor, token, TOKEN_SECONDS):
            return self.error(401, "token invalid or expired")
        return None

    def _check_jwt(self, req: Request, token: str) -> Response | None:
        """A standard JWT (header.claims.signature, base64url without padding) signed RS256 with the key pair's
        private half; Treez's own claims are checked here (times in milliseconds, which JWT libraries don't
        read), the signature by PyJWT."""
        try:
            claims = jwt.decode(token, self._public_key, algorithms=["RS256"], options=_CLAIMS_CHECKED_HERE)
        except jwt.InvalidSignatureError:
            return self.error(401, "signature does not verify")
        except jwt.InvalidTokenError:
            return self.error(401, "token is not a JWT signed RS256 (header.claims.signature, base64url)")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat != JWT_LIFETIME_MS:
            return self.error(400, "iat and exp must be epoch milliseconds with exp = iat + 30000")
        now = int(time.time() * 1000)
        if not iat - JWT_LIFETIME_MS <= now <= exp:
            return self.error(401, "token expired")
        url = f"http://{req.host}{req.path}"
        if unquote(str(claims.get("aud", ""))).split("?")[0] != unquote(url):
            return self.error(401, "aud is not this endpoint's URL")
        if claims.get("iss") != CERTIFICATE_ID or claims.get("oid") != ORGANIZATION_ID:
            return self.error(401, "unknown certificate or organization")
        jti = claims.get("jti")
        if jti is not None:
            with self._jti_lock:
                if str(jti) in self._jtis:
                    return self.error(401, "jti already used")
                if len(self._jtis) > 10_000:
                    self._jtis = {k: v for k, v in self._jtis.items() if v >= now}
                self._jtis[str(jti)] = exp
        return None

    # --- handlers ------------------------------------------------------------------------------------
    def _envelope(self, data: str, status: int = 200, **kwargs: Any) -> Response:
        body = f'{{"resultCode":"SUCCESS","resultReason":null,"resultDetail":null,"data":{data}}}'
        return Response(status, body.encode(), **kwargs)

    def listing(self, req: Request, after: str, page: str, size: str) -> Response:
        """A page of the customers updated since `after`, past the end `data: []` (the spec models `data` as
        one customer, the API sends an array: shared/vendor-specs/README.md)."""
        if not _DATE_TIME.fullmatch(after):
            detail = f"{after} date does not match the expected format i.e. yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
            return fail("INVALID_DATE_FORMAT", detail, data=None)
        number = int_param(page, "page_number", 1, 1, 10**9)
        limit = int_param(size, "page_size", PAGE_LIMIT, 1, 10**9)
        if limit > PAGE_LIMIT:
            detail = (
                f"The response limit requested is {limit} which exceeds the maximum response limit. "
                f"Do not exceed {PAGE_LIMIT}"
            )
            return fail("RESPONSE_LIMIT_EXCEEDS", detail, data=None)
        body, _ = self.page(parse_time_ms(after, "date_time"), None, (number - 1) * limit, limit)
        return self._envelope(body, listing=True)

    # Lookups answer one customer (the spec's `data`); a miss is a 404 in the spec's words for that path.
    def _one(self, people: list[Person], miss: Response) -> Response:
        return self._envelope(self.render(people[0])) if people else miss

    @staticmethod
    def _nothing() -> Response:
        return fail("NOT_FOUND", NOTHING, 404)

    @staticmethod
    def _doesnt_exist() -> Response:
        return fail("CUSTOMER_DOESNT_EXIST", None, 404)

    def customer(self, req: Request, customer_id: str) -> Response:
        p = self.by_id(customer_id)
        return self._one([p] if p else [], self._doesnt_exist())

    def by_email(self, req: Request, email: str) -> Response:
        return self._one(self.search(email=email), self._nothing())

    def by_phone(self, req: Request, phone: str) -> Response:
        return self._one(self.search(phone=digits_of(phone)), self._nothing())

    def by_licence(self, req: Request, licence: str) -> Response:
        return self._one(self.search(licence=licence), self._doesnt_exist())

    def by_name(self, req: Request, first: str, last: str) -> Response:
        """The first (oldest) customer of that name: the spec's answer holds one."""
        return self._one(self.search(first_name=first, last_name=last), self._nothing())

    def create(self, req: Request) -> Response:
        body = req.json_object()
        refused = self._refusal(body, None)
        if refused is not None:
            return refused
        fields = self._fields(body, creating=True)
        dup = self.duplicate_of(fields)
        if dup is not None:
            what, existing = dup
            existing_id = self.id_of(existing)
            reason = f"DUPLICATE_CUSTOMER: a customer with this {what} already exists"
            return fail(reason, f"customer_id {existing_id}", data={"customer_id": existing_id})
        if fields.get("licence"):
            fields["licence_state"] = fields.get("state")
        return self._envelope(self.render(self.add(fields)))

    def change(self, req: Request, customer_id: str) -> Response:
        """PATCH: a sparse update; the required fields may be left out, not blanked."""
        try:
            body = req.json_object()
        except BadRequest:
            return json_response(
                400,
                {
                    "resultCode": "FAIL",
                    "resultReason": "Bad Request",
                    "status": "BAD_REQUEST",
                    "statusCode": 400,
                    "message": "Input is not valid JSON.",
                    "uuid": str(uuid.uuid4()),
                    "timestamp": int(time.time() * 1000),
                },
            )
        p = self.by_id(customer_id)
        if p is None:
            return self._doesnt_exist()
        refused = self._refusal(body, p)
        if refused is not None:
            return refused
        return self._envelope(self.render(self.update(p, self._fields(body, creating=False))))

    @staticmethod
    def _refusal(body: dict[str, Any], current: Person | None) -> Response | None:
        """Treez's FAIL answer when a write breaks the schema's rules (`current` is None on create), else None."""
        for name in REQUIRED:
            if (current is None or name in body) and _blank(body.get(name)):
                return fail(f"CUSTOMER_{name.upper()}_BLANK", f"Field {name} cannot be blank")
        for name in ("birthday", "permit_expiration"):
            value = body.get(name)
            if not _blank(value) and not _is_day(value):
                return fail("INVALID_DATE_FORMAT", f"{value} date does not match the expected format i.e. yyyy-MM-dd")
        patient_type = body.get("patient_type")
        if patient_type is not None and patient_type not in PATIENT_TYPES:
            return fail("INVALID_PATIENT_TYPE", f"patient_type must be one of {', '.join(PATIENT_TYPES)}")
        if patient_type == MMID or (patient_type is None and current is not None and _patient_type(current) == MMID):
            kept = {"state_medical_id": current.card, "permit_expiration": current.card_exp} if current else {}
            for name in MMID_REQUIRED:
                if _blank(body.get(name, kept.get(name))):
                    return fail(f"CUSTOMER_{name.upper()}_BLANK", f"Field {name} cannot be blank for {MMID}")
        gender = body.get("gender")
        if not _blank(gender) and gender not in GENDERS:
            return fail("INVALID_GENDER", f"gender must be one of {', '.join(GENDERS)}")
        return _address_refusal(body.get("addresses"))

    def _fields(self, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out = read_fields(body, creating=creating, text=TEXT_FIELDS, dates=DATE_FIELDS)
        if out.get("phone") is not None:
            out["phone"] = digits_of(out["phone"]) or None
        if not _blank(body.get("gender")):
            out["gender"] = body["gender"]
        if "patient_type" in body:
            out["medical"] = str(body["patient_type"]).startswith("MEDICAL")
        addresses = [a for a in body.get("addresses") or [] if any(not _blank(v) for v in a.values())]
        if addresses:
            address = next((a for a in addresses if a.get("primary", True) is not False), addresses[0])
            for ours, theirs in ADDRESS_FIELDS:  # the address of record is replaced
                out[ours] = parse_text(address.get(theirs), theirs) or ""
        return out

    routes = Router(
        Route("POST", "config/api/gettokens", token, public=True),
        Route("GET", "customer/lastUpdated/after/{after}/page/{page}/pagesize/{size}", listing),
        Route("POST", "customer/detailcustomer", create),
        Route("PATCH", "customer/update/{customer_id}", change),
        Route("GET", "customer/email/{email}", by_email),
        Route("GET", "customer/phone/{phone}", by_phone),
        Route("GET", "customer/driverlicense/{licence}", by_licence),
        Route("GET", "customer/firstname/{first}/lastname/{last}", by_name),
        Route("GET", "customer/{customer_id}", customer),
        prefix="{dispensary}",
    )
