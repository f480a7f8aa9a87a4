"""Blaze partner API: partner_key + raw Authorization key; members in windows of at most 7 days."""

from __future__ import annotations

import re

from ..data import Generator, Person, digits_of
from ..dialect import Dialect
from ..ids import ObjectIds
from ..protocol import BadRequest, Request, Response, int_param, json_response, parse_day
from ..render import BAD_TIME, DAY_MS, boolean, date_ms, ms_day, nullable, quote
from ..routing import Route, Router

IDS = ObjectIds()
COMPANY_ID = "5f1e0b7c2a9d4e0012ab34cd"
SHOP_ID = "5f1e0b7c2a9d4e0012ab34ce"
MAX_WINDOW_MS = 7 * DAY_MS
_SEX = {"M": ("0", '"MALE"'), "F": ("1", '"FEMALE"'), "U": ("2", '"OTHER"')}
_ERROR_TYPES = {
    401: "com.fourtwenty.core.exceptions.BlazeAuthException",
    429: "com.fourtwenty.core.exceptions.BlazeOperationException",
}
_INVALID_ARGUMENT = "com.fourtwenty.core.exceptions.BlazeInvalidArgException"
_EPOCH_MS = re.compile(r"-?\d+")


class Blaze(Dialect):
    vendor = "blaze"
    credentials = {"partner_key": "sandbox-blaze-partner-key", "api_key": "sandbox-blaze-key"}
    ids = IDS
    published_rate_limit = (10_000, 300.0)
    not_found_message = "Resource not found"

    @staticmethod
    def record(gen: Generator, p: Person, bad: bool) -> str:
        ident = ""
        if p.licence is not None:
            exp = "null" if p.licence_exp is None else str(date_ms(p.licence_exp))
            ident = (
                f'{{"licenseNumber":{quote(p.licence)},"expirationDate":{exp},'
                f'"localExpirationDate":{nullable(p.licence_exp)},"state":{nullable(p.licence_state)},'
                f'"type":"Drivers"}}'
            )
        rec = ""
        if p.card is not None:
            exp = "null" if p.card_exp is None else str(date_ms(p.card_exp))
            rec = f'{{"recommendationNumber":{quote(p.card)},"expirationDate":{exp},"state":{quote(p.state)}}}'
        dob = "null" if p.birthday is None else str(date_ms(p.birthday))
        sex = _SEX[p.gender][(p.h >> 3) & 1]  # the live API sends integers, the swagger strings
        notes = f'[{{"message":{quote(p.notes)}}}]' if p.notes else "[]"
        visit = "null" if p.last_visit_ms is None else str(p.last_visit_ms)
        modified = BAD_TIME if bad else str(p.modified_ms)
        return (
            f'{{"id":"{IDS.of(gen, p)}","created":{p.created_ms},"modified":{modified},'
            f'"deleted":false,"companyId":"{COMPANY_ID}","shopId":"{SHOP_ID}",'
            f'"firstName":{quote(p.first)},"lastName":{quote(p.last)},"middleName":{nullable(p.middle)},'
            f'"email":{quote(p.email or "")},"primaryPhone":{quote(p.phone or "")},"dob":{dob},'
            f'"birthdate":{nullable(p.birthday)},"sex":{sex},'
            f'"status":"{"Active" if p.status == "active" else "Inactive"}","medical":{boolean(p.medical)},'
            f'"consumerType":"{"MedicinalState" if p.medical else "AdultUse"}",'
            f'"address":{{"address":{quote(p.street)},"city":{quote(p.city)},"state":{quote(p.state)},'
            f'"zipCode":{quote(p.postal_code)},"addressLine2":null,"country":"US"}},'
            f'"identifications":[{ident}],"recommendations":[{rec}],"loyaltyPoints":{p.loyalty}.0,'
            f'"lifetimePoints":{p.loyalty}.0,"enableLoyalty":true,"textOptIn":{boolean(bool(p.h & 2))},'
            f'"emailOptIn":{boolean(bool(p.h & 1))},"lastVisitDate":{visit},"startDate":{p.created_ms},'
            f'"memberGroup":{{"name":"Members"}},"banPatient":false,"notes":{notes},"tags":[]}}'
        )

    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        kind = "java.lang.RuntimeException" if status >= 500 else _ERROR_TYPES.get(status, _INVALID_ARGUMENT)
        return json_response(status, {"field": field_name, "message": message, "errorType": kind})

    def authenticate(self, req: Request) -> Response | None:
        if self.presented(req.headers, {"partner_key": "partner_key", "authorization": "api_key"}):
            return None
        return self.error(401, "Invalid partner key or dispensary key", field_name="Authorization")

    # --- handlers ------------------------------------------------------------------------------------
    def _values(self, people: list[Person]) -> Response:
        n = len(people)
        return Response(200, f'{{"values":{self.render_page(people)},"skip":0,"limit":{n},"total":{n}}}'.encode())

    def listing(self, req: Request) -> Response:
        start_text, end_text = req.query.get("startDate"), req.query.get("endDate")
        since = until = None
        if start_text or end_text:
            if not (start_text and end_text):
                raise BadRequest("startDate and endDate go together", field_name="endDate")
            try:
                since, until = int(start_text), int(end_text)
            except ValueError:
                raise BadRequest("startDate and endDate are epoch milliseconds", field_name="startDate") from None
            if until <= since:
                raise BadRequest("endDate must be after startDate", field_name="endDate")
            if until - since > MAX_WINDOW_MS:
                raise BadRequest("The date range cannot be more than 7 days", field_name="endDate")
        skip = int_param(req.query.get("skip"), "skip", 0, 0, 10**12)
        limit = int_param(req.query.get("limit"), "limit", 100, 1, 1000)
        # endDate is inclusive: a member modified in the very millisecond a client calls "now" is not lost.
        body, total = self.page(since, None if until is None else until + 1, skip, limit)
        return Response(
            200, f'{{"values":{body},"skip":{skip},"limit":{limit},"total":{total}}}'.encode(), listing=True
        )

    def member(self, req: Request, member_id: str) -> Response:
        p = self.by_id(member_id)
        if p is None:
            return self.error(404, "Member not found", field_name="memberId")
        return Response(200, self.render(p).encode())

    def by_email(self, req: Request, email: str) -> Response:
        found = self.search(email=email)
        if not found:
            return self.error(404, "Member not found", field_name="email")
        return Response(200, self.render(found[0]).encode())

    def by_licence(self, req: Request) -> Response:
        licence = req.query.get("licenceNumber", "")
        if not licence:
            raise BadRequest("licenceNumber is required", field_name="licenceNumber")
        return self._values(self.search(licence=licence))

    def by_phone(self, req: Request) -> Response:
        phone = digits_of(req.query.get("phoneNumber"))
        if not phone:
            raise BadRequest("phoneNumber is required", field_name="phoneNumber")
        return self._values(self.search(phone=phone))

    def by_dob(self, req: Request) -> Response:
        dob = req.query.get("dob", "")
        day = ms_day(int(dob)) if _EPOCH_MS.fullmatch(dob) else parse_day(dob, "dob")
        if not day:
            raise BadRequest("dob is required", field_name="dob")
        return self._values(self.search(birthday=day))

    routes = Router(
        Route("GET", "", listing),  # create (POST) is not offered here (pos-apis.md)
        Route("GET", "email/{email}", by_email),
        Route("GET", "search", by_licence),
        Route("GET", "search/phone", by_phone),
        Route("GET", "search/dob", by_dob),
        Route("GET", "{member_id}", member),
        prefix="api/v1/partner/members",
    )
