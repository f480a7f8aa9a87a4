"""Flowhub: clientId/key headers; `/v1/customers/?page=&page_size=` (max 500); store-local date filters."""

from __future__ import annotations

import re
from datetime import date

from ..data import Generator, Person, digits_of
from ..dialect import Dialect
from ..ids import GuidIds
from ..protocol import BadRequest, Request, Response, int_param
from ..render import BAD_TIME, DAY_MS, LOCAL_OFFSET_MS, boolean, iso_seconds, nullable, quote
from ..routing import ANY, Route, Router

IDS = GuidIds()
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _micro(ms: int) -> str:
    # Flowhub writes microseconds; ours are whole milliseconds so the text is exactly the stored time.
    return f"{iso_seconds(ms)}.{ms % 1000:03d}000Z"


class Flowhub(Dialect):
    vendor = "flowhub"
    credentials = {
        "client_id": "sandbox-flowhub-client",
        "api_key": "sandbox-flowhub-key",
        "store_id": "sandbox-store-1",
    }
    ids = IDS
    published_rate_limit = (59, 1.0)

    @staticmethod
    def record(gen: Generator, p: Person, bad: bool) -> str:
        modified = BAD_TIME if bad else f'"{_micro(p.modified_ms)}"'
        return (
            f'{{"id":"{IDS.of(gen, p)}","createdAt":"{_micro(p.created_ms)}",'
            f'"updatedAt":{modified},"type":"{"medCustomer" if p.medical else "recCustomer"}",'
            f'"name":{quote(f"{p.first} {p.last}")},"state":{quote(p.state)},"birthDate":{nullable(p.birthday)},'
            f'"isLoyal":{boolean(p.loyalty > 0)},"loyaltyPoints":{p.loyalty},"phone":{nullable(p.phone)},'
            f'"email":{nullable(p.email)},"streetAddress1":{quote(p.street)},"streetAddress2":null,'
            f'"city":{quote(p.city)},"zip":{quote(p.postal_code)},"country":"US",'
            f'"consentsToPromotionalEmail":{boolean(bool(p.h & 1))},'
            f'"consentsToPromotionalSMS":{boolean(bool(p.h & 2))},"groups":[]}}'
        )

    def authenticate(self, req: Request) -> Response | None:
        if not req.headers.get("clientid") or not req.headers.get("key"):
            return self.error(401, "Unauthorized: clientId and key headers are required")
        if not self.presented(req.headers, {"clientid": "client_id", "key": "api_key"}):
            return self.error(403, "Forbidden: invalid clientId or key")
        return None

    # --- handlers ------------------------------------------------------------------------------------
    def listing(self, req: Request) -> Response:
        """Every filter is a store-local date: `updated_after`/`updated_before` and `created_after`/`created_before`
        (a published client sends `created_after`); `after` is inclusive, `before` exclusive."""
        page = int_param(req.query.get("page"), "page", 1, 1, 10**9)
        size = int_param(req.query.get("page_size"), "page_size", 100, 1, 500)
        order = (req.query.get("order_by") or "asc").lower()
        if order not in ("asc", "desc"):
            raise BadRequest("order_by must be asc or desc")
        since = self._local_day_ms(req, "updated_after")
        until = self._local_day_ms(req, "updated_before")
        created = (self._local_day_ms(req, "created_after"), self._local_day_ms(req, "created_before"))
        body, total = self.page(
            since, until, (page - 1) * size, size, order="reversed" if order == "desc" else "listing", created=created
        )
        envelope = f'{{"total":{total},"page":{page},"page_size":{size},"data":{body}}}'
        return Response(200, envelope.encode(), listing=True)

    def _local_day_ms(self, req: Request, name: str) -> int | None:
        """Epoch ms of the store-local midnight a yyyy-mm-dd filter names (anything else: Flowhub's 404)."""
        value = req.query.get(name)
        if not value:
            return None
        if not _DAY.fullmatch(value):
            raise BadRequest(f"{name} must be in format yyyy-mm-dd", status=404)
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise BadRequest(f"{name} must be in format yyyy-mm-dd", status=404) from None
        return (day - date(1970, 1, 1)).days * DAY_MS - LOCAL_OFFSET_MS

    def by_phone(self, req: Request) -> Response:
        phone = digits_of(req.query.get("phone_number"))
        if not phone:
            raise BadRequest("phone_number is required")
        return Response(200, self.render_page(self.search(phone=phone)).encode())

    def customer(self, req: Request, customer_id: str) -> Response:
        p = self.by_id(customer_id)
        if p is None:
            return self.error(404, "Customer not found")
        return Response(200, self.render(p).encode())

    routes = Router(
        # Create and update are not offered here (pos-apis.md).
        Route(ANY, "v1/customer", Dialect.not_offered),
        Route(ANY, "v1/customer/{customer_id}", Dialect.not_offered),
        Route("GET", "v1/customers", listing),
        Route("GET", "v1/customers/findByPhoneNumber", by_phone),
        Route("GET", "v1/customers/{customer_id}", customer),
    )
