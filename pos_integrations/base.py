"""The vendor-neutral client: the public interface, built on the shared HTTP layer and pagination loop.

A vendor module subclasses PosClient and supplies only its URLs, auth hook, pagination flavour,
lookups and field mapping.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import requests

from . import parsing
from .deadlines import Deadlines
from .errors import (
    PosBadResponse,
    PosError,
    PosNotFound,
    PosNotSupported,
    PosUnreadableCustomer,
    PosValidationError,
    RecordParseError,
)
from .http import DEFAULT_MAX_WAIT_SECONDS, DEFAULT_TIMEOUT, Auth, ErrorHook, HttpClient, Timeout
from .mapping import Source, build_record, check_sources, vendor_keys_to_ours
from .pagination import MAX_PAGES_IN_FLIGHT, PageRequest, Position, Prefetcher, RawPage, paginate
from .ratelimit import RateLimits, credential_key
from .records import (
    DEFAULT_TIME_ZONE,
    SEARCH_FIELDS,
    Capabilities,
    CustomerInput,
    CustomerPage,
    CustomerRecord,
    RecordError,
)
from .vendors import PUBLISHED_RATE_LIMITS, RATE_LIMIT_CREDENTIALS, VENDOR_LABELS, validate_credentials

logger = logging.getLogger("pos_integrations.client")


class PosClient:
    """One store's connection to its POS. Subclasses set the class attributes and the vendor hooks."""

    vendor: ClassVar[str]
    default_base_url: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    FIELD_SOURCES: ClassVar[Mapping[str, Source]]
    id_key: ClassVar[str]
    overlap: ClassVar[timedelta] = timedelta(seconds=60)
    accept: ClassVar[str] = "application/json"

    def __init__(
        self,
        *,
        credentials: Mapping[str, Any],
        base_url: str | None = None,
        store_label: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
        time_zone: str | None = None,
        deadlines: Deadlines | None = None,
        rate_limits: RateLimits | None = None,
        pages_in_flight: int = 1,
    ) -> None:
        validate_credentials(self.vendor, credentials)
        if not 1 <= pages_in_flight <= MAX_PAGES_IN_FLIGHT:
            raise ValueError(f"pages_in_flight must be between 1 and {MAX_PAGES_IN_FLIGHT}")
        # How many listing pages iter_customers may have requested at once (1: one after the other).
        self.pages_in_flight = pages_in_flight
        # How long each kind of call may take in total, retries included (pos_integrations.deadlines).
        self.deadlines = deadlines or Deadlines()
        # The store's own zone, for vendors that send a calendar date as an instant (Blaze's `dob`).
        self.time_zone = parsing.time_zone(time_zone or DEFAULT_TIME_ZONE)
        self._credentials = {k: v.strip() if isinstance(v, str) else v for k, v in credentials.items()}
        self.label = VENDOR_LABELS[self.vendor]
        self.store_label = store_label or ""
        self.clock = clock
        self.now = now
        self.http = HttpClient(
            vendor=self.vendor,
            label=self.label,
            base_url=(base_url or "").strip() or self.production_url(),
            store_label=store_label,
            session=session,
            sleep=sleep,
            max_wait_seconds=max_wait_seconds,
            timeout=timeout,
            rng=rng,
            error_hook=self.error_hook(),
            accept=self.accept,
            clock=clock,
            default_deadline=self.deadlines.page,
        )
        self.http.field_names = vendor_keys_to_ours(self.FIELD_SOURCES)
        self.http.auth = self.build_auth()
        if rate_limits is not None:
            # One budget per credential (the vendor's published limit, or an override), shared by every
            # process whose `rate_limits` keep budgets in the same place.
            fields = RATE_LIMIT_CREDENTIALS[self.vendor]
            key = credential_key(self.vendor, self.http.base_url, [self.credential(name) for name in fields])
            self.http.limiter = rate_limits.limiter(self.vendor, key, PUBLISHED_RATE_LIMITS[self.vendor])

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "FIELD_SOURCES" in cls.__dict__:
            check_sources(cls.vendor, cls.FIELD_SOURCES)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.vendor} store={self.store_label or '-'} base={self.http.base_url}>"

    @property
    def base_url(self) -> str:
        """The vendor root this client talks to."""
        return self.http.base_url

    # ---- vendor hooks -------------------------------------------------------------------------

    def production_url(self) -> str:
        """The vendor's production root (used when no base URL is given)."""
        return self.default_base_url

    def build_auth(self) -> Auth:
        """The auth hook for every request."""
        raise NotImplementedError

    def error_hook(self) -> ErrorHook | None:
        """A vendor-specific error mapping consulted before the generic one."""
        return None

    def first_position(self, modified_since: datetime | None) -> Position:
        """Where a listing starts."""
        raise NotImplementedError

    def fetch_page(self, position: Position) -> RawPage:
        """Fetch one page of raw vendor records and say where the next one is."""
        return self.read_page(position, self.send_page_request(self.page_request(position)))

    def page_request(self, position: Position) -> PageRequest:
        """The request that fetches the page at this position."""
        raise NotImplementedError

    def request_ahead(self, position: Position, pages: int) -> PageRequest | None:
        """The request of the page `pages` pages after the one at `position`, if every page until then comes back
        full; None where the vendor's paging cannot say (a cursor or token from the answer, another window)."""
        return None

    def send_page_request(self, request: PageRequest) -> Any:
        """Send a page request (from any thread) and return its decoded answer."""
        return self.http.get_json(request.path, params=request.query)

    def read_page(self, position: Position, answer: Any) -> RawPage:
        """The page the answer to the position's request is: its raw records and where the next page is."""
        raise NotImplementedError

    def lookup(self, filters: Mapping[str, str]) -> tuple[list[Any], set[str]]:
        """Raw vendor records for the given (supported) filters, and which filters the POS applied itself."""
        raise PosNotSupported(f"{self.label} has no customer search", vendor=self.vendor)

    def fetch_customer(self, customer_id: str) -> Any:
        """The raw vendor record for one id, or None."""
        raise NotImplementedError

    def send_create(self, data: CustomerInput) -> Any:
        """Create at the POS and return its raw answer (a customer object, or one carrying its id)."""
        raise PosNotSupported(f"{self.label} customers cannot be created through this integration", vendor=self.vendor)

    def connection_target(self) -> str:
        """What check_connection names after 'Connected to <vendor>'."""
        return ""

    # ---- public interface -------------------------------------------------------------------

    def iter_customers(
        self, modified_since: datetime | None = None, *, start: Position | None = None
    ) -> Generator[CustomerPage, None, None]:
        """Pages of normalized records, fetched and parsed lazily; `start` (a page's position) resumes after it."""
        if modified_since is not None:
            modified_since = parsing.to_utc(modified_since)
        position = dict(start) if start is not None else self.first_position(modified_since)
        prefetcher = None
        if self.pages_in_flight > 1:
            prefetcher = Prefetcher(
                request_of=self.page_request,
                request_ahead=self.request_ahead,
                send=self._send_page_within_deadline,
                read=self.read_page,
                in_flight=self.pages_in_flight,
                # A request asked ahead may wait for a thread whose request takes its whole deadline.
                wait_seconds=2 * self.deadlines.page + 5,
                vendor=self.vendor,
                label=self.label,
                thread_scope=self.http.own_session,
            )
        pages = paginate(
            self._fetch_page_within_deadline,
            position,
            vendor=self.vendor,
            label=self.label,
            id_key=self.id_key,
            prefetcher=prefetcher,
        )
        with closing(pages):  # a caller that stops early (or fails) cancels the pages still in flight
            for items, after in pages:
                if items or after.get("done"):
                    yield CustomerPage(position=after, items=list(items), parse=self.parse_items)

    def _fetch_page_within_deadline(self, position: Position) -> RawPage:
        with self.http.deadline(self.deadlines.page):
            return self.fetch_page(position)

    def _send_page_within_deadline(self, request: PageRequest) -> Any:
        with self.http.deadline(self.deadlines.page):
            return self.send_page_request(request)

    def parse_items(self, items: list[Any]) -> tuple[list[CustomerRecord], list[RecordError]]:
        """Parse a page; a record that cannot be parsed becomes a RecordError and the rest go on."""
        records: list[CustomerRecord] = []
        errors: list[RecordError] = []
        for item in items:
            try:
                records.append(self.parse_record(item))
            except RecordParseError as exc:
                errors.append(RecordError(customer_id=exc.customer_id, reason=exc.reason, payload=item))
        return records, errors

    def parse_record(self, raw: Any) -> CustomerRecord:
        """One vendor record as a CustomerRecord (raises RecordParseError)."""
        return build_record(raw, self.FIELD_SOURCES)

    def _parse_or_raise(self, raw: Any) -> CustomerRecord:
        try:
            return self.parse_record(raw)
        except RecordParseError as exc:
            raise PosUnreadableCustomer(
                f"{self.label} sent a customer we cannot read: {exc.reason}",
                vendor=self.vendor,
                reason=exc.reason,
                customer_id=exc.customer_id,
                payload=raw,
            ) from None

    def search_customers(
        self,
        *,
        phone: str | None = None,
        email: str | None = None,
        drivers_license: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        birthday: date | None = None,
    ) -> list[CustomerRecord]:
        """A live lookup at the POS; results match every filter given (compared as our mirror does)."""
        given = {
            name: value
            for name, value in zip(
                SEARCH_FIELDS, (phone, email, drivers_license, first_name, last_name, birthday), strict=True
            )
            if value not in (None, "")
        }
        if not given:
            raise ValueError("search_customers needs at least one filter")
        unsupported = sorted(set(given) - self.capabilities.search_fields)
        if unsupported:
            raise PosNotSupported(
                f"{self.label} cannot search customers by {', '.join(unsupported)}", vendor=self.vendor
            )
        filters = {name: self._search_value(name, value) for name, value in given.items()}
        if "phone" in filters and not filters["phone"]:
            return []
        try:
            with self.http.deadline(self.deadlines.lookup, interactive=True):
                raw_items, applied = self.lookup(filters)
        except PosNotFound:
            return []
        records, _errors = self.parse_items(raw_items)
        rest = {name: value for name, value in filters.items() if name not in applied}
        unique = {record.customer_id: record for record in records if matches(record, rest)}
        return list(unique.values())

    @staticmethod
    def _search_value(name: str, value: Any) -> str:
        if name == "birthday":
            return value.isoformat() if isinstance(value, date) else str(value)
        if name == "phone":
            return parsing.parse_phone(value)
        return str(value).strip()

    def get_customer(self, customer_id: str) -> CustomerRecord | None:
        """One customer by POS id, or None when the POS has no such customer."""
        customer_id = str(customer_id).strip()
        if not customer_id:
            return None
        try:
            with self.http.deadline(self.deadlines.lookup, interactive=True):
                raw = self.fetch_customer(customer_id)
        except PosNotFound:
            return None
        return None if raw is None else self._parse_or_raise(raw)

    def create_customer(self, data: CustomerInput) -> CustomerRecord:
        """Create a customer at the POS (LeafLogix, Treez); PosDuplicate when it already has them."""
        if not self.capabilities.can_create:
            raise PosNotSupported(
                f"{self.label} customers cannot be created through this integration", vendor=self.vendor
            )
        missing = self.capabilities.missing_for_create(data)
        if missing:
            raise PosValidationError(
                f"{self.label} needs {', '.join(missing)} to create a customer",
                vendor=self.vendor,
                field_errors={name: [f"{self.label} requires this field."] for name in missing},
            )
        with self.http.deadline(self.deadlines.create, interactive=True):
            raw = self.send_create(data)
            if isinstance(raw, Mapping) and set(raw) - {self.id_key}:
                return self._parse_or_raise(raw)
            # Only an id came back: read the customer as the POS now has it (within the create's deadline).
            new_id = raw.get(self.id_key) if isinstance(raw, Mapping) else raw
            if new_id in (None, ""):
                raise PosBadResponse(f"{self.label} did not return the new customer's id", vendor=self.vendor)
            record = self.get_customer(str(new_id))
        if record is None:
            raise PosBadResponse(f"{self.label} cannot find the customer it just created", vendor=self.vendor)
        return record

    def check_connection(self) -> str:
        """Make one cheap authenticated call and describe what we reached; raises a PosError on failure."""
        with self.http.deadline(self.deadlines.connection, interactive=True):
            return self.probe_connection()

    def probe_connection(self) -> str:
        """The vendor hook behind check_connection: by default a small recent listing page."""
        self.fetch_page(self.probe_position())
        target = self.connection_target()
        return f"Connected to {self.label}" + (f" {target}" if target else "")

    def probe_position(self) -> Position:
        """A small recent listing page for the connection check."""
        return self.first_position(self.now() - timedelta(days=1))

    def credential(self, name: str) -> str:
        """One credential value ("" when absent)."""
        value = self._credentials.get(name)
        return value if isinstance(value, str) else ""


def matches(record: CustomerRecord, filters: Mapping[str, str]) -> bool:
    """Whether a record matches the filters the way our mirror compares them."""
    for name, wanted in filters.items():
        if name == "birthday":
            if (record.birthday.isoformat() if record.birthday else "") != wanted:
                return False
        elif name == "phone":
            if record.phone != wanted:
                return False
        elif getattr(record, name).strip().casefold() != wanted.casefold():
            return False
    return True


def ensure_list(body: Any, label: str, vendor: str, *keys: str) -> list[Any]:
    """Records from a lookup answer: an object is one record, a list is many, null or {} is none."""
    from .pagination import list_from

    if body in (None, "", {}):
        return []
    items = list_from(body, *keys)
    if items is not None:
        return items
    if isinstance(body, Mapping):
        return [body]
    raise PosBadResponse(f"{label} sent an unexpected lookup answer", vendor=vendor)


__all__ = ["PosClient", "PosError", "ensure_list", "matches"]
