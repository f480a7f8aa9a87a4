"""Treez: v2 tokens or v3 self-signed JWTs; `{"resultCode": ..., "data": ...}` envelopes; 50 per page."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..data import Dataset, Generator, Person, digits_of
from ..dialect import Dialect
from ..faults import Faults
from ..ids import DecimalIds
from ..protocol import Request, Response, int_param, json_response, parse_text, parse_time_ms, read_fields
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

# (Person field, Treez field) of what a create or update may carry; the address comes in `addresses`.
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
DATE_FIELDS = (
    ("birthday", "birthday"),
    ("licence_exp", "drivers_license_expiration"),
    ("card_exp", "permit_expiration"),
)
ADDRESS_FIELDS = (("street", "street1"), ("city", "city"), ("state", "state"), ("postal_code", "zipcode"))
_STATUS = {"active": "ACTIVE", "inactive": "INACTIVE", "merged": "MERGED"}

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
    return f"{iso_seconds(ms + LOCAL_OFFSET_MS)}.000{LOCAL_OFFSET_TEXT}"


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
        merged = f'"{FIRST_ID + p.merged_into}"' if p.merged_into is not None else "null"
        phone = digits_of(p.phone) or None
        permit = "null" if p.card_exp is None else f'"{p.card_exp} 00:00:00.000"'
        visit = "null" if p.last_visit_ms is None else f'"{iso_seconds(p.last_visit_ms).replace("T", " ")}.000"'
        modified = BAD_TIME if bad else f'"{_local(p.modified_ms)}"'
        return (
            f'{{"customer_id":"{FIRST_ID + p.index}","status":"{_STATUS[p.status]}","verification_status":"VERIFIED",'
            f'"verification_reasons":[],"first_name":{quote(p.first.upper())},"middle_name":{nullable(p.middle)},'
            f'"last_name":{quote(p.last.upper())},"nickname":null,"birthday":{nullable(p.birthday)},'
            f'"email":{nullable(p.email)},"phone":{nullable(phone)},"gender":"{p.gender}","notes":{quote(p.notes)},'
            f'"banned":false,"drivers_license":{nullable(p.licence)},'
            f'"drivers_license_expiration":{nullable(p.licence_exp)},"state_medical_id":{nullable(p.card)},'
            f'"permit_expiration":{permit},"patient_type":"{"MEDICAL_MMID" if p.medical else "ADULT"}",'
            f'"is_caregiver":false,"rewards_balance":{p.loyalty},"rewards_type":"POINTS",'
            f'"signup_date":"{_local(p.created_ms)}","last_visit_date":{visit},"last_update":{modified},'
            f'"opt_out":false,"referral_source":null,"customer_groups":[],"merged_customer_ids":[],'
            f'"merged_into_customer_id":{merged},"imageList":[],"external_ids":{{}},'
            f'"addresses":[{{"type":"address_of_record","street1":{quote(p.street.upper())},"street2":null,'
            f'"city":{quote(p.city.upper())},"state":{quote(p.state)},"zipcode":{quote(p.postal_code)},'
            f'"primary":true}}]}}'
        )

    # --- errors --------------------------------------------------------------------------------------
    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        if status == 403:
            return json_response(403, {"message": "Forbidden"})
        if status == 404:
            return json_response(404, {"resultCode": "FAIL", "resultReason": "NOT_FOUND", "resultDetail": message})
        reason = AUTH_REQUIRED if status == 401 else message
        return json_response(status, {"resultCode": "FAIL", "resultReason": reason, "resultDetail": message})

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
            return json_response(
                401, {"resultCode": "FAIL", "resultReason": "Invalid client_id or apikey", "resultDetail": None}
            )
        return json_response(
            200,
            {
                "resultCode": "SUCCESS",
                "access_token": self.tokens.issue(self.vendor),
                "refresh_token": secrets.token_urlsafe(16),
                "expires_in": TOKEN_SECONDS,
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
        claims_part, _, signature_part = token.partition(".")
        try:
            claims = json.loads(base64.urlsafe_b64decode(claims_part + "=" * (-len(claims_part) % 4)))
            sig_text = signature_part + "=" * (-len(signature_part) % 4)
            signature = base64.b64decode(sig_text.replace("-", "+").replace("_", "/"))
        except (ValueError, binascii.Error):
            return self.error(401, "token is not base64url(claims).base64(signature)")
        if not isinstance(claims, dict):
            return self.error(401, "claims must be an object")
        try:
            self._public_key.verify(signature, claims_part.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self.error(401, "signature does not verify")
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

    def _found(self, people: list[Person]) -> Response:
        return self._envelope(self.render_page(people))

    def listing(self, req: Request, after: str, page: str, size: str) -> Response:
        since = parse_time_ms(after, "lastUpdated/after")
        number = int_param(page, "page", 1, 1, 10**9)
        limit = int_param(size, "pagesize", 50, 1, 50)
        body, _ = self.page(since, None, (number - 1) * limit, limit)
        return self._envelope(body, listing=True)

    def customer(self, req: Request, customer_id: str) -> Response:
        p = self.by_id(customer_id)
        if p is None:
            return self.error(404, NOTHING)
        return self._envelope(self.render(p))

    def by_email(self, req: Request, email: str) -> Response:
        return self._found(self.search(email=email))

    def by_phone(self, req: Request, phone: str) -> Response:
        return self._found(self.search(phone=digits_of(phone)))

    def by_licence(self, req: Request, licence: str) -> Response:
        return self._found(self.search(licence=licence))

    def by_name(self, req: Request, first: str, last: str) -> Response:
        return self._found(self.search(first_name=first, last_name=last))

    def create(self, req: Request) -> Response:
        fields = self._fields(req.json_object(), creating=True)
        dup = self.duplicate_of(fields)
        if dup is not None:
            what, existing = dup
            existing_id = self.id_of(existing)
            return json_response(
                400,
                {
                    "resultCode": "FAIL",
                    "resultReason": f"DUPLICATE_CUSTOMER: a customer with this {what} already exists",
                    "resultDetail": f"customer_id {existing_id}",
                    "data": {"customer_id": existing_id},
                },
            )
        if fields.get("licence"):
            fields["licence_state"] = fields.get("state")
        return self._envelope(self.render(self.add(fields)))

    def change(self, req: Request, customer_id: str) -> Response:
        body = req.json_object()
        p = self.by_id(customer_id)
        if p is None:
            return self.error(404, NOTHING)
        return self._envelope(self.render(self.update(p, self._fields(body, creating=False))))

    def _fields(self, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out = read_fields(body, creating=creating, text=TEXT_FIELDS, dates=DATE_FIELDS, gender="gender")
        if out.get("phone") is not None:
            out["phone"] = digits_of(out["phone"]) or None
        if "patient_type" in body:
            out["medical"] = str(body.get("patient_type") or "").upper().startswith("MEDICAL")
        addresses = body.get("addresses")
        if isinstance(addresses, list) and addresses and isinstance(addresses[0], dict):
            address = addresses[0]
            for ours, theirs in ADDRESS_FIELDS:  # the whole address of record is replaced
                out[ours] = parse_text(address.get(theirs), theirs) or ""
        return out

    routes = Router(
        Route("POST", "config/api/gettokens", token, public=True),
        Route("GET", "customer/lastUpdated/after/{after}/page/{page}/pagesize/{size}", listing),
        Route("POST", "customer/detailcustomer", create),
        Route("POST", "customer/update/{customer_id}", change),
        Route("GET", "customer/email/{email}", by_email),
        Route("GET", "customer/phone/{phone}", by_phone),
        Route("GET", "customer/driverlicense/{licence}", by_licence),
        Route("GET", "customer/firstname/{first}/lastname/{last}", by_name),
        Route("GET", "customer/{customer_id}", customer),
        prefix="{dispensary}",
    )
