"""Dutchie POS (LeafLogix): Basic auth with the location key; camelCase; PageNumber/PageSize (max 100)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
from hashlib import blake2b
from typing import Any

from ..data import Generator, Person
from ..dialect import Dialect
from ..ids import DecimalIds
from ..protocol import BadRequest, Request, Response, int_param, json_response, parse_day, parse_time_ms, read_fields
from ..render import BAD_TIME, boolean, iso_seconds, nullable, quote
from ..routing import Route, Router

FIRST_ID = 100_001
UNAUTHORIZED = "Authorization has been denied for this request."
MAX_UNPAGED = 10_000  # GET /customer/customers without paging answers at most this many

# (Person field, Dutchie field) of the text fields a create or update may carry.
TEXT_FIELDS = (
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
DATE_FIELDS = (("birthday", "dateOfBirth"), ("card_exp", "mmjidExpirationDate"))


class LeafLogix(Dialect):
    vendor = "leaflogix"
    credentials = {"api_key": "sandbox-leaflogix-key"}
    ids = DecimalIds(FIRST_ID)
    published_rate_limit = (120, 60.0)

    @staticmethod
    def record(gen: Generator, p: Person, bad: bool) -> str:
        status = "Active" if p.status == "active" else "Inactive"
        merged = str(FIRST_ID + p.merged_into) if p.merged_into is not None else "null"
        dl_hash = "null" if p.licence is None else f'"{blake2b(p.licence.encode(), digest_size=20).hexdigest()}"'
        gender = "Female" if p.gender == "F" else "Male" if p.gender == "M" else "Unspecified"
        visit = "null" if p.last_visit_ms is None else f'"{iso_seconds(p.last_visit_ms)}"'
        modified = BAD_TIME if bad else f'"{iso_seconds(p.modified_ms)}"'
        return (
            f'{{"customerId":{FIRST_ID + p.index},"uniqueId":"{p.h & 0xFFFFFFFFFFFF:012x}",'
            f'"firstName":{quote(p.first)},"middleName":{nullable(p.middle)},"lastName":{quote(p.last)},"namePrefix":null,"nameSuffix":null,'
            f'"address1":{quote(p.street)},"address2":null,"city":{quote(p.city)},"state":{quote(p.state)},'
            f'"postalCode":{quote(p.postal_code)},"phone":{nullable(p.phone)},"cellPhone":null,'
            f'"emailAddress":{nullable(p.email)},"status":"{status}","mmjidNumber":{nullable(p.card)},'
            f'"mmjidExpirationDate":{"null" if p.card_exp is None else chr(34) + p.card_exp + "T00:00:00" + chr(34)},'
            f'"customerType":"{"Medical" if p.medical else "Recreational"}","gender":"{gender}",'
            f'"dateOfBirth":{"null" if p.birthday is None else chr(34) + p.birthday + "T00:00:00" + chr(34)},'
            f'"notes":{quote(p.notes)},"customIdentifier":null,"isLoyaltyMember":{boolean(p.loyalty > 0)},'
            f'"isAnonymous":false,"lastTransactionDate":{visit},"creationDate":"{iso_seconds(p.created_ms)}",'
            f'"lastModifiedDateUTC":{modified},"discountGroups":[],"referralSource":null,'
            f'"driversLicenseHash":{dl_hash},"externalCustomerId":null,"createdAtLocation":"Sandbox Dispensary",'
            f'"createdByIntegrator":false,"mergedIntoCustomerId":{merged}}}'
        )

    # --- auth and errors ---------------------------------------------------------------------------------
    def authenticate(self, req: Request) -> Response | None:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        user = None
        if scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        if self.same(user, self.creds["api_key"]):
            return None
        r = self.error(401, UNAUTHORIZED)
        r.headers["WWW-Authenticate"] = 'Basic realm="api"'
        return r

    def not_found(self, req: Request) -> Response:
        return self.error(404, f"No HTTP resource was found that matches the request URI '{req.path}'.")

    def rate_limited(self, reset_in: float) -> Response:
        return self.too_many(max(1, math.ceil(reset_in)))  # Dutchie says when to come back

    # --- handlers ----------------------------------------------------------------------------------------
    def whoami(self, req: Request) -> Response:
        location = {"LocationName": "Sandbox Dispensary", "LocationId": 1, "CompanyName": "Sandbox Co", "CompanyId": 1}
        return json_response(200, location)

    def _since(self, req: Request) -> int | None:
        value = req.query.get("fromLastModifiedDateUTC")
        return parse_time_ms(value, "fromLastModifiedDateUTC") if value else None

    def paginated(self, req: Request) -> Response:
        number = int_param(req.query.get("PageNumber"), "PageNumber", 1, 1, 10**9)
        size = int_param(req.query.get("PageSize"), "PageSize", 100, 1, 100)
        body, _total = self.page(self._since(req), None, (number - 1) * size, size)
        return Response(200, body.encode(), listing=True)

    def customers(self, req: Request) -> Response:
        wanted = req.query.get("customerID")
        if wanted:
            p = self.by_id(wanted)
            return Response(200, f"[{self.render(p)}]".encode() if p else b"[]")
        since = self._since(req)
        total = self.total(since, None)
        if total > MAX_UNPAGED:
            raise BadRequest("Too many customers for one answer; use /customer/customers-paginated")
        body, _ = self.page(since, None, 0, total)
        return Response(200, body.encode(), listing=True)

    def lookup(self, req: Request) -> Response:
        body = req.json_object()
        criteria = {
            "phone": body.get("phone"),
            "email": body.get("emailAddress"),
            "first_name": body.get("firstName"),
            "last_name": body.get("lastName"),
            "birthday": parse_day(body.get("dateOfBirth"), "dateOfBirth"),
            "card": body.get("mmjidNumber"),
        }
        given = {k: str(v) for k, v in criteria.items() if v not in (None, "")}
        if not given:
            raise BadRequest("Give one of phone, emailAddress, firstName, lastName, dateOfBirth, mmjidNumber")
        found = self.search(**given)
        # No match: 200 with a JSON `null` (what ASP.NET Web API, whose error bodies Dutchie's are, answers for
        # an action that returns no object), not a 204 without a body, which a published client cannot read.
        return Response(200, self.render(found[0]).encode() if found else b"null")

    def upsert(self, req: Request) -> Response:
        """No customerId: create (no duplicate check; the client looks up first). With one: a sparse update."""
        body = req.json_object()
        existing = body.get("customerId")
        creating = existing in (None, "", 0)
        fields = self._fields(body, creating=creating)
        if creating:
            return Response(200, self.render(self.add(fields)).encode())
        p = self.by_id(str(existing))
        if p is None:
            return self.error(404, f"Customer {existing} was not found.")
        return Response(200, self.render(self.update(p, fields)).encode())

    def _fields(self, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out = read_fields(body, creating=creating, text=TEXT_FIELDS, dates=DATE_FIELDS, gender="gender")
        if "customerType" in body:
            out["medical"] = str(body.get("customerType") or "").lower().startswith("med")
        return out

    routes = Router(
        Route("GET", "whoami", whoami),
        Route("GET", "customer/customers-paginated", paginated),
        Route("GET", "customer/customers", customers),
        Route("POST", "customer/customerLookup", lookup),
        Route("POST", "customer/customer", upsert),
    )
