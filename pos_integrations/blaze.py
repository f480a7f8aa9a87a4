"""Blaze: partner_key + raw Authorization key; a full sync reads the undated listing by skip/limit, incremental
ones read epoch-ms windows of at most 7 days on `modified`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import quote

from . import parsing
from .base import PosClient, ensure_list
from .errors import PosBadResponse
from .http import Auth, StaticAuth
from .mapping import (
    Source,
    absent,
    build_record,
    computed,
    customer_type_from,
    first_readable,
    joined,
    key,
    nested,
    status_active,
)
from .pagination import PageRequest, Position, RawPage, list_from, listed_fewer_than
from .records import DEFAULT_TIME_ZONE, Capabilities, CustomerRecord
from .vendors import BLAZE

MEMBERS = "/api/v1/partner/members"
PAGE_SIZE = 500
# The undated walk steps back this many members at each page and remembers twice as many of the page before
# (see fetch_page): up to this many members added, changed or removed between two pages cost nothing.
OVERLAP = 20
# A dated listing asks for at most 7 days at a time: one published script says the API demands it, and the
# swagger says nothing either way. Only incremental syncs (and a full sync's closing window) use dates.
WINDOW = timedelta(days=7)
WINDOW_MS = int(WINDOW.total_seconds() * 1000)
# The swagger's `sex` enum. Real listings send an integer instead (0 for every member of one store: "not set");
# no source says what other integers mean, so they stay unknown.
SEXES = {"MALE": "M", "FEMALE": "F", "OTHER": "X"}
MEDICAL_TYPES = {"medicinalstate", "medicinalthirdparty"}
# Our search field -> (path under /members, query parameter); email has its own path.
SEARCHES = {
    "drivers_license": ("/search", "licenceNumber"),
    "phone": ("/search/phone", "phoneNumber"),
    "birthday": ("/search/dob", "dob"),  # the swagger types it a string: we send YYYY-MM-DD, as `birthdate` reads
}


def _sex(value: Any) -> str:
    return SEXES.get(value.strip().upper(), "") if isinstance(value, str) else ""


def _objects(items: Any) -> Iterator[Mapping[str, Any]]:
    """The objects of a JSON list (a decoded object is a dict: the Mapping ABC's slow check only for others)."""
    return (i for i in items or () if type(i) is dict or isinstance(i, Mapping))


def _licence(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    # Real listings send `type: null`: such an identification is read as the licence when no Drivers one exists.
    first: Mapping[str, Any] | None = None
    for ident in _objects(raw.get("identifications")):
        if str(ident.get("type") or "").lower() == "drivers":
            return ident
        if first is None:
            first = ident
    return {} if first is None else first


def _recommendation(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    return next(_objects(raw.get("recommendations")), {})


def _is_medical(raw: Mapping[str, Any]) -> bool:
    return parsing.parse_bool(raw.get("medical"), default=False) or (
        parsing.clean_str(raw.get("consumerType")).lower() in MEDICAL_TYPES
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _version(item: Any) -> tuple[str, Any]:
    """A member's id and `modified`: what tells the same record from a change of it."""
    return (str(item.get("id") or ""), item.get("modified")) if isinstance(item, Mapping) else ("", None)


def _unseen(items: list[Any], tail: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The members of a page that the page before did not end with (as they are now), and this page's tail."""
    fresh = [item for item in items if not (key := _version(item))[0] or tail.get(key[0]) != key[1]]
    return fresh, dict(_version(item) for item in items[-2 * OVERLAP :])


@lru_cache(maxsize=32)
def field_sources(zone_name: str) -> dict[str, Source]:
    """The mapping for a store in this time zone (`dob` is an instant at the store's local midnight)."""
    zone = parsing.time_zone(zone_name)
    return {
        "customer_id": key("id"),
        "first_name": key("firstName"),
        "last_name": key("lastName"),
        "email": key("email"),
        "phone": key("primaryPhone", "cpn", doc="`primaryPhone`, else `cpn` (E.164)"),
        "birthday": first_readable(
            "birthdate",
            "localDob",
            "dob",
            convert={
                "birthdate": parsing.parse_date,
                "localDob": parsing.parse_date,
                "dob": lambda value: parsing.parse_local_date(value, zone),
            },
            doc="`birthdate`, else `localDob`, else `dob` (epoch ms, read as the date in the store's `time_zone`)",
        ),
        "gender": key("sex", convert=_sex, doc="`sex` (MALE/FEMALE/OTHER; integers such as 0 are unknown)"),
        "drivers_license": computed(
            "`identifications[type=Drivers or first].licenseNumber`", lambda raw: _licence(raw).get("licenseNumber")
        ),
        "drivers_license_expiration": computed(
            "`identifications[…].localExpirationDate` / `expirationDate`",
            lambda raw: (licence := _licence(raw)).get("localExpirationDate") or licence.get("expirationDate"),
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
        "banned": key("banPatient"),
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
        "merged_customer_ids": absent(),
        "drivers_license_hash": absent(),
    }


FIELD_SOURCES = field_sources(DEFAULT_TIME_ZONE)


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

    @cached_property
    def _sources(self) -> Mapping[str, Source]:
        return field_sources(self.time_zone.key)

    def parse_record(self, raw: Any) -> CustomerRecord:
        return build_record(raw, self._sources)

    def first_position(self, modified_since: datetime | None) -> Position:
        now = parsing.epoch_ms(self.now())
        if modified_since is None:
            # A full sync reads the listing without dates (the swagger makes them optional): about one request
            # per page, however old the store. `started` says where its closing window begins.
            return {"segment": "all", "skip": 0, "started": now, "recent": {}}
        return self._window(parsing.epoch_ms(modified_since), now)

    @staticmethod
    def _window(start: int, until: int, recent: Mapping[str, Any] | None = None) -> Position:
        """The dated listing from `start`, in windows of at most 7 days, up to `until` (epoch ms)."""
        end = min(start + WINDOW_MS, max(until, start + 1))
        window: Position = {"segment": start, "start": start, "end": end, "skip": 0, "until": until}
        return {**window, "recent": dict(recent)} if recent else window

    @staticmethod
    def _skip(position: Position) -> int:
        """Where the page at this position is asked from: OVERLAP members early after a page of the undated walk."""
        return max(0, position["skip"] - (OVERLAP if position.get("tail") else 0))

    def page_request(self, position: Position) -> PageRequest:
        params: dict[str, int] = {"skip": self._skip(position), "limit": PAGE_SIZE}
        if "started" not in position:
            params = {"startDate": position["start"], "endDate": position["end"], **params}
        return PageRequest.get(MEMBERS, params)

    def request_ahead(self, position: Position, pages: int) -> PageRequest | None:
        # Full pages ahead in the same listing (the walk, or this date window): each one OVERLAP members early in
        # the walk (the page before it had a tail).
        walking = "started" in position
        step = PAGE_SIZE - OVERLAP if walking else PAGE_SIZE
        skip = self._skip(position) + pages * step
        # Read only if the page before it ends before the listing's total (read_page's stop condition), where
        # the walk reported one.
        if listed_fewer_than(position, skip + (OVERLAP if walking else 0) + 1):
            return None
        return self.page_request({**position, "skip": skip, "tail": None})

    def read_page(self, position: Position, body: Any) -> RawPage:
        walking = "started" in position
        # Members added, changed (moved to the front or the back) or removed between two pages of the undated
        # walk shift the rest by a few places, whichever order the listing has. So each page starts OVERLAP
        # members early (none is skipped) and drops the members the page before ended with, as they were
        # then (`tail`, its last 2 x OVERLAP: none is read twice).
        tail: Mapping[str, Any] = position.get("tail") or {}
        items = list_from(body, "values")
        if items is None:
            raise PosBadResponse(f"{self.label} sent a member page without `values`", vendor=self.vendor)
        skip = self._skip(position) + len(items)
        total = body.get("total") if isinstance(body, Mapping) else None
        done = not items or (skip >= total if isinstance(total, int) else len(items) < PAGE_SIZE)
        if walking:
            items, tail = _unseen(items, tail)
        overlap_ms = int(self.overlap.total_seconds() * 1000)
        # Members the walk read that its closing window will list again, by the version read: `recent`.
        recent: dict[str, Any] = dict(position.get("recent") or {})
        if walking:
            closing = position["started"] - overlap_ms
            recent.update(
                (str(item["id"]), item["modified"])
                for item in items
                if isinstance(item, Mapping)
                and item.get("id")
                and isinstance(item.get("modified"), int)
                and item["modified"] >= closing
            )
        elif recent:
            items = [
                i for i in items if not (isinstance(i, Mapping) and recent.get(str(i.get("id"))) == i.get("modified"))
            ]
        if not done:
            more = {"skip": skip, "recent": recent, "tail": tail} if walking else {"skip": skip}
            # The walk's total is the whole listing's (a date window's is only that window's: not reported).
            return RawPage(items, {**position, **more}, total=total if walking and _count(total) else None)
        if walking:
            # The undated listing's order is Blaze's (newest-modified first in a real one): a member modified
            # while we walked may have moved to a page already read. Read those back by date.
            return RawPage(items, self._window(closing, parsing.epoch_ms(self.now()), recent))
        if position["end"] >= position["until"]:
            return RawPage(items, None)
        return RawPage(items, self._window(position["end"], position["until"], recent))

    def lookup(self, filters: Mapping[str, str]) -> tuple[list[Any], set[str]]:
        field = next(f for f in ("email", "drivers_license", "phone", "birthday") if f in filters)
        value = filters[field]
        if field == "email":
            body = self.http.get_json(f"{MEMBERS}/email/{quote(value, safe='')}", log_path=f"{MEMBERS}/email/<email>")
        else:
            path, param = SEARCHES[field]
            body = self.http.get_json(MEMBERS + path, params={param: value})
        return ensure_list(body, self.label, self.vendor, "values"), {field}

    def fetch_customer(self, customer_id: str) -> Any:
        return self.http.get_json(f"{MEMBERS}/{quote(customer_id, safe='')}") or None

    def connection_target(self) -> str:
        return "partner API"
