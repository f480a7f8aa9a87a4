"""The five vendors' customer APIs as the sandbox speaks them (paths, auth, paging, filters, errors).

Every choice follows shared/pos-apis.md, "Our decisions where the sources leave gaps" first. Each dialect
gets the request path below its vendor prefix, split into unquoted segments.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .credentials import SANDBOX_CREDENTIALS, TREEZ_CERTIFICATE_ID, TREEZ_ORGANIZATION_ID, treez_v3_private_key
from .data import Dataset, Person, digits_of
from .faults import Faults
from .render import LOCAL_OFFSET_MS, RENDERERS, index_of, vendor_id

if TYPE_CHECKING:
    from .data import Generator

JSON = "application/json; charset=utf-8"
DAY_MS = 86_400_000
TREEZ_TOKEN_SECONDS = 2 * 3600
COVA_TOKEN_SECONDS = 43_200
BLAZE_MAX_WINDOW_MS = 7 * DAY_MS


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    host: str

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object ({} when empty); BadRequest when it is something else."""
        try:
            body = json.loads(self.body or b"{}")
        except ValueError:
            raise BadRequest("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        return body

    def form(self) -> dict[str, str]:
        """A form-urlencoded body merged over the query string (Treez accepts either)."""
        from urllib.parse import parse_qsl

        out = dict(self.query)
        out.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return out


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON
    listing: bool = False  # a page of customers: the malformed-page fault may cut it


def json_response(status: int, payload: Any, **kwargs: Any) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), **kwargs)


class BadRequest(Exception):
    """The request is invalid; the dialect renders `message` in its own error shape."""

    def __init__(self, message: str, status: int = 400, field_name: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field_name = field_name


def parse_time_ms(text: str, name: str) -> int:
    """ISO 8601 (date or date-time, with or without offset; naive = UTC), M/D/Y H:M:S or epoch ms -> epoch ms."""
    t = unquote(text).strip()
    if re.fullmatch(r"-?\d{10,}", t):
        return int(t)
    formats = (datetime.fromisoformat, lambda s: datetime.strptime(s, "%m/%d/%Y %H:%M:%S"))
    for parse in formats:
        try:
            moment = parse(t)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    raise BadRequest(f"The value '{t}' is not valid for {name}.", field_name=name)


def int_param(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number", field_name=name) from None
    if not low <= n <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", field_name=name)
    return n


class TokenStore:
    """Access tokens issued by the sandbox, with the lifetimes the expiring-token fault can shorten."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._lock = threading.Lock()
        self._tokens: dict[str, list[Any]] = {}  # token -> [vendor, issued monotonic, uses]

    def issue(self, vendor: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            if len(self._tokens) > 50_000:  # forget the oldest half; a real server would too, eventually
                for old in list(self._tokens)[:25_000]:
                    del self._tokens[old]
            self._tokens[token] = [vendor, time.monotonic(), 0]
        return token

    def check(self, vendor: str, token: str, lifetime: float) -> bool:
        """True when the token is ours, for this vendor and still alive; counts one use."""
        s = self._faults.settings(vendor)
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or entry[0] != vendor:
                return False
            entry[2] += 1
            limit = min(lifetime, s.token_ttl_seconds) if s.token_ttl_seconds is not None else lifetime
            expired = time.monotonic() - entry[1] > limit or (
                s.token_ttl_requests is not None and entry[2] > s.token_ttl_requests
            )
            if expired:
                del self._tokens[token]
            return not expired


class Dialect:
    """Shared mechanics; subclasses hold each vendor's paths, auth and error shapes."""

    vendor: str

    def __init__(self, dataset: Dataset, faults: Faults, tokens: TokenStore) -> None:
        self.ds = dataset
        self.faults = faults
        self.tokens = tokens
        self.creds = SANDBOX_CREDENTIALS[self.vendor]
        self.gen: Generator = dataset.generator(self.vendor)
        self._render: Callable[[Generator, Person, bool], str] = RENDERERS[self.vendor]

    # --- errors ---------------------------------------------------------------------------------------
    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        """The vendor's error body."""
        return json_response(status, {"message": message})

    def server_error(self, status: int) -> Response:
        return self.error(status, "An error has occurred.")

    def too_many(self, retry_after: int | None) -> Response:
        r = self.error(429, "Too many requests")
        if retry_after is not None:
            r.headers["Retry-After"] = str(retry_after)
        return r

    # --- records ---------------------------------------------------------------------------------------
    def render(self, p: Person) -> str:
        rate = self.faults.settings(self.vendor).malformed_record
        return self._render(self.gen, p, bool(rate) and self.gen.malformed_fraction(p.h) < rate)

    def render_page(self, people: list[Person]) -> str:
        rate = self.faults.settings(self.vendor).malformed_record
        render, gen = self._render, self.gen
        if not rate:
            return "[" + ",".join([render(gen, p, False) for p in people]) + "]"
        bad = gen.malformed_fraction
        return "[" + ",".join([render(gen, p, bad(p.h) < rate) for p in people]) + "]"

    def page(self, since_ms: int | None, until_ms: int | None, offset: int, limit: int) -> tuple[str, int]:
        """One page of the listing as JSON text, and the listing's total."""
        indexes, total = self.ds.select(self.vendor, since_ms, until_ms, offset, limit)
        return self.render_page(self.ds.people(self.vendor, indexes)), total

    def by_id(self, text: str) -> Person | None:
        i = index_of(self.vendor, self.gen, text)
        p = self.ds.person(self.vendor, i) if i is not None else None
        if p is None or vendor_id(self.vendor, self.gen, p).lower() != text.strip().lower():
            return None
        return p

    def vid(self, p: Person) -> str:
        return vendor_id(self.vendor, self.gen, p)

    def duplicate_of(self, p_fields: dict[str, Any]) -> tuple[str, Person] | None:
        """An existing live customer with the same email, phone or licence, and which one matched."""
        for name in ("email", "phone", "licence"):
            value = p_fields.get(name)
            if value:
                found = self.ds.search(self.vendor, **{name: value})
                if found:
                    return name, found[0]
        return None

    def not_allowed(self, allow: str) -> Response:
        r = self.error(405, "The requested resource does not support this method.")
        r.headers["Allow"] = allow
        return r

    # --- entry point -----------------------------------------------------------------------------------
    def handle(self, req: Request, segs: list[str]) -> Response:
        raise NotImplementedError


def _parse_day(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).strip()[:10]
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)", field_name=name) from None


def _gender(value: Any) -> str:
    text = str(value or "").strip().upper()[:1]
    return text if text in ("M", "F") else "U"


def _text(value: Any, name: str, *, required: bool = False, limit: int = 200) -> str | None:
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required", field_name=name)
        return None
    if not isinstance(value, str | int):
        raise BadRequest(f"{name} must be text", field_name=name)
    text = str(value).strip()
    if required and not text:
        raise BadRequest(f"{name} is required", field_name=name)
    if len(text) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", field_name=name)
    return text or None


# ==========================================================================================================
class LeafLogix(Dialect):
    """Dutchie POS: Basic auth with the location key; camelCase; PageNumber/PageSize (max 100)."""

    vendor = "leaflogix"
    UNAUTHORIZED = "Authorization has been denied for this request."

    def handle(self, req: Request, segs: list[str]) -> Response:
        if not self._authorized(req):
            r = self.error(401, self.UNAUTHORIZED)
            r.headers["WWW-Authenticate"] = 'Basic realm="api"'
            return r
        route = "/".join(segs)
        if route == "whoami" and req.method == "GET":
            return json_response(
                200,
                {"LocationName": "Sandbox Dispensary", "LocationId": 1, "CompanyName": "Sandbox Co", "CompanyId": 1},
            )
        if route == "customer/customers-paginated":
            if req.method != "GET":
                return self.not_allowed("GET")
            return self._paginated(req)
        if route == "customer/customers":
            if req.method != "GET":
                return self.not_allowed("GET")
            return self._customers(req)
        if route == "customer/customerLookup":
            if req.method != "POST":
                return self.not_allowed("POST")
            return self._lookup(req)
        if route == "customer/customer":
            if req.method != "POST":
                return self.not_allowed("POST")
            return self._upsert(req)
        return self.error(404, f"No HTTP resource was found that matches the request URI '{req.path}'.")

    def _authorized(self, req: Request) -> bool:
        auth = req.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.creds["api_key"])

    def _since(self, req: Request) -> int | None:
        value = req.query.get("fromLastModifiedDateUTC")
        return parse_time_ms(value, "fromLastModifiedDateUTC") if value else None

    def _paginated(self, req: Request) -> Response:
        number = int_param(req.query.get("PageNumber"), "PageNumber", 1, 1, 10**9)
        size = int_param(req.query.get("PageSize"), "PageSize", 100, 1, 100)
        body, _total = self.page(self._since(req), None, (number - 1) * size, size)
        return Response(200, body.encode(), listing=True)

    def _customers(self, req: Request) -> Response:
        wanted = req.query.get("customerID")
        if wanted:
            p = self.by_id(wanted)
            return Response(200, f"[{self.render(p)}]".encode() if p else b"[]")
        since = self._since(req)
        _, total = self.ds.select(self.vendor, since, None, 0, 0)
        if total > 10_000:
            raise BadRequest("Too many customers for one answer; use /customer/customers-paginated")
        body, _ = self.page(since, None, 0, total)
        return Response(200, body.encode(), listing=True)

    def _lookup(self, req: Request) -> Response:
        body = req.json_object()
        criteria = {
            "phone": body.get("phone"),
            "email": body.get("emailAddress"),
            "first_name": body.get("firstName"),
            "last_name": body.get("lastName"),
            "birthday": _parse_day(body.get("dateOfBirth"), "dateOfBirth"),
            "card": body.get("mmjidNumber"),
        }
        given = {k: str(v) for k, v in criteria.items() if v not in (None, "")}
        if not given:
            raise BadRequest("Give one of phone, emailAddress, firstName, lastName, dateOfBirth, mmjidNumber")
        found = self.ds.search(self.vendor, **given)
        if not found:
            return Response(204)
        return Response(200, self.render(found[0]).encode())

    def _upsert(self, req: Request) -> Response:
        body = req.json_object()
        existing = body.get("customerId")
        fields = self._fields(body, creating=existing in (None, "", 0))
        if existing not in (None, "", 0):
            p = self.by_id(str(existing))
            if p is None:
                return self.error(404, f"Customer {existing} was not found.")
            p = self.ds.update(self.vendor, p.index, **fields)
        else:
            p = self.ds.add(self.vendor, fields)
        return Response(200, self.render(p).encode())

    def _fields(self, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = (
            ("first", "firstName"),
            ("last", "lastName"),
            ("middle", "middleName"),
            ("email", "emailAddress"),
            ("phone", "phone"),
            ("notes", "notes"),
            ("card", "mmjidNumber"),
            ("licence", "driversLicenseID"),
            ("street", "address1"),
            ("city", "city"),
            ("state", "state"),
            ("postal_code", "postalCode"),
        )
        for ours, theirs in pairs:
            if theirs in body or (creating and ours in ("first", "last")):
                out[ours] = _text(body.get(theirs), theirs, required=creating and ours in ("first", "last"))
        for ours in ("notes", "street", "city", "state", "postal_code"):
            if ours in out and out[ours] is None:
                out[ours] = ""
        if "dateOfBirth" in body:
            out["birthday"] = _parse_day(body.get("dateOfBirth"), "dateOfBirth")
        if "mmjidExpirationDate" in body:
            out["card_exp"] = _parse_day(body.get("mmjidExpirationDate"), "mmjidExpirationDate")
        if "gender" in body:
            out["gender"] = _gender(body.get("gender"))
        if "customerType" in body:
            out["medical"] = str(body.get("customerType") or "").lower().startswith("med")
        return out


# ==========================================================================================================
class Treez(Dialect):
    """Treez v2 tokens or v3 self-signed JWTs; `{"resultCode": ..., "data": ...}` envelopes; 50 per page."""

    vendor = "treez"
    AUTH_REQUIRED = "Full authentication is required to access this resource"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._public_key = treez_v3_private_key().public_key()
        self._jtis: dict[str, int] = {}
        self._jti_lock = threading.Lock()

    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        if status == 403:
            return json_response(403, {"message": "Forbidden"})
        if status == 404:
            return json_response(404, {"resultCode": "FAIL", "resultReason": "NOT_FOUND", "resultDetail": message})
        reason = self.AUTH_REQUIRED if status == 401 else message
        return json_response(status, {"resultCode": "FAIL", "resultReason": reason, "resultDetail": message})

    def server_error(self, status: int) -> Response:
        return json_response(status, {"message": "Internal server error" if status == 500 else "Service unavailable"})

    def too_many(self, retry_after: int | None) -> Response:
        r = json_response(429, {"message": "Too Many Requests"})
        if retry_after is not None:
            r.headers["Retry-After"] = str(retry_after)
        return r

    def handle(self, req: Request, segs: list[str]) -> Response:
        if not segs or segs[0] != self.creds["dispensary"]:
            return self.error(403, "Forbidden")
        rest = segs[1:]
        if rest == ["config", "api", "gettokens"]:
            if req.method != "POST":
                return self.not_allowed("POST")
            return self._token(req)
        denied = self._authenticate(req)
        if denied is not None:
            return denied
        if not rest or rest[0] != "customer":
            return self.error(404, "Nothing was found")
        return self._customer(req, rest[1:])

    def _token(self, req: Request) -> Response:
        form = req.form()
        ok = secrets.compare_digest(form.get("client_id", ""), self.creds["client_id"]) and secrets.compare_digest(
            form.get("apikey", ""), self.creds["api_key"]
        )
        if not ok:
            return json_response(
                401, {"resultCode": "FAIL", "resultReason": "Invalid client_id or apikey", "resultDetail": None}
            )
        return json_response(
            200,
            {
                "resultCode": "SUCCESS",
                "access_token": self.tokens.issue(self.vendor),
                "refresh_token": secrets.token_urlsafe(16),
                "expires_in": TREEZ_TOKEN_SECONDS,
            },
        )

    def _authenticate(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization", "").strip()
        if not auth:
            return self.error(403, "Forbidden")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else auth
        if "." in token and len(token) > 100:
            return self._check_jwt(req, token)
        if not secrets.compare_digest(req.headers.get("client_id", ""), self.creds["client_id"]):
            return self.error(401, "client_id header missing or wrong")
        if not self.tokens.check(self.vendor, token, TREEZ_TOKEN_SECONDS):
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
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat != 30_000:
            return self.error(400, "iat and exp must be epoch milliseconds with exp = iat + 30000")
        now = int(time.time() * 1000)
        if not iat - 30_000 <= now <= exp:
            return self.error(401, "token expired")
        url = f"http://{req.host}{req.path}"
        if unquote(str(claims.get("aud", ""))).split("?")[0] != unquote(url):
            return self.error(401, "aud is not this endpoint's URL")
        if claims.get("iss") != TREEZ_CERTIFICATE_ID or claims.get("oid") != TREEZ_ORGANIZATION_ID:
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

    def _envelope(self, data: str, status: int = 200, **kwargs: Any) -> Response:
        body = f'{{"resultCode":"SUCCESS","resultReason":null,"resultDetail":null,"data":{data}}}'
        return Response(status, body.encode(), **kwargs)

    def _customer(self, req: Request, segs: list[str]) -> Response:
        n = len(segs)
        if req.method == "POST":
            if segs == ["detailcustomer"]:
                return self._create(req)
            if n == 2 and segs[0] == "update":
                return self._update(req, segs[1])
            return self.not_allowed("GET")
        if req.method != "GET":
            return self.not_allowed("GET, POST")
        if n == 6 and segs[0] == "lastUpdated" and segs[1] == "after" and segs[3] == "page" and segs[5] != "":
            return self._list(segs)
        if n == 7 and segs[0] == "lastUpdated" and segs[3] == "page" and segs[5] == "pagesize":
            return self._list([segs[0], segs[1], segs[2], segs[3], segs[4], segs[6]])
        if n == 1 and segs[0]:
            p = self.by_id(segs[0])
            if p is None:
                return self.error(404, "Nothing was found")
            return self._envelope(self.render(p))
        found: list[Person] | None = None
        if n == 2 and segs[0] == "email":
            found = self.ds.search(self.vendor, email=segs[1])
        elif n == 2 and segs[0] == "phone":
            found = self.ds.search(self.vendor, phone=digits_of(segs[1]))
        elif n == 2 and segs[0] == "driverlicense":
            found = self.ds.search(self.vendor, licence=segs[1])
        elif n == 4 and segs[0] == "firstname" and segs[2] == "lastname":
            found = self.ds.search(self.vendor, first_name=segs[1], last_name=segs[3])
        if found is None:
            return self.error(404, "Nothing was found")
        return self._envelope(self.render_page(found))

    def _list(self, segs: list[str]) -> Response:
        # lastUpdated/after/{ts}/page/{n}/pagesize/{size}; the 6-item form carries size last
        since = parse_time_ms(segs[2], "lastUpdated/after")
        page = int_param(segs[4], "page", 1, 1, 10**9)
        size = int_param(segs[5], "pagesize", 50, 1, 50)
        body, _ = self.page(since, None, (page - 1) * size, size)
        return self._envelope(body, listing=True)

    def _fields(self, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = (
            ("first", "first_name"),
            ("last", "last_name"),
            ("middle", "middle_name"),
            ("email", "email"),
            ("phone", "phone"),
            ("notes", "notes"),
            ("licence", "drivers_license"),
            ("card", "state_medical_id"),
        )
        for ours, theirs in pairs:
            if theirs in body or (creating and ours in ("first", "last")):
                out[ours] = _text(body.get(theirs), theirs, required=creating and ours in ("first", "last"))
        if out.get("notes", "") is None:
            out["notes"] = ""
        if "phone" in out and out["phone"] is not None:
            out["phone"] = digits_of(out["phone"]) or None
        for ours, theirs in (
            ("birthday", "birthday"),
            ("licence_exp", "drivers_license_expiration"),
            ("card_exp", "permit_expiration"),
        ):
            if theirs in body:
                out[ours] = _parse_day(body.get(theirs), theirs)
        if "gender" in body:
            out["gender"] = _gender(body.get("gender"))
        if "patient_type" in body:
            out["medical"] = str(body.get("patient_type") or "").upper().startswith("MEDICAL")
        addresses = body.get("addresses")
        if isinstance(addresses, list) and addresses and isinstance(addresses[0], dict):
            a = addresses[0]
            out["street"] = _text(a.get("street1"), "street1") or ""
            out["city"] = _text(a.get("city"), "city") or ""
            out["state"] = _text(a.get("state"), "state") or ""
            out["postal_code"] = _text(a.get("zipcode"), "zipcode") or ""
        return out

    def _create(self, req: Request) -> Response:
        body = req.json_object()
        fields = self._fields(body, creating=True)
        dup = self.duplicate_of(fields)
        if dup is not None:
            what, existing = dup
            existing_id = self.vid(existing)
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
        return self._envelope(self.render(self.ds.add(self.vendor, fields)))

    def _update(self, req: Request, customer_id: str) -> Response:
        body = req.json_object()
        p = self.by_id(customer_id)
        if p is None:
            return self.error(404, "Nothing was found")
        return self._envelope(self.render(self.ds.update(self.vendor, p.index, **self._fields(body, creating=False))))


# ==========================================================================================================
class Flowhub(Dialect):
    """Flowhub: clientId/key headers; `/v1/customers/?page=&page_size=` (max 500); store-local date filters."""

    vendor = "flowhub"

    def handle(self, req: Request, segs: list[str]) -> Response:
        client_id, key = req.headers.get("clientid"), req.headers.get("key")
        if not client_id or not key:
            return self.error(401, "Unauthorized: clientId and key headers are required")
        if not (
            secrets.compare_digest(client_id, self.creds["client_id"])
            and secrets.compare_digest(key, self.creds["api_key"])
        ):
            return self.error(403, "Forbidden: invalid clientId or key")
        if segs[:1] != ["v1"]:
            return self.error(404, "Not found")
        rest = [s for s in segs[1:] if s != ""]
        if rest == ["customer"] or (len(rest) == 2 and rest[0] == "customer"):
            return self.not_allowed("GET")  # create and update are not offered here (pos-apis.md)
        if not rest or rest[0] != "customers":
            return self.error(404, "Not found")
        if req.method != "GET":
            return self.not_allowed("GET")
        if len(rest) == 1:
            return self._list(req)
        if rest[1:] == ["findByPhoneNumber"]:
            phone = digits_of(req.query.get("phone_number"))
            if not phone:
                raise BadRequest("phone_number is required")
            return Response(200, self.render_page(self.ds.search(self.vendor, phone=phone)).encode())
        if len(rest) == 2:
            p = self.by_id(rest[1])
            if p is None:
                return self.error(404, "Customer not found")
            return Response(200, self.render(p).encode())
        return self.error(404, "Not found")

    def _local_day_ms(self, req: Request, name: str) -> int | None:
        value = req.query.get(name)
        if not value:
            return None
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise BadRequest(f"{name} must be in format yyyy-mm-dd", status=404)
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise BadRequest(f"{name} must be in format yyyy-mm-dd", status=404) from None
        return (day - date(1970, 1, 1)).days * DAY_MS - LOCAL_OFFSET_MS

    def _list(self, req: Request) -> Response:
        for unsupported in ("created_after", "created_before"):
            if req.query.get(unsupported):
                raise BadRequest(f"the sandbox filters on updated_after/updated_before only, not {unsupported}")
        page = int_param(req.query.get("page"), "page", 1, 1, 10**9)
        size = int_param(req.query.get("page_size"), "page_size", 100, 1, 500)
        order = (req.query.get("order_by") or "asc").lower()
        if order not in ("asc", "desc"):
            raise BadRequest("order_by must be asc or desc")
        since = self._local_day_ms(req, "updated_after")
        until = self._local_day_ms(req, "updated_before")
        offset = (page - 1) * size
        if order == "asc":
            body, total = self.page(since, until, offset, size)
        else:
            _, total = self.ds.select(self.vendor, since, until, 0, 0)
            start = max(0, total - offset - size)
            indexes, _ = self.ds.select(self.vendor, since, until, start, max(0, total - offset - start))
            body = self.render_page(self.ds.people(self.vendor, indexes[::-1]))
        envelope = f'{{"total":{total},"page":{page},"page_size":{size},"data":{body}}}'
        return Response(200, envelope.encode(), listing=True)


# ==========================================================================================================
_COMPANY = re.compile(r"^Companies\((?P<id>[^)]*)\)$")
_CUSTOMER_FULL = re.compile(r"^CustomerFull\((?P<id>[^)]*)\)$")
_FILTER = re.compile(r"LastModifiedDateUtc\s+(?P<op>ge|gt|lt|le)\s+datetime'(?P<at>[^']+)'", re.IGNORECASE)


class Covasoft(Dialect):
    """Cova: OAuth password grant at /oauth2/token, Bearer tokens, OData $filter/$skip/$top, PascalCase."""

    vendor = "covasoft"
    DENIED = "Authorization has been denied for this request."

    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        r = json_response(status, {"Message": message})
        if status == 404:
            r.content_type = "application/hal+json; charset=utf-8"
        return r

    def handle(self, req: Request, segs: list[str]) -> Response:
        if segs == ["oauth2", "token"] or segs == ["v1", "oauth2", "token"]:
            if req.method != "POST":
                return self.not_allowed("POST")
            return self._token(req)
        auth = req.headers.get("authorization", "")
        if auth[:7].lower() != "bearer " or not self.tokens.check(self.vendor, auth[7:].strip(), COVA_TOKEN_SECONDS):
            return self.error(401, self.DENIED)
        if len(segs) < 3 or segs[0] != "v1" or not (m := _COMPANY.match(segs[1])):
            return self.error(404, "Resource cannot be found")
        if m.group("id") != self.creds["company_id"]:
            return self.error(403, f"You do not have access to company {m.group('id')}")
        resource = segs[2]
        if resource == "CustomerFull" and len(segs) == 3:
            if req.method == "POST":
                return self.not_allowed("GET")  # create is not offered here (pos-apis.md)
            if req.method != "GET":
                return self.not_allowed("GET")
            return self._list(req, hal=False)
        if resource == "Customers" and len(segs) == 3 and req.method == "GET":
            return self._list(req, hal=True)
        if (m := _CUSTOMER_FULL.match(resource)) and len(segs) == 3:
            if req.method != "GET":
                return self.not_allowed("GET")
            p = self.by_id(m.group("id").strip("'"))
            if p is None:
                return self.error(404, "Resource cannot be found")
            return Response(200, self.render(p).encode())
        if resource == "Search" and len(segs) == 3:
            if req.method != "POST":
                return self.not_allowed("POST")
            return self._search(req)
        return self.error(404, "Resource cannot be found")

    def _token(self, req: Request) -> Response:
        form = req.form()
        if form.get("grant_type") != "password":
            return json_response(400, {"error": "unsupported_grant_type"})
        if not (
            secrets.compare_digest(form.get("client_id", ""), self.creds["client_id"])
            and secrets.compare_digest(form.get("client_secret", ""), self.creds["client_secret"])
        ):
            return json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        if not (
            secrets.compare_digest(form.get("username", ""), self.creds["username"])
            and secrets.compare_digest(form.get("password", ""), self.creds["password"])
        ):
            return json_response(
                400, {"error": "invalid_grant", "error_description": "The user name or password is incorrect."}
            )
        return json_response(
            200,
            {
                "access_token": self.tokens.issue(self.vendor),
                "token_type": "bearer",
                "expires_in": COVA_TOKEN_SECONDS,
                "refresh_token": secrets.token_urlsafe(16),
            },
        )

    def _list(self, req: Request, *, hal: bool) -> Response:
        since = until = None
        text = req.query.get("$filter", "").strip()
        if text:
            clauses = [c.strip() for c in re.split(r"\s+and\s+", text, flags=re.IGNORECASE)]
            for clause in clauses:
                m = _FILTER.fullmatch(clause)
                if not m:
                    raise BadRequest(f"The query specified in the URI is not valid: cannot filter on {clause!r}.")
                at = parse_time_ms(m.group("at"), "LastModifiedDateUtc")
                op = m.group("op").lower()
                if op in ("ge", "gt"):
                    since = at + (1 if op == "gt" else 0)
                else:
                    until = at + (1 if op == "le" else 0)
        skip = int_param(req.query.get("$skip"), "$skip", 0, 0, 10**12)
        top = int_param(req.query.get("$top"), "$top", 1000, 1, 1000)
        body, total = self.page(since, until, skip, top)
        if not hal:
            return Response(200, body.encode(), listing=True)
        base = f"http://{req.host}{req.path}"
        links = {"self": {"href": f"{base}?$skip={skip}&$top={top}"}}
        if skip + top < total:
            links["next"] = {"href": f"{base}?$skip={skip + top}&$top={top}"}
        if skip:
            links["prev"] = {"href": f"{base}?$skip={max(0, skip - top)}&$top={top}"}
        embedded = f',"_embedded":{{"self":{body}}}' if body != "[]" else ""
        return Response(
            200,
            f'{{"_links":{json.dumps(links)}{embedded}}}'.encode(),
            content_type="application/hal+json; charset=utf-8",
            listing=True,
        )

    def _search(self, req: Request) -> Response:
        criteria = req.json_object().get("Criteria")
        if not isinstance(criteria, list) or not criteria:
            raise BadRequest("The request is invalid: Criteria must be a non-empty list.")
        results: list[Person] | None = None
        for c in criteria:
            if not isinstance(c, dict) or not isinstance(c.get("Criteria"), str) or not isinstance(c.get("Field"), str):
                raise BadRequest("Each criterion needs a Criteria text and a Field.")
            value, name = c["Criteria"], c["Field"].lower()
            if name == "phone":
                found = self.ds.search(self.vendor, phone=digits_of(value))
            elif name in ("email", "contact"):
                found = self.ds.search(self.vendor, email=value)
                if name == "contact" and not found and digits_of(value):
                    found = self.ds.search(self.vendor, phone=digits_of(value))
            elif name in ("firstname", "primaryname", "lastname", "familyname"):
                found = [p for p in (results or []) if value.lower() in (p.first.lower(), p.last.lower())]
                if results is None:
                    raise BadRequest("The sandbox searches names only together with Phone or Contact.")
            else:
                raise BadRequest(f"Unknown search field {c['Field']!r}; use Phone or Contact.")
            keep = {p.index for p in found}
            results = found if results is None else [p for p in results if p.index in keep]
        people = results or []
        records = self.render_page(people)
        payload = f'{{"Id":1,"Criteria":{json.dumps(criteria)},"Results":{records}}}'
        return Response(200, payload.encode())


# ==========================================================================================================
class Blaze(Dialect):
    """Blaze partner API: partner_key + raw Authorization key; members in windows of at most 7 days."""

    vendor = "blaze"

    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        kind = {
            401: "com.fourtwenty.core.exceptions.BlazeAuthException",
            404: "com.fourtwenty.core.exceptions.BlazeInvalidArgException",
            429: "com.fourtwenty.core.exceptions.BlazeOperationException",
        }.get(status, "com.fourtwenty.core.exceptions.BlazeInvalidArgException")
        if status >= 500:
            kind = "java.lang.RuntimeException"
        return json_response(status, {"field": field_name, "message": message, "errorType": kind})

    def handle(self, req: Request, segs: list[str]) -> Response:
        partner, key = req.headers.get("partner_key", ""), req.headers.get("authorization", "")
        if not (
            partner
            and key
            and secrets.compare_digest(partner, self.creds["partner_key"])
            and secrets.compare_digest(key, self.creds["api_key"])
        ):
            return self.error(401, "Invalid partner key or dispensary key", field_name="Authorization")
        if segs[:4] != ["api", "v1", "partner", "members"]:
            return self.error(404, "Resource not found")
        rest = segs[4:]
        if not rest or rest == [""]:
            if req.method == "POST":
                return self.not_allowed("GET")  # create is not offered here (pos-apis.md)
            if req.method != "GET":
                return self.not_allowed("GET")
            return self._list(req)
        if req.method == "PUT":
            return self.not_allowed("GET")
        if req.method != "GET":
            return self.not_allowed("GET")
        if rest[0] == "email" and len(rest) == 2:
            found = self.ds.search(self.vendor, email=rest[1])
            if not found:
                return self.error(404, "Member not found", field_name="email")
            return Response(200, self.render(found[0]).encode())
        if rest == ["search"]:
            licence = req.query.get("licenceNumber", "")
            if not licence:
                raise BadRequest("licenceNumber is required", field_name="licenceNumber")
            return self._values(self.ds.search(self.vendor, licence=licence))
        if rest == ["search", "phone"]:
            phone = digits_of(req.query.get("phoneNumber"))
            if not phone:
                raise BadRequest("phoneNumber is required", field_name="phoneNumber")
            return self._values(self.ds.search(self.vendor, phone=phone))
        if rest == ["search", "dob"]:
            dob = req.query.get("dob", "")
            day = _ms_day(int(dob)) if re.fullmatch(r"-?\d+", dob) else _parse_day(dob, "dob")
            if not day:
                raise BadRequest("dob is required", field_name="dob")
            return self._values(self.ds.search(self.vendor, birthday=day))
        if len(rest) == 1:
            p = self.by_id(rest[0])
            if p is None:
                return self.error(404, "Member not found", field_name="memberId")
            return Response(200, self.render(p).encode())
        return self.error(404, "Resource not found")

    def _values(self, people: list[Person]) -> Response:
        n = len(people)
        return Response(200, f'{{"values":{self.render_page(people)},"skip":0,"limit":{n},"total":{n}}}'.encode())

    def _list(self, req: Request) -> Response:
        start_text, end_text = req.query.get("startDate"), req.query.get("endDate")
        since = until = None
        if start_text or end_text:
            if not (start_text and end_text):
                raise BadRequest("startDate and endDate go together", field_name="endDate")
            try:
                since, until = int(start_text), int(end_text)  # type: ignore[arg-type]
            except ValueError:
                raise BadRequest("startDate and endDate are epoch milliseconds", field_name="startDate") from None
            if until <= since:
                raise BadRequest("endDate must be after startDate", field_name="endDate")
            if until - since > BLAZE_MAX_WINDOW_MS:
                raise BadRequest("The date range cannot be more than 7 days", field_name="endDate")
        skip = int_param(req.query.get("skip"), "skip", 0, 0, 10**12)
        limit = int_param(req.query.get("limit"), "limit", 100, 1, 1000)
        # endDate is inclusive: a member modified in the very millisecond a client calls "now" is not lost.
        body, total = self.page(since, None if until is None else until + 1, skip, limit)
        return Response(
            200, f'{{"values":{body},"skip":{skip},"limit":{limit},"total":{total}}}'.encode(), listing=True
        )


def _ms_day(ms: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=ms // DAY_MS)).isoformat()


DIALECTS: dict[str, type[Dialect]] = {
    "leaflogix": LeafLogix,
    "treez": Treez,
    "flowhub": Flowhub,
    "covasoft": Covasoft,
    "blaze": Blaze,
}
