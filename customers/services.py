"""Writes of customers: the live POS lookup and creation at the POS. What the POS answers goes into the mirror
through its one writer (customers.writer), like a sync's pages."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Customer, IdempotencyRecord, IdempotencyStatus, RecordSource
from customers.selectors import (
    CustomerFilters,
    customer_filter,
    customer_page,
    customer_peak_list,
    live_lookup_store,
    store_customers,
)
from customers.writer import CustomerWriter, PageResult
from pos_integrations.base import PosClient
from pos_integrations.errors import PosDuplicate, PosError, PosNotSupported
from pos_integrations.records import CustomerInput, CustomerRecord
from stores.models import ApiKey, Store
from stores.selectors import store_get_for_key

logger = logging.getLogger("customers.services")

# A key is remembered this long; after that the same key starts a new request.
IDEMPOTENCY_TTL = timedelta(hours=24)

# The live search takes the POS client's argument names; our filter is `driver_license`.
_SEARCH_ARGS = {
    "phone": "phone",
    "email": "email",
    "driver_license": "drivers_license",
    "first_name": "first_name",
    "last_name": "last_name",
    "birthday": "birthday",
}
_IDENTITY_SEARCH_ARGS = frozenset({"phone", "email", "drivers_license"})


class CustomerDuplicate(Exception):
    """The POS already has this customer; `customer` is the existing one (to_peak_customer) where we found it."""

    def __init__(self, customer: dict[str, Any] | None) -> None:
        super().__init__("The POS already has this customer.")
        self.customer = customer


class CustomerFieldsRequired(Exception):
    """The store's POS refuses a create without these fields (its client's `capabilities.create_requires`)."""

    def __init__(self, *, label: str, fields: list[str]) -> None:
        super().__init__(f"{label} needs {', '.join(fields)} to create a customer.")
        self.label = label
        self.fields = fields


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was already used with a different request body."""


class IdempotencyInProgress(Exception):
    """A request with the same Idempotency-Key is still being processed."""


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An Idempotency-Key header, scoped to the API key that sent it, and the request it came with."""

    api_key: ApiKey
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class CustomerCreateResult:
    """What a create came to: the customer (to_peak_customer; None when the POS answered a record the mirror
    cannot store, which the warning says), and whether this is a replayed answer."""

    outcome: Literal["created", "duplicate"]
    customer: dict[str, Any] | None
    replayed: bool = False
    warning: str | None = None


def request_fingerprint(body: Any) -> str:
    """SHA-256 of a JSON body with its keys sorted, so formatting differences do not count as another body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def customer_records_store(*, store: Store, records: list[CustomerRecord], source: str) -> PageResult:
    """Write what the store's POS answered into the mirror, through its one writer: what it cannot store is
    quarantined (a rejected POS record, with `source`) and left out of `stored`."""
    return CustomerWriter.for_store(store, source=source).write(records).result()


def unstored_warning(result: PageResult) -> str | None:
    """What to tell an API client about the POS records the mirror could not store (None: there were none)."""
    count = len(result.rejected)
    if not count:
        return None
    what = "a customer" if count == 1 else f"{count} customers"
    return (
        f"The store's POS answered {what} the mirror cannot store; left out of this answer "
        "(staff find them among the rejected POS records)."
    )


@dataclass(frozen=True, slots=True)
class CustomerListPage:
    """A page of customers (the canonical representation), where it came from ("mirror", or "pos" for a live
    lookup) and any warning."""

    customers: list[dict[str, Any]]
    next_after: int | None
    source: Literal["mirror", "pos"] = "mirror"
    warning: str | None = None


def customer_search(*, api_key: ApiKey, filters: CustomerFilters, after: int | None, size: int) -> CustomerListPage:
    """A page of the key's customers matching `filters`, from the mirror; an identity lookup (phone, email,
    licence) the mirror cannot answer asks the store's POS live, where it can search, and keeps what it finds."""
    customers, next_after = customer_page(api_key=api_key, filters=filters, after=after, size=size)
    if not customers and filters.catalog_id:
        store_get_for_key(api_key=api_key, catalog_id=filters.catalog_id)  # unknown or out of reach: 404
    if customers or after is not None or not filters.is_identity_lookup:
        return CustomerListPage(customers=customers, next_after=next_after)
    store = live_lookup_store(api_key=api_key, filters=filters)
    if store is None:
        return CustomerListPage(customers=[], next_after=None)
    try:
        found = customer_lookup_live(store=store, filters=filters)
    except PosError as exc:
        # The mirror's answer (nothing) still stands; say the live lookup failed rather than fail the read.
        logger.warning("Live lookup at %s failed: %s", store.catalog_id, type(exc).__name__)
        return CustomerListPage(
            customers=[], next_after=None, warning=f"The store's POS could not be asked live ({type(exc).__name__})."
        )
    if found is None:
        return CustomerListPage(customers=[], next_after=None)
    return CustomerListPage(customers=found.customers[:size], next_after=None, source="pos", warning=found.warning)


@dataclass(frozen=True, slots=True)
class LiveLookup:
    """What a live lookup found and the mirror now holds (the canonical representation), and any warning."""

    customers: list[dict[str, Any]]
    warning: str | None = None


def customer_lookup_live(*, store: Store, filters: CustomerFilters) -> LiveLookup | None:
    """Ask the store's POS for customers matching an identity lookup, store what it finds, and return the
    stored customers matching every filter; None when the POS cannot search by any identity field given.
    PosError subclasses propagate."""
    client = store.pos_client()
    searchable = client.capabilities.search_fields
    args = {
        pos_name: getattr(filters, ours)
        for ours, pos_name in _SEARCH_ARGS.items()
        if getattr(filters, ours) and pos_name in searchable
    }
    if not _IDENTITY_SEARCH_ARGS & set(args):
        return None
    # HTTP first, outside any transaction; then short writes.
    records = client.search_customers(**args)
    if not records:
        return LiveLookup(customers=[])
    written = customer_records_store(store=store, records=records, source=RecordSource.LOOKUP)
    matching = customer_filter(queryset=store_customers(store=store), filters=filters).filter(
        customer_id__in=written.stored
    )
    customers = customer_peak_list(queryset=matching, limit=len(written.stored)) if written.stored else []
    return LiveLookup(customers=customers, warning=unstored_warning(written))


def customer_create(
    *, store: Store, data: CustomerInput, idempotency_key: IdempotencyKey | None = None
) -> CustomerCreateResult:
    """Create a customer at the store's POS, then in the mirror. With an idempotency key, a retry of the same
    request replays the first result without asking the POS again.

    Raises PosNotSupported (the POS cannot create), CustomerFieldsRequired (the POS needs fields `data` lacks; the
    POS is not asked), CustomerDuplicate (the POS already has them), other PosError subclasses (the POS failed:
    nothing is written locally), IdempotencyKeyReused and IdempotencyInProgress.
    """
    client = store.pos_client()
    if not client.capabilities.can_create:
        raise PosNotSupported(f"{client.label} customers cannot be created through this API", vendor=store.pos_vendor)
    missing = client.capabilities.missing_for_create(data)
    if missing:
        raise CustomerFieldsRequired(label=client.label, fields=missing)

    record: IdempotencyRecord | None = None
    if idempotency_key is not None:
        begun = _idempotency_begin(idempotency_key)
        if isinstance(begun, CustomerCreateResult):
            return begun
        record = begun

    try:
        pos_record = client.create_customer(data)
    except PosDuplicate as exc:
        existing = _existing_customer(store=store, client=client, data=data, existing_id=exc.existing_customer_id)
        result = CustomerCreateResult(outcome="duplicate", customer=existing.to_peak_customer() if existing else None)
        if record is not None:
            _idempotency_complete(record, result)
        raise CustomerDuplicate(result.customer) from None
    except BaseException:
        # The POS failed (or we were interrupted): forget the key so a retry can try again.
        if record is not None:
            record.delete()
        raise

    with transaction.atomic():
        written = customer_records_store(store=store, records=[pos_record], source=RecordSource.CREATE)
        customer = _stored_customer(store=store, written=written)
        result = CustomerCreateResult(
            outcome="created",
            customer=customer.to_peak_customer() if customer is not None else None,
            warning=unstored_warning(written),
        )
        if record is not None:
            _idempotency_complete(record, result)
    return result


def customer_create_replay(*, result: CustomerCreateResult) -> CustomerCreateResult:
    """A replayed duplicate raises again, as the first answer did; a replayed creation is returned."""
    if result.outcome == "duplicate":
        raise CustomerDuplicate(result.customer)
    return result


def _stored_customer(*, store: Store, written: PageResult) -> Customer | None:
    """The one customer a single-record write stored, or None when the mirror could not store it."""
    if not written.stored:
        return None
    customer = Customer.objects.get(store=store, customer_id=written.stored[0])
    customer.store = store
    return customer


def _existing_customer(
    *, store: Store, client: PosClient, data: CustomerInput, existing_id: str | None
) -> Customer | None:
    """The customer the POS says this one duplicates: from the mirror, else read from the POS and stored
    (None when the POS has no such customer, or answers one the mirror cannot store)."""
    try:
        if existing_id:
            local = Customer.objects.filter(store=store, customer_id=existing_id).select_related("store").first()
            if local is not None:
                return local
            found = client.get_customer(existing_id)
            if found is None:
                return None
            written = customer_records_store(store=store, records=[found], source=RecordSource.CREATE)
            return _stored_customer(store=store, written=written)
        searchable = client.capabilities.search_fields
        phone, email, licence = (
            value or None if name in searchable else None
            for name, value in (("phone", data.phone), ("email", data.email), ("drivers_license", data.drivers_license))
        )
        if not (phone or email or licence):
            return None
        matches = client.search_customers(phone=phone, email=email, drivers_license=licence)
        if not matches:
            return None
        written = customer_records_store(store=store, records=matches[:1], source=RecordSource.CREATE)
        return _stored_customer(store=store, written=written)
    except PosError as exc:
        # The 409 stands without the existing customer; the POS said enough.
        logger.warning("Could not read the duplicate customer from %s: %s", store.catalog_id, type(exc).__name__)
        return None


def _idempotency_begin(idem: IdempotencyKey) -> IdempotencyRecord | CustomerCreateResult:
    IdempotencyRecord.objects.filter(
        api_key=idem.api_key, key=idem.key, created_at__lt=timezone.now() - IDEMPOTENCY_TTL
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(api_key=idem.api_key, key=idem.key, request_hash=idem.request_hash)
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(api_key=idem.api_key, key=idem.key).first()
    if existing is None or existing.status == IdempotencyStatus.IN_PROGRESS:
        if existing is not None and existing.request_hash != idem.request_hash:
            raise IdempotencyKeyReused()
        raise IdempotencyInProgress()
    if existing.request_hash != idem.request_hash:
        raise IdempotencyKeyReused()
    response = existing.response or {}
    return customer_create_replay(
        result=CustomerCreateResult(
            outcome=response.get("outcome", "created"),
            customer=response.get("customer"),
            replayed=True,
            warning=response.get("warning"),
        )
    )


def _idempotency_complete(record: IdempotencyRecord, result: CustomerCreateResult) -> None:
    record.status = IdempotencyStatus.COMPLETED
    record.response = {"outcome": result.outcome, "customer": result.customer}
    if result.warning:
        record.response["warning"] = result.warning
    record.completed_at = timezone.now()
    record.save(update_fields=["status", "response", "completed_at"])
