"""Blaze partner API: partner_key + raw Authorization key; members in windows of at most 7 days."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from ..data import Generator, Person, digits_of
from ..dialect import Dialect, Order
from ..ids import ObjectIds
from ..protocol import BadRequest, Request, Response, int_param, json_response, parse_day
from ..render import BAD_TIME, DAY_MS, boolean, nullable, quote
from ..routing import Route, Router

IDS = ObjectIds()
COMPANY_ID = "5f1e0b7c2a9d4e0012ab34cd"
SHOP_ID = "5f1e0b7c2a9d4e0012ab34ce"
MAX_WINDOW_MS = 7 * DAY_MS
# The shop's time zone: `dob` and expiry dates are epoch ms at its local midnight (07:00 or 08:00 UTC).
STORE_TIME_ZONE = ZoneInfo("America/Los_Angeles")
# The swagger's `sex` strings; a real listing sends the integer 0 ("not set") for most members instead.
_SEX = {"M": '"MALE"', "F": '"FEMALE"'}
_ERROR_TYPES = {
    401: "com.fourtwenty.core.exceptions.BlazeAuthException",
    429: "com.fourtwenty.core.exceptions.BlazeOperationException",
}
_INVALID_ARGUMENT = "com.fourtwenty.core.exceptions.BlazeInvalidArgException"
_EPOCH_MS = re.compile(r"-?\d+")
_DRIVERS = '"Drivers"'
_MIDNIGHTS: dict[str, int] = {}  # YYYY-MM-DD -> epoch ms of the shop's local midnight (a few 10,000 days)


def local_midnight_ms(day: str) -> int:
    """Epoch ms of midnight in the shop's time zone on a YYYY-MM-DD date."""
    ms = _MIDNIGHTS.get(day)
    if ms is None:
        midnight = datetime.combine(date.fromisoformat(day), time(), STORE_TIME_ZONE)
        ms = _MIDNIGHTS[day] = int(midnight.timestamp() * 1000)
    return ms


def local_day(ms: int) -> str:
    """The shop-local date (YYYY-MM-DD) of an epoch-ms time."""
    return datetime.fromtimestamp(ms / 1000, STORE_TIME_ZONE).date().isoformat()


_ALL_THREE: dict[str, str] = {}  # YYYY-MM-DD -> its `dob`, `birthdate` and `localDob` (rendered once per day)


def _birthday(day: str | None, variant: int) -> str:
    """`dob`, `birthdate` and `localDob`, as members of a real listing carry them: most all three, some only
    `localDob`, some only `dob`, some an empty `birthdate` (none of them when the birthday is unknown)."""
    if day is None:
        return ""
    if variant > 2:
        text = _ALL_THREE.get(day)
        if text is None:
            text = _ALL_THREE[day] = f'"dob":{local_midnight_ms(day)},"birthdate":"{day}","localDob":"{day}",'
        return text
    if variant == 0:
        return f'"localDob":"{day}",'
    if variant == 1:
        return f'"dob":{local_midnight_ms(day)},'
    return f'"dob":{local_midnight_ms(day)},"birthdate":"","localDob":"{day}",'


def _expiry(day: str | None) -> str:
    return "" if day is None else f'"expirationDate":{_MIDNIGHTS.get(day) or local_midnight_ms(day)},'


class Blaze(Dialect):
    vendor = "blaze"
    credentials = {"partner_key": "sandbox-blaze-partner-key", "api_key": "sandbox-blaze-key"}
    ids = IDS
    published_rate_limit = (10_000, 300.0)
    not_found_message = "Resource not found"
    listing_order = "newest"  # without dates, as a real listing came

    @staticmethod
    def record(gen: Generator, p: Person, bad: bool) -> str:
        # What departs from the swagger's `Member` is what a real listing shows: an integer `sex`, null
        # `middleName` and `lastVisitDate`, an identification's null `type`. Nothing else is null.
        v = p.h >> 240  # 16 bits choosing how this member's fields are filled in
        ident = ""
        if p.licence is not None:
            ident = (
                f'{{"licenseNumber":{quote(p.licence)},{_expiry(p.licence_exp)}'
                f'"localExpirationDate":{quote(p.licence_exp or "")},"state":{quote(p.licence_state or "")},'
                f'"type":{"null" if (v >> 10) & 3 == 0 else _DRIVERS}}}'
            )
        rec = ""
        if p.card is not None:
            rec = f'{{"recommendationNumber":{quote(p.card)},{_expiry(p.card_exp)}"state":{quote(p.state)}}}'
        digits = digits_of(p.phone)
        # cpn is the phone in E.164; a few members have it there only, with an empty primaryPhone.
        primary = "" if (v >> 3) & 15 == 0 else p.phone or ""
        sex = _SEX.get(p.gender, "0") if v & 7 == 5 else "0"
        notes = f'[{{"message":{quote(p.notes)}}}]' if p.notes else "[]"
        visit = "null" if p.last_visit_ms is None else str(p.last_visit_ms)
        modified = BAD_TIME if bad else str(p.modified_ms)
        return (
            f'{{"id":"{IDS.of(gen, p)}","created":{p.created_ms},"modified":{modified},'
            f'"deleted":false,"companyId":"{COMPANY_ID}","shopId":"{SHOP_ID}",'
            f'"firstName":{quote(p.first)},"lastName":{quote(p.last)},"middleName":{nullable(p.middle)},'
            f'"email":{quote(p.email or "")},"primaryPhone":{quote(primary)},'
            f'"cpn":"{"+1" + digits if digits else ""}",{_birthday(p.birthday, (v >> 7) & 7)}"sex":{sex},'
            f'"status":"{"Active" if p.status == "active" else "Inactive"}","medical":{boolean(p.medical)},'
            f'"consumerType":"{"MedicinalState" if p.medical else "AdultUse"}",'
            f'"address":{{"address":{quote(p.street)},"city":{quote(p.city)},"state":{quote(p.state)},'
            f'"zipCode":{quote(p.postal_code)},"country":"US"}},'
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
        """The swagger's `ListResultMember` (the licence and phone searches)."""
        return Response(200, f'{{"values":{self.render_page(people)}}}'.encode())

    def _search_result(self, people: list[Person]) -> Response:
        """The swagger's `SearchResultMember` (the birthday search)."""
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
        # Without dates the members come newest-modified first, as a real listing did; with dates, in the
        # listing's stable order (the sources say nothing: our choice).
        order: Order = self.listing_order if since is None else "listing"
        body, total = self.page(since, None if until is None else until + 1, skip, limit, order=order)
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
        day = local_day(int(dob)) if _EPOCH_MS.fullmatch(dob) else parse_day(dob, "dob")
        if not day:
            raise BadRequest("dob is required", field_name="dob")
        return self._search_result(self.search(birthday=day))

    routes = Router(
        Route("GET", "", listing),  # create (POST) is not offered here (pos-apis.md)
        Route("GET", "email/{email}", by_email),
        Route("GET", "search", by_licence),
        Route("GET", "search/phone", by_phone),
        Route("GET", "search/dob", by_dob),
        Route("GET", "{member_id}", member),
        prefix="api/v1/partner/members",
    )
