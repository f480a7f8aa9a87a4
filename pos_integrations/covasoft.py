"""Cova (covasoft, on iQmetrix): OAuth password-grant token, OData $skip/$top (or, where the server ignores
them, a LastModifiedDateUtc filter moved forward), PascalCase, ContactMethods."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from . import parsing
from .base import PosClient
from .errors import PosBadResponse, PosNotFound
from .http import Auth, HttpClient, TokenAuth, request_token
from .mapping import Source, absent, computed, key, status_active
from .pagination import PageRequest, Position, RawPage, fingerprint, list_from
from .records import Capabilities
from .vendors import COVASOFT

PRODUCTION_URL = "https://api.covasoft.net/crm"
PRODUCTION_TOKEN_URL = "https://accounts.iqmetrix.net/v1/oauth2/token"
PAGE_SIZE = 100
TOKEN_TTL = 43200.0
FULL_SYNC_FROM = datetime(1970, 1, 1, tzinfo=UTC)
PHONE, EMAIL = 1, 2  # ContactMethodCategoryId
# Our search field -> Cova Search criteria field (Cova advises searching phone and email separately).
SEARCH_CRITERIA = {"phone": "Phone", "email": "Contact"}
HAL_KEYS = ("_embedded.self", "Results", "value")


def _contact(category: int) -> Callable[[Mapping[str, Any]], Any]:
    def get(raw: Mapping[str, Any]) -> Any:
        methods = [
            m
            for m in raw.get("ContactMethods") or []
            if isinstance(m, Mapping) and str(m.get("ContactMethodCategoryId")) == str(category)
        ]
        methods.sort(key=lambda m: not m.get("Default"))
        return methods[0].get("Value") if methods else None

    return get


def _address(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    addresses = [a for a in raw.get("Addresses") or [] if isinstance(a, Mapping)]
    addresses.sort(key=lambda a: not a.get("Default"))
    return addresses[0] if addresses else {}


def _address_field(*names: str) -> Source:
    def get(raw: Mapping[str, Any]) -> Any:
        address = _address(raw)
        return next((address[n] for n in names if address.get(n) not in (None, "")), None)

    return computed("`Addresses[Default first]." + " / ".join(names) + "`", get)


FIELD_SOURCES: dict[str, Source] = {
    "customer_id": key("Id"),
    "first_name": key("PrimaryName"),
    "last_name": key("FamilyName"),
    "email": computed("`ContactMethods[category 2, Default first].Value`", _contact(EMAIL)),
    "phone": computed("`ContactMethods[category 1, Default first].Value`", _contact(PHONE)),
    "birthday": key("DateOfBirth"),
    "gender": absent(),
    "drivers_license": absent(),
    "drivers_license_expiration": absent(),
    "medical_card_number": absent(),
    "medical_card_expiration": absent(),
    "customer_type": absent("— (always recreational)"),
    "active": status_active(None, disabled="Disabled", merged="MergedIntoCustomerId"),
    "banned": absent(),
    "notes": key("Notes"),
    "street": computed(
        "`Addresses[Default first].StreetAddress1 + StreetAddress2` / `AddressLine1 + AddressLine2`",
        lambda raw: parsing.join_nonempty(
            _address(raw).get("StreetAddress1") or _address(raw).get("AddressLine1"),
            _address(raw).get("StreetAddress2") or _address(raw).get("AddressLine2"),
        ),
    ),
    "city": _address_field("Locality", "City"),
    "state": _address_field("StateCode", "StateName"),
    "postal_code": _address_field("PostalCode", "Zip"),
    "loyalty_points": absent("— (separate loyalty service)"),
    "pos_created_at": key("CreatedDateUtc", "CreatedDate"),
    "pos_updated_at": key("LastModifiedDateUtc", "LastModifiedDate"),
    "merged_into_customer_id": key("MergedIntoCustomerId"),
    "merged_customer_ids": absent(),
    "drivers_license_hash": absent(),
}


def _modified(item: Any) -> str | None:
    """A record's LastModifiedDateUtc as the filter literal takes it (ms precision, UTC), or None."""
    moment = parsing.parse_datetime(item.get("LastModifiedDateUtc")) if isinstance(item, Mapping) else None
    return parsing.format_iso_utc(moment, millis=True) if moment else None


class CovaClient(PosClient):
    """Cova; customers are read-only here (create is not offered)."""

    vendor = COVASOFT
    default_base_url = PRODUCTION_URL
    accept = "application/hal+json, application/json"  # iQmetrix documents collections as HAL
    capabilities = Capabilities(can_create=False, search_fields=frozenset(SEARCH_CRITERIA), incremental=True)
    FIELD_SOURCES = FIELD_SOURCES
    id_key = "Id"

    def company(self) -> str:
        """`/v1/Companies({company_id})`."""
        return f"/v1/Companies({quote(self.credential('company_id'), safe='')})"

    def token_url(self) -> str:
        """credentials["token_url"], else iQmetrix for production, else `{base}/oauth2/token` (the sandbox)."""
        if self.credential("token_url"):
            return self.credential("token_url")
        if self.base_url == PRODUCTION_URL:
            return PRODUCTION_TOKEN_URL
        return self.base_url + "/oauth2/token"

    def build_auth(self) -> Auth:
        return TokenAuth(
            self._fetch_token,
            lambda token: {"Authorization": f"Bearer {token}"},
            default_ttl=TOKEN_TTL,
            clock=self.clock,
        )

    def _fetch_token(self, http: HttpClient) -> tuple[str, float | None]:
        form = {"grant_type": "password"} | {
            k: self.credential(k) for k in ("username", "password", "client_id", "client_secret")
        }
        return request_token(http, self.token_url(), form, log_path="/oauth2/token")

    def first_position(self, modified_since: datetime | None) -> Position:
        since = parsing.format_iso_utc(modified_since or FULL_SYNC_FROM)
        return {"since": since, "skip": 0}

    def page_request(self, position: Position) -> PageRequest:
        return PageRequest.get(
            self.company() + "/CustomerFull",
            {
                "$filter": f"LastModifiedDateUtc ge datetime'{position['since']}'",
                "$skip": position["skip"],
                "$top": PAGE_SIZE,
            },
        )

    def request_ahead(self, position: Position, pages: int) -> PageRequest | None:
        # Paging by $skip: the next offsets are known. Moving the filter forward (`forward`) depends on the answer.
        if position.get("forward"):
            return None
        return self.page_request({**position, "skip": position["skip"] + pages * PAGE_SIZE})

    def read_page(self, position: Position, body: Any) -> RawPage:
        """One page by $skip/$top; where the server ignores them, the filter moves past the newest record read.

        The documentation of this call lists no $skip/$top. A server that ignores $top answers everything at
        once (more than a page: the listing is complete); one that ignores $skip answers the same page again,
        and from then on (`forward` in the position) each page starts at the newest LastModifiedDateUtc read so
        far, the records already read at that instant (`seen`) left out.
        """
        items = list_from(body, *HAL_KEYS)
        if items is None:
            if not isinstance(body, Mapping) or "_embedded" in body or "_links" not in body:
                raise PosBadResponse(f"{self.label} sent a customer page without a customer list", vendor=self.vendor)
            items = []  # HAL without `_embedded.self` is an empty page
        page_print = fingerprint(items, self.id_key)
        if position["skip"] and items and page_print == position.get("last"):
            return RawPage([], self._forward(position, items))  # $skip ignored: these were read last time
        seen = set(position.get("seen") or ())
        fresh = [item for item in items if not (isinstance(item, Mapping) and str(item.get(self.id_key)) in seen)]
        if len(items) < PAGE_SIZE or len(items) > PAGE_SIZE or not fresh:
            return RawPage(fresh, None)
        if position.get("forward"):
            return RawPage(fresh, self._forward(position, items))
        return RawPage(fresh, {**position, "skip": position["skip"] + len(items), "last": page_print})

    def _forward(self, position: Position, items: list[Any]) -> Position:
        """Where the listing goes on when $skip does not work: from the newest instant on this page."""
        stamps = [stamp for stamp in map(_modified, items) if stamp]
        if not stamps:
            raise PosBadResponse(
                f"{self.label} ignores $skip and its records carry no LastModifiedDateUtc to page by",
                vendor=self.vendor,
            )
        newest = max(stamps)
        ties = [str(item[self.id_key]) for item in items if _modified(item) == newest and item.get(self.id_key)]
        kept = list(position.get("seen") or ()) if newest == position["since"] else []
        seen = sorted(set(kept + ties))
        return {"segment": newest, "since": newest, "skip": 0, "forward": True, "seen": seen}

    def lookup(self, filters: Mapping[str, str]) -> tuple[list[Any], set[str]]:
        found: list[Any] = []
        for name, value in filters.items():
            try:
                body = self.http.post_json(
                    self.company() + "/Search",
                    json={"Criteria": [{"Criteria": value, "Field": SEARCH_CRITERIA[name], "Operation": "Equals"}]},
                    idempotent=True,
                )
            except PosNotFound as exc:
                # Not "no match": a lookup that could not search must not let the caller create a duplicate.
                raise PosBadResponse(
                    f"{self.label} could not search customers (answered 404)", vendor=self.vendor, status_code=404
                ) from exc
            results = list_from(body, *HAL_KEYS)
            if results is None:
                raise PosBadResponse(f"{self.label} sent a search answer without `Results`", vendor=self.vendor)
            found += results
        # Several filters are several searches: then keep what our mirror would match on all of them.
        return found, set(filters) if len(filters) == 1 else set()

    def fetch_customer(self, customer_id: str) -> Any:
        return self.http.get_json(f"{self.company()}/CustomerFull({quote(customer_id, safe='')})") or None

    def connection_target(self) -> str:
        return f"company {self.credential('company_id')}"
