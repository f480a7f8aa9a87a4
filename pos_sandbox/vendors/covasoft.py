"""Cova: OAuth password grant at /oauth2/token, Bearer tokens, OData $filter/$skip/$top, PascalCase."""

from __future__ import annotations

import json
import re
import secrets

from ..data import Generator, Person, digits_of
from ..dialect import Dialect
from ..ids import GuidIds
from ..protocol import BadRequest, Request, Response, int_param, json_response, parse_time_ms
from ..render import BAD_TIME, boolean, iso_seconds, nullable, quote
from ..routing import Route, Router

IDS = GuidIds()
TOKEN_SECONDS = 43_200
DENIED = "Authorization has been denied for this request."
NOT_FOUND = "Resource cannot be found"
HAL = "application/hal+json; charset=utf-8"
_FILTER = re.compile(r"LastModifiedDateUtc\s+(?P<op>ge|gt|lt|le)\s+datetime'(?P<at>[^']+)'", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_NAME_FIELDS = ("firstname", "primaryname", "lastname", "familyname")


def _time(ms: int) -> str:
    return f"{iso_seconds(ms)}.{ms % 1000:03d}Z"


class Covasoft(Dialect):
    vendor = "covasoft"
    credentials = {
        "company_id": "14146",
        "username": "sandbox-cova-user",
        "password": "sandbox-cova-password",
        "client_id": "sandbox-cova-client",
        "client_secret": "sandbox-cova-secret",
    }
    ids = IDS
    published_rate_limit = (1000, 60.0)
    sends_rate_limit_headers = True
    not_found_message = NOT_FOUND

    @staticmethod
    def record(gen: Generator, p: Person, bad: bool) -> str:
        merged = "null" if p.merged_into is None else f'"{IDS.of(gen, gen.person(p.merged_into))}"'
        contacts = []
        if p.email is not None:
            contacts.append(
                f'{{"ContactMethodCategoryId":2,"ContactMethodTypeId":9,"Value":{quote(p.email)},"Default":true,'
                f'"DoNotContact":false}}'
            )
        if p.phone is not None:
            contacts.append(
                f'{{"ContactMethodCategoryId":1,"ContactMethodTypeId":3,"Value":{quote(p.phone)},'
                f'"Default":{boolean(p.email is None)},"DoNotContact":false}}'
            )
        modified = BAD_TIME if bad else f'"{_time(p.modified_ms)}"'
        return (
            f'{{"Id":"{IDS.of(gen, p)}","CustomerTypeId":2,"CustomerType":"Person","Title":null,'
            f'"PrimaryName":{quote(p.first)},"AlternateName":null,"MiddleName":{nullable(p.middle)},'
            f'"FamilyName":{quote(p.last)},'
            f'"DateOfBirth":{"null" if p.birthday is None else chr(34) + p.birthday + "T00:00:00.000" + chr(34)},'
            f'"Disabled":{boolean(p.status != "active")},"DoNotContact":{boolean(not p.h & 4)},'
            f'"Notes":{quote(p.notes)},"ReferralSource":null,"UniqueIdentifier":null,"PricingGroupId":null,'
            f'"Version":{p.version},"MergedIntoCustomerId":{merged},"MergedCustomers":[],"Documents":[],'
            f'"RelatedCustomers":[],"MemberOf":[],"CustomerExtensions":[],'
            f'"Addresses":[{{"AddressTypeId":2,"StreetAddress1":{quote(p.street)},"StreetAddress2":null,'
            f'"Locality":{quote(p.city)},"StateCode":{quote(p.state)},"CountryCode":"US",'
            f'"PostalCode":{quote(p.postal_code)},"Default":true,"DoNotContact":false}}],'
            f'"ContactMethods":[{",".join(contacts)}],"CreatedDateUtc":"{_time(p.created_ms)}",'
            f'"LastModifiedDateUtc":{modified}}}'
        )

    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        r = json_response(status, {"Message": message})
        if status == 404:
            r.content_type = HAL
        return r

    # --- auth ----------------------------------------------------------------------------------------
    def token(self, req: Request) -> Response:
        form = req.form()
        if form.get("grant_type") != "password":
            return json_response(400, {"error": "unsupported_grant_type"})
        if not self.presented(form, {"client_id": "client_id", "client_secret": "client_secret"}):
            return json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        if not self.presented(form, {"username": "username", "password": "password"}):
            return json_response(
                400, {"error": "invalid_grant", "error_description": "The user name or password is incorrect."}
            )
        return json_response(
            200,
            {
                "access_token": self.tokens.issue(self.vendor),
                "token_type": "bearer",
                "expires_in": TOKEN_SECONDS,
                "refresh_token": secrets.token_urlsafe(16),
            },
        )

    def authenticate(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization", "")
        if auth[:7].lower() != "bearer " or not self.tokens.check(self.vendor, auth[7:].strip(), TOKEN_SECONDS):
            return self.error(401, DENIED)
        return None

    def check_path(self, params: dict[str, str]) -> Response | None:
        company = params.pop("company", None)
        if company is None or company == self.creds["company_id"]:
            return None
        return self.error(403, f"You do not have access to company {company}")

    # --- handlers ------------------------------------------------------------------------------------
    def customer_full(self, req: Request) -> Response:
        body, _ = self._listing(req)
        return Response(200, body.encode(), listing=True)

    def customers(self, req: Request) -> Response:
        """The HAL form of the listing: the page under `_embedded.self`, with self/next/prev links."""
        body, (skip, top, total) = self._listing(req)
        base = f"http://{req.host}{req.path}"
        links = {"self": {"href": f"{base}?$skip={skip}&$top={top}"}}
        if skip + top < total:
            links["next"] = {"href": f"{base}?$skip={skip + top}&$top={top}"}
        if skip:
            links["prev"] = {"href": f"{base}?$skip={max(0, skip - top)}&$top={top}"}
        embedded = f',"_embedded":{{"self":{body}}}' if body != "[]" else ""
        return Response(200, f'{{"_links":{json.dumps(links)}{embedded}}}'.encode(), content_type=HAL, listing=True)

    def _listing(self, req: Request) -> tuple[str, tuple[int, int, int]]:
        since = until = None
        text = req.query.get("$filter", "").strip()
        if text:
            for clause in (c.strip() for c in _AND.split(text)):
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
        return body, (skip, top, total)

    def customer(self, req: Request, customer_id: str) -> Response:
        p = self.by_id(customer_id.strip("'"))
        if p is None:
            return self.error(404, NOT_FOUND)
        return Response(200, self.render(p).encode())

    def search_customers(self, req: Request) -> Response:
        """POST …/Search: every criterion must hold; names only narrow a Phone or Contact search."""
        criteria = req.json_object().get("Criteria")
        if not isinstance(criteria, list) or not criteria:
            raise BadRequest("The request is invalid: Criteria must be a non-empty list.")
        results: list[Person] | None = None
        for c in criteria:
            if not isinstance(c, dict) or not isinstance(c.get("Criteria"), str) or not isinstance(c.get("Field"), str):
                raise BadRequest("Each criterion needs a Criteria text and a Field.")
            value, name = c["Criteria"], c["Field"].lower()
            if name == "phone":
                found = self.search(phone=digits_of(value))
            elif name in ("email", "contact"):
                found = self.search(email=value)
                if name == "contact" and not found and digits_of(value):
                    found = self.search(phone=digits_of(value))
            elif name in _NAME_FIELDS:
                if results is None:
                    raise BadRequest("The sandbox searches names only together with Phone or Contact.")
                found = [p for p in results if value.lower() in (p.first.lower(), p.last.lower())]
            else:
                raise BadRequest(f"Unknown search field {c['Field']!r}; use Phone or Contact.")
            keep = {p.index for p in found}
            results = found if results is None else [p for p in results if p.index in keep]
        payload = f'{{"Id":1,"Criteria":{json.dumps(criteria)},"Results":{self.render_page(results or [])}}}'
        return Response(200, payload.encode())

    routes = Router(
        Route("POST", "oauth2/token", token, public=True),
        Route("POST", "v1/oauth2/token", token, public=True),
        Route("GET", "v1/Companies({company})/CustomerFull", customer_full),
        Route("GET", "v1/Companies({company})/Customers", customers),
        Route("GET", "v1/Companies({company})/CustomerFull({customer_id})", customer),
        Route("POST", "v1/Companies({company})/Search", search_customers),
    )
