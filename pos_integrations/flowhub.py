"""Flowhub: clientId/key headers, page/page_size pages until a short one, a single `name`, date-only filter."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from . import parsing
from .base import PosClient, ensure_list
from .errors import PosBadResponse
from .http import Auth, StaticAuth
from .mapping import Source, absent, computed, joined, key
from .pagination import PageRequest, Position, RawPage, list_from, listed_fewer_than
from .records import Capabilities
from .vendors import FLOWHUB

WESTERNMOST_OFFSET = timedelta(hours=12)

PAGE_SIZE = 500
ENVELOPE_KEYS = ("data", "customers")

FIELD_SOURCES: dict[str, Source] = {
    "customer_id": key("id"),
    "first_name": computed("`name` (all but the last word)", lambda raw: parsing.split_full_name(raw.get("name"))[0]),
    "last_name": computed("`name` (last word)", lambda raw: parsing.split_full_name(raw.get("name"))[1]),
    "email": key("email"),
    "phone": key("phone"),
    "birthday": key("birthDate"),
    "gender": absent(),
    "drivers_license": key("stateId", doc="`stateId` (if present)"),
    "drivers_license_expiration": key("stateIdExpiration", doc="`stateIdExpiration` (if present)"),
    "medical_card_number": key("medId", doc="`medId` (if present)"),
    "medical_card_expiration": key("medIdExpiration", doc="`medIdExpiration` (if present)"),
    "customer_type": key("type"),
    "active": absent("— (always active)"),
    "banned": absent(),
    "notes": absent(),
    "street": joined("streetAddress1", "streetAddress2"),
    "city": key("city"),
    "state": key("state"),
    "postal_code": key("zip"),
    "loyalty_points": key("loyaltyPoints"),
    "pos_created_at": key("createdAt"),
    "pos_updated_at": key("updatedAt"),
    "merged_into_customer_id": absent(),
    "merged_customer_ids": absent(),
    "drivers_license_hash": absent(),
}


class FlowhubClient(PosClient):
    """Flowhub; customers are read-only here (create is not offered)."""

    vendor = FLOWHUB
    default_base_url = "https://api.flowhub.co"
    capabilities = Capabilities(can_create=False, search_fields=frozenset({"phone"}), incremental=True)
    FIELD_SOURCES = FIELD_SOURCES
    id_key = "id"
    # `updated_after` is a store-local date, so go back a whole day.
    overlap = timedelta(days=1)

    def build_auth(self) -> Auth:
        return StaticAuth({"clientId": self.credential("client_id"), "key": self.credential("api_key")})

    def first_position(self, modified_since: datetime | None) -> Position:
        if modified_since is None:
            return {"page": 1, "updated_after": None}
        # The filter is a date in the store's own time zone, which we don't know: take the date it was
        # then in the westernmost zone (UTC-12), so no store's local date can be later than ours.
        local_date = (modified_since.astimezone(UTC) - WESTERNMOST_OFFSET).date()
        return {"page": 1, "updated_after": local_date.isoformat()}

    def page_request(self, position: Position) -> PageRequest:
        return PageRequest.get(
            "/v1/customers/",
            {"page": position["page"], "page_size": PAGE_SIZE, "updated_after": position.get("updated_after")},
        )

    def request_ahead(self, position: Position, pages: int) -> PageRequest | None:
        page = position["page"] + pages
        # Asked while every page before it is full: none that the listing's total (if sent) says cannot be. A
        # page starting exactly at the total is the empty one that ends the listing, so it is asked.
        if listed_fewer_than(position, (page - 1) * PAGE_SIZE):
            return None
        return self.page_request({**position, "page": page})

    def read_page(self, position: Position, body: Any) -> RawPage:
        items = list_from(body, *ENVELOPE_KEYS)
        if items is None:
            raise PosBadResponse(f"{self.label} sent a customer page without a customer list", vendor=self.vendor)
        done = len(items) < PAGE_SIZE
        total = body.get("total") if isinstance(body, Mapping) else None
        return RawPage(
            items,
            None if done else {**position, "page": position["page"] + 1},
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        )

    def _one(self, body: Any) -> Any:
        if isinstance(body, Mapping) and isinstance(body.get("data"), Mapping):
            return body["data"]
        return body

    def lookup(self, filters: Mapping[str, str]) -> tuple[list[Any], set[str]]:
        body = self.http.get_json("/v1/customers/findByPhoneNumber", params={"phone_number": filters["phone"]})
        return ensure_list(self._one(body), self.label, self.vendor, *ENVELOPE_KEYS), {"phone"}

    def fetch_customer(self, customer_id: str) -> Any:
        return (
            self._one(
                self.http.get_json(
                    f"/v1/customers/{quote(customer_id, safe='')}", params={"store_id": self.credential("store_id")}
                )
            )
            or None
        )

    def connection_target(self) -> str:
        return f"store {self.credential('store_id')}"
