"""Blaze: partner_key + raw Authorization key, epoch-ms windows of at most 7 days, skip/limit/total pages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from . import parsing
from .base import PosClient, ensure_list
from .errors import PosBadResponse
from .http import Auth, StaticAuth
from .mapping import Source, absent, computed, customer_type_from, joined, key, nested, status_active
from .pagination import Position, RawPage, list_from
from .records import Capabilities
from .vendors import BLAZE

MEMBERS = "/api/v1/partner/members"
PAGE_SIZE = 500
WINDOW = timedelta(days=7)
WINDOW_MS = int(WINDOW.total_seconds() * 1000)
# Full syncs walk 7-day windows from here: Blaze has no earlier stores.
FULL_SYNC_FROM = datetime(2014, 1, 1, tzinfo=UTC)
SEX_CODES = {0: "M", 1: "F", 2: "X"}  # the integer form is the MALE|FEMALE|OTHER enum's ordinal
MEDICAL_TYPES = {"medicinalstate", "medicinalthirdparty"}
# Our search field -> (path under /members, query parameter); email has its own path.
SEARCHES = {
    "drivers_license": ("/search", "licenceNumber"),
    "phone": ("/search/phone", "phoneNumber"),
    "birthday": ("/search/dob", "dob"),
}


def _sex(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return SEX_CODES.get(value, "")
    return parsing.normalize_gender(value)


def _licence(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    ids = [i for i in raw.get("identifications") or [] if isinstance(i, Mapping)]
    return next((i for i in ids if str(i.get("type") or "").lower() == "drivers"), ids[0] if ids else {})


def _recommendation(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    recs = [r for r in raw.get("recommendations") or [] if isinstance(r, Mapping)]
    return recs[0] if recs else {}


def _is_medical(raw: Mapping[str, Any]) -> bool:
    return parsing.parse_bool(raw.get("medical"), default=False) or (
        parsing.clean_str(raw.get("consumerType")).lower() in MEDICAL_TYPES
    )


FIELD_SOURCES: dict[str, Source] = {
    "customer_id": key("id"),
    "first_name": key("firstName"),
    "last_name": key("lastName"),
    "email": key("email"),
    "phone": key("primaryPhone"),
    "birthday": key("birthdate", "localDob", "dob"),
    "gender": key("sex", convert=_sex, doc="`sex` (MALE/FEMALE/OTHER or 0/1/2)"),
    "drivers_license": computed(
        "`identifications[type=Drivers or first].licenseNumber`", lambda raw: _licence(raw).get("licenseNumber")
    ),
    "drivers_license_expiration": computed(
        "`identifications[…].localExpirationDate` / `expirationDate`",
        lambda raw: _licence(raw).get("localExpirationDate") or _licence(raw).get("expirationDate"),
    ),
    "medical_card_number": computed(
        "`recommendations[0].recommendationNumber`", lambda raw: _recommendation(raw).get("recommendationNumber")
    ),
    "medical_card_expiration": computed(
        "`recommendations[0].expirationDate`", lambda raw: _recommendation(raw).get("expirationDate")
    ),
    "customer_type": computed(
        "`consumerType` (Medicinal…) or `medical`", _is_medical, convert=customer_type_from(bool)
    ),
    "active": status_active("status", inactive=("Inactive",), deleted="deleted"),
    "notes": computed(
        "`notes[].message`",
        lambda raw: "\n".join(
            parsing.clean_str(n.get("message")) for n in raw.get("notes") or [] if isinstance(n, Mapping)
        ),
    ),
    "street": joined("address.address", "address.addressLine2"),
    "city": nested("address.city"),
    "state": nested("address.state"),
    "postal_code": nested("address.zipCode"),
    "loyalty_points": key("loyaltyPoints"),
    "pos_created_at": key("created"),
    "pos_updated_at": key("modified"),
    "merged_into_customer_id": absent(),
    "drivers_license_hash": absent(),
}


class BlazeClient(PosClient):
    """Blaze partner API; members are read-only here (create is not offered)."""

    vendor = BLAZE
    default_base_url = "https://api.partners.blaze.me"
    capabilities = Capabilities(
        can_create=False, search_fields=frozenset({"email", "phone", "drivers_license", "birthday"}), incremental=True
    )
    FIELD_SOURCES = FIELD_SOURCES
    id_key = "id"

    def build_auth(self) -> Auth:
        return StaticAuth({"partner_key": self.credential("partner_key"), "Authorization": self.credential("api_key")})

    def first_position(self, modified_since: datetime | None) -> Position:
        start = parsing.epoch_ms(modified_since or FULL_SYNC_FROM)
        until = parsing.epoch_ms(self.now())
        return {"start": start, "end": min(start + WINDOW_MS, max(until, start + 1)), "skip": 0, "until": until}

    def fetch_page(self, position: Position) -> RawPage:
        body = self.http.get_json(
            MEMBERS,
            params={
                "startDate": position["start"],
                "endDate": position["end"],
                "skip": position["skip"],
                "limit": PAGE_SIZE,
            },
        )
        items = list_from(body, "values")
        if items is None:
            raise PosBadResponse(f"{self.label} sent a member page without `values`", vendor=self.vendor)
        skip = position["skip"] + len(items)
        total = body.get("total") if isinstance(body, Mapping) else None
        window_done = not items or (skip >= total if isinstance(total, int) else len(items) < PAGE_SIZE)
        if not window_done:
            return RawPage(items, {**position, "skip": skip})
        if position["end"] >= position["until"]:
            return RawPage(items, None)
        start = position["end"]
        return RawPage(items, {**position, "start": start, "end": min(start + WINDOW_MS, position["until"]), "skip": 0})

    def lookup(self, filters: Mapping[str, str]) -> tuple[list[Any], set[str]]:
        field = next(f for f in ("email", "drivers_license", "phone", "birthday") if f in filters)
        value = filters[field]
        if field == "email":
            body = self.http.get_json(f"{MEMBERS}/email/{quote(value, safe='')}", log_path=f"{MEMBERS}/email/<email>")
        else:
            path, param = SEARCHES[field]
            if field == "birthday":
                value = str(parsing.epoch_ms(datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)))
            body = self.http.get_json(MEMBERS + path, params={param: value})
        return ensure_list(body, self.label, self.vendor, "values"), {field}

    def fetch_customer(self, customer_id: str) -> Any:
        return self.http.get_json(f"{MEMBERS}/{quote(customer_id, safe='')}") or None

    def connection_target(self) -> str:
        return "partner API"
