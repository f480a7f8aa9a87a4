"""LeafLogix / Dutchie POS: Basic auth with the location key, PageNumber/PageSize pages, camelCase fields."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import parsing
from .base import PosClient, ensure_list
from .errors import PosBadResponse, PosDuplicate
from .http import Auth, StaticAuth
from .mapping import Source, absent, joined, key, status_active
from .pagination import PageRequest, Position, RawPage, list_from
from .records import MEDICAL, Capabilities, CustomerInput
from .vendors import LEAFLOGIX

PAGE_SIZE = 100  # the documented maximum
ENVELOPE_KEYS = ("data", "customers", "items", "results", "value")
# Our search field -> customerLookup body key.
LOOKUP_KEYS = {
    "phone": "phone",
    "email": "emailAddress",
    "first_name": "firstName",
    "last_name": "lastName",
    "birthday": "dateOfBirth",
}

FIELD_SOURCES: dict[str, Source] = {
    "customer_id": key("customerId"),
    "first_name": key("firstName"),
    "last_name": key("lastName"),
    "email": key("emailAddress"),
    "phone": key("phone", "cellPhone"),
    "birthday": key("dateOfBirth"),
    "gender": key("gender"),
    "drivers_license": absent("— (only a hash, see `drivers_license_hash`)"),
    "drivers_license_expiration": absent(),
    "medical_card_number": key("mmjidNumber"),
    "medical_card_expiration": key("mmjidExpirationDate"),
    "customer_type": key("customerType"),
    "active": status_active(
        "status", inactive=("Inactive", "Disabled", "Banned", "Deleted", "Merged"), merged="mergedIntoCustomerId"
    ),
    "banned": absent(),
    "notes": key("notes"),
    "street": joined("address1", "address2"),
    "city": key("city"),
    "state": key("state"),
    "postal_code": key("postalCode"),
    "loyalty_points": absent("— (separate loyalty API)"),
    "pos_created_at": key("creationDate"),
    "pos_updated_at": key("lastModifiedDateUTC"),
    "merged_into_customer_id": key("mergedIntoCustomerId"),
    "merged_customer_ids": absent(),
    "drivers_license_hash": key("driversLicenseHash"),
}


class LeafLogixClient(PosClient):
    """Dutchie POS (LeafLogix); one API key is one location."""

    vendor = LEAFLOGIX
    default_base_url = "https://api.pos.dutchie.com"
    capabilities = Capabilities(can_create=True, search_fields=frozenset(LOOKUP_KEYS), incremental=True)
    FIELD_SOURCES = FIELD_SOURCES
    id_key = "customerId"

    def build_auth(self) -> Auth:
        pair = f"{self.credential('api_key')}:{self.credential('integrator_key')}"
        return StaticAuth({"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()})

    def first_position(self, modified_since: datetime | None) -> Position:
        return {"page": 1, "since": parsing.format_iso_utc(modified_since) if modified_since else None}

    def page_request(self, position: Position) -> PageRequest:
        return PageRequest.get(
            "/customer/customers-paginated",
            {"PageNumber": position["page"], "PageSize": PAGE_SIZE, "fromLastModifiedDateUTC": position.get("since")},
        )

    def request_ahead(self, position: Position, pages: int) -> PageRequest:
        return self.page_request({**position, "page": position["page"] + pages})

    def read_page(self, position: Position, body: Any) -> RawPage:
        items = list_from(body, *ENVELOPE_KEYS)
        if items is None:
            raise PosBadResponse(f"{self.label} sent a customer page without a customer list", vendor=self.vendor)
        done = len(items) < PAGE_SIZE
        return RawPage(items, None if done else {**position, "page": position["page"] + 1})

    def lookup(self, filters: Mapping[str, str]) -> tuple[list[Any], set[str]]:
        body = self.http.post_json(
            "/customer/customerLookup",
            json={LOOKUP_KEYS[name]: value for name, value in filters.items()},
            idempotent=True,
            ok_statuses=frozenset({204}),
        )
        return ensure_list(body, self.label, self.vendor, *ENVELOPE_KEYS), set(filters)

    def fetch_customer(self, customer_id: str) -> Any:
        body = self.http.get_json("/customer/customers", params={"customerID": customer_id})
        items = ensure_list(body, self.label, self.vendor, *ENVELOPE_KEYS)
        return next((i for i in items if isinstance(i, Mapping) and str(i.get("customerId")) == customer_id), None)

    def send_create(self, data: CustomerInput) -> Any:
        # Dutchie does not reject duplicates, so look the person up by phone and by email first.
        checks = (
            ("phone", lambda: self.search_customers(phone=data.phone)),
            ("email", lambda: self.search_customers(email=data.email)),
        )
        for field, search in checks:
            if getattr(data, field) and (found := search()):
                raise PosDuplicate(
                    f"{self.label} already has a customer with this {field}",
                    vendor=self.vendor,
                    existing_customer_id=found[0].customer_id,
                )
        payload = {
            "firstName": data.first_name,
            "lastName": data.last_name,
            "emailAddress": data.email,
            "phone": parsing.parse_phone(data.phone),
            "dateOfBirth": data.birthday.isoformat() if data.birthday else None,
            "gender": data.gender,
            "notes": data.notes,
            "customerType": "Medical" if data.customer_type == MEDICAL else "Recreational",
            "mmjidNumber": data.medical_card_number,
            "mmjidExpirationDate": data.medical_card_expiration.isoformat() if data.medical_card_expiration else None,
            "driversLicenseID": data.drivers_license,
        }
        return self.http.post_json(
            "/customer/customer", json={k: v for k, v in payload.items() if v not in (None, "")}, idempotent=False
        )

    def probe_connection(self) -> str:
        body = self.http.get_json("/whoami")
        if not isinstance(body, Mapping):
            raise PosBadResponse(f"{self.label} /whoami answered unexpectedly", vendor=self.vendor)
        location = parsing.clean_str(body.get("LocationName") or body.get("locationName")) or "?"
        company = parsing.clean_str(body.get("CompanyName") or body.get("companyName"))
        return f"Connected to {self.label} location {location}" + (f" ({company})" if company else "")
