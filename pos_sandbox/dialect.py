"""What every vendor dialect shares: dispatch through its route table, errors, paging, rendering, lookups.

A vendor module (pos_sandbox/vendors/) subclasses Dialect with only what is the vendor's own: its route
table and handlers, its authentication, its error bodies, its id format, its record JSON, its credentials
and its published rate limit. Every choice follows shared/pos-apis.md ("Our decisions where the sources
leave gaps" first).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from .data import Dataset, Generator, Person
from .faults import Faults, RateLimit
from .ids import IdFormat
from .protocol import Request, Response, json_response
from .render import array
from .routing import Router
from .tokens import TokenStore

Order = Literal["listing", "reversed", "newest"]


class Dialect:
    """One vendor's customer API over the sandbox's dataset."""

    vendor: ClassVar[str]
    credentials: ClassVar[dict[str, str]]  # the sandbox's fixed demo credentials (they open nothing else)
    ids: ClassVar[IdFormat]
    routes: ClassVar[Router]
    published_rate_limit: ClassVar[RateLimit | None] = None  # enforced under the ratelimit=on fault
    sends_rate_limit_headers: ClassVar[bool] = False  # X-RateLimit-* on every answer while a limit is on
    not_found_message: ClassVar[str] = "Not found"
    listing_order: ClassVar[Order] = "listing"  # the order of the full listing without filters (see `page`)

    def __init__(self, dataset: Dataset, faults: Faults, tokens: TokenStore) -> None:
        self.ds = dataset
        self.faults = faults
        self.tokens = tokens
        self.creds = self.credentials
        self.gen: Generator = dataset.generator(self.vendor)
        self._render: Callable[[Generator, Person, bool], str] = self.record

    @staticmethod
    def record(gen: Generator, p: Person, bad: bool) -> str:
        """The customer as the vendor's JSON text; `bad` = the malformed-record fault hit it."""
        raise NotImplementedError

    # --- dispatch ---------------------------------------------------------------------------------------
    def handle(self, req: Request, segs: list[str]) -> Response:
        """Answer a request for the path below the vendor's prefix (unquoted segments)."""
        found = self.routes.match(req.method, segs)
        if not found.public:
            denied = self.authenticate(req)
            if denied is not None:
                return denied
        if found.route is None:
            if found.allowed:
                return self.not_allowed(", ".join(found.allowed))
            return self.not_found(req)
        refused = self.check_path(found.params)
        if refused is not None:
            return refused
        response: Response = found.route.handler(self, req, **found.params)
        return response

    def authenticate(self, req: Request) -> Response | None:
        """The vendor's refusal when the request's credentials are missing or wrong, else None."""
        return None

    def check_path(self, params: dict[str, str]) -> Response | None:
        """The vendor's refusal when the path names an account that is not ours (a dispensary, a company).

        A dialect whose paths carry its account takes (pops) that value here, so handlers do not see it.
        """
        return None

    @staticmethod
    def same(given: str | None, expected: str) -> bool:
        """A constant-time comparison of a presented secret (False when missing)."""
        return bool(given) and secrets.compare_digest((given or "").encode(), expected.encode())

    def presented(self, values: Mapping[str, str], names: dict[str, str]) -> bool:
        """Whether every credential in `values` (a form, the headers) under its vendor name matches ours.

        `names` maps the vendor's name for each value to our credentials key, e.g. {"apikey": "api_key"}.
        """
        return all(self.same(values.get(name), self.creds[key]) for name, key in names.items())

    # --- errors ---------------------------------------------------------------------------------------
    def error(self, status: int, message: str, *, field_name: str | None = None) -> Response:
        """The vendor's error body."""
        return json_response(status, {"message": message})

    def not_found(self, req: Request) -> Response:
        return self.error(404, self.not_found_message)

    def not_allowed(self, allow: str) -> Response:
        r = self.error(405, "The requested resource does not support this method.")
        r.headers["Allow"] = allow
        return r

    def not_offered(self, req: Request, **params: str) -> Response:
        """A route the vendor has that our integration does not use (pos-apis.md): 405."""
        return self.not_allowed("GET")

    def server_error(self, status: int) -> Response:
        return self.error(status, "An error has occurred.")

    def too_many(self, retry_after: int | None) -> Response:
        """An injected 429 (the `429` fault), with Retry-After when given."""
        r = self.error(429, "Too many requests")
        if retry_after is not None:
            r.headers["Retry-After"] = str(retry_after)
        return r

    def rate_limited(self, reset_in: float) -> Response:
        """The answer once the enforced rate limit is used up (`reset_in` seconds until the window resets)."""
        return self.too_many(None)

    # --- records ---------------------------------------------------------------------------------------
    def render(self, p: Person) -> str:
        rate = self.faults.settings(self.vendor).malformed_record
        return self._render(self.gen, p, bool(rate) and self.gen.malformed_fraction(p.h) < rate)

    def render_page(self, people: list[Person]) -> str:
        """A JSON array of these customers, the malformed-record fault applied."""
        rate = self.faults.settings(self.vendor).malformed_record
        render, gen = self._render, self.gen
        if not rate:
            return array([render(gen, p, False) for p in people])
        bad = gen.malformed_fraction
        return array([render(gen, p, bad(p.h) < rate) for p in people])

    def page(
        self,
        since_ms: int | None,
        until_ms: int | None,
        offset: int,
        limit: int,
        *,
        order: Order = "listing",
        created: tuple[int | None, int | None] = (None, None),
    ) -> tuple[str, int]:
        """One page of the listing (since <= modified < until) and its total.

        `order`: "listing" (by creation: changes do not move records), "reversed" (that order backwards) or
        "newest" (most recently modified first: a change moves a record to the front). `created` also bounds
        the creation time, created_since <= created < created_until (not with "newest").
        """
        if order == "newest":
            indexes, total = self.ds.select_newest_first(self.vendor, since_ms, until_ms, offset, limit)
            return self.render_page(self.ds.people(self.vendor, indexes)), total

        def select(start: int, count: int) -> tuple[list[int], int]:
            if created == (None, None):
                return self.ds.select(self.vendor, since_ms, until_ms, start, count)
            return self.ds.select_created(self.vendor, since_ms, until_ms, *created, start, count)

        if order == "listing":
            indexes, total = select(offset, limit)
            return self.render_page(self.ds.people(self.vendor, indexes)), total
        total = select(0, 0)[1]
        start = max(0, total - offset - limit)
        indexes, _ = select(start, max(0, total - offset - start))
        return self.render_page(self.ds.people(self.vendor, indexes[::-1])), total

    def total(self, since_ms: int | None, until_ms: int | None) -> int:
        """How many customers the listing with these bounds holds."""
        return self.ds.select(self.vendor, since_ms, until_ms, 0, 0)[1]

    # --- lookups and changes ---------------------------------------------------------------------------
    def by_id(self, text: str) -> Person | None:
        """The live customer with this vendor id, or None."""
        i = self.ids.index(self.gen, text)
        p = self.ds.person(self.vendor, i) if i is not None else None
        if p is None or self.ids.of(self.gen, p).lower() != text.strip().lower():
            return None
        return p

    def id_of(self, p: Person) -> str:
        return self.ids.of(self.gen, p)

    def search(self, **criteria: str) -> list[Person]:
        """Live customers matching every criterion (see Dataset.search)."""
        return self.ds.search(self.vendor, **criteria)

    def duplicate_of(self, fields: dict[str, Any]) -> tuple[str, Person] | None:
        """An existing live customer with the same email, phone or licence, and which one matched."""
        for name in ("email", "phone", "licence"):
            value = fields.get(name)
            if value:
                found = self.search(**{name: value})
                if found:
                    return name, found[0]
        return None

    def add(self, fields: dict[str, Any]) -> Person:
        return self.ds.add(self.vendor, fields)

    def update(self, p: Person, fields: dict[str, Any]) -> Person:
        return self.ds.update(self.vendor, p.index, **fields)
