"""Writes of customers: the live POS lookup and creation at the POS. What the POS answers goes into the mirror
through its one writer (customers.writer), like a sync's pages."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from customers.models import (
    POS_FIELDS,
    Customer,
    IdempotencyRecord,
    IdempotencyStatus,
    RecordSource,
    licence_key,
    peak_customer,
    phone_digits,
    text_key,
)
from customers.quarantine import storable_text
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
from pos_integrations.errors import (
    PosAuthError,
    PosDuplicate,
    PosError,
    PosNotSupported,
    PosRateLimited,
    PosUnreadableCustomer,
    PosValidationError,
)
from pos_integrations.records import CustomerInput, CustomerRecord, RecordError
from stores.models import ApiKey, Store
from stores.selectors import store_get_for_key

logger = logging.getLogger("customers.services")

# A create or duplicate the POS answered with a customer erased from the mirror: neither stored nor shown.
ERASED_ANSWER = (
    "The store's POS answered with a customer erased from this mirror: not stored or shown here "
    "(the POS still holds them)."
)

# A key is remembered this long; after that the same key starts a new request.
IDEMPOTENCY_TTL = timedelta(hours=24)
# How long a customer's POS creation time may precede the (dead) request that created it: POS clocks drift.
POS_CLOCK_SKEW = timedelta(minutes=5)
# POS failures after which the POS has certainly not created the customer: the key is forgotten. After any other
# (a timeout, a dropped connection, an answer we cannot read, the request killed) it may have: the key stays, its
# lease released, so that a retry looks for the customer before creating one.
_NOT_CREATED = (PosValidationError, PosAuthError, PosRateLimited, PosNotSupported)

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
    """A request with the same Idempotency-Key is still being processed (`retry_after`: seconds until its lease
    ends, where known)."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("A request with this Idempotency-Key is still in progress.")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An Idempotency-Key header, scoped to the API key that sent it, and the request it came with."""

    api_key: ApiKey
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class CustomerCreateResult:
    """What a create came to: the customer (to_peak_customer; as the POS has it, without an id, when the mirror
    cannot store what the POS answered, which the warning says), and whether this is a replayed answer."""

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
    args = _pos_search_args(client=client, filters=filters)
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
    request replays the first result without asking the POS again; a retry after the request holding the key
    died (its lease, settings.IDEMPOTENCY_LEASE_SECONDS, ran out) first looks for the customer that request may
    have created, in the mirror and at the POS, and answers with it rather than create a second one.

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
        record, taken_over = begun
        if taken_over:
            try:
                earlier = _earlier_attempt_result(store=store, client=client, data=data, since=record.created_at)
            except BaseException:
                _idempotency_release(record, forget=False)
                raise
            if earlier is not None:
                _idempotency_complete(record, earlier)
                return customer_create_replay(result=earlier)

    try:
        pos_record = client.create_customer(data)
    except PosDuplicate as exc:
        existing = _existing_customer(store=store, client=client, data=data, existing_id=exc.existing_customer_id)
        result = CustomerCreateResult(outcome="duplicate", customer=existing)
        if record is not None:
            _idempotency_complete(record, result)
        raise CustomerDuplicate(result.customer) from None
    except PosUnreadableCustomer as exc:
        # The POS created the customer but answered a record we cannot read: still a 201.
        with transaction.atomic():
            result = _unreadable_answer(store=store, data=data, error=exc)
            if record is not None:
                _idempotency_complete(record, result)
        return result
    except BaseException as exc:
        if record is not None:
            _idempotency_release(record, forget=isinstance(exc, _NOT_CREATED))
        raise

    # The POS said yes: from here on the answer is a 201, whatever the mirror can make of the POS's record.
    with transaction.atomic():
        customer, warning = _store_answer(store=store, record=pos_record)
        result = CustomerCreateResult(outcome="created", customer=customer, warning=warning)
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


def _store_answer(*, store: Store, record: CustomerRecord) -> tuple[dict[str, Any] | None, str | None]:
    """Write one customer the POS answered into the mirror: the stored customer (to_peak_customer) and no
    warning; or, where the mirror cannot store it (it is quarantined), the customer as the POS has it and a
    warning naming why; or, where the POS answered with a customer erased from the mirror (customers.erasure:
    its POS id is suppressed), no customer and a warning saying so."""
    written = customer_records_store(store=store, records=[record], source=RecordSource.CREATE)
    customer = _stored_customer(store=store, written=written)
    if customer is not None:
        return customer.to_peak_customer(), None
    if written.suppressed:
        return None, ERASED_ANSWER
    reason = storable_text(written.rejected[0].reason, 300) if written.rejected else "unknown"
    warning = (
        f"The mirror cannot store the customer as the store's POS answered it ({reason}): shown as the POS has "
        "it, without an id; staff find it among the rejected POS records."
    )
    return pos_customer(store=store, record=record), warning


def _unreadable_answer(*, store: Store, data: CustomerInput, error: PosUnreadableCustomer) -> CustomerCreateResult:
    """A create the POS accepted, answered with a record we cannot read: that record quarantined for staff, and
    the customer as it was sent, with the POS's id where it gave one."""
    unread = RecordError(customer_id=error.customer_id, reason=error.reason, payload=error.payload)
    CustomerWriter.for_store(store, source=RecordSource.CREATE).write([], errors=[unread]).result()
    sent = data.as_record(str(error.customer_id or ""))
    warning = (
        f"The store's POS created the customer but answered a record we cannot read "
        f"({storable_text(error.reason, 300)}): shown as it was sent, with the POS's id where it gave one; staff "
        "find the POS's answer among the rejected POS records."
    )
    return CustomerCreateResult(outcome="created", customer=pos_customer(store=store, record=sent), warning=warning)


def pos_customer(*, store: Store, record: CustomerRecord) -> dict[str, Any]:
    """The canonical representation of a POS record the mirror does not hold: `id` and `synced_at` null, the
    fields as the POS has them (text made storable and bounded: customers.quarantine.storable_text; a value of
    the wrong type, which a client's parser never makes, null)."""
    values: list[Any] = []
    for name in POS_FIELDS:
        value = getattr(record, name, None)
        if name in _DATE_FIELDS:
            value = value if isinstance(value, date) and not isinstance(value, datetime) else None
        elif name in _DATETIME_FIELDS:
            value = value if isinstance(value, datetime) and value.tzinfo is not None else None
        elif isinstance(value, str):
            value = storable_text(value)
        elif name == "active":
            value = bool(value) and not record.merged_into_customer_id
        values.append(value)
    points = record.loyalty_points
    finite = isinstance(points, int | float | Decimal) and math.isfinite(points)
    values[POS_FIELDS.index("loyalty_points")] = points if finite else 0
    customer_id = storable_text(str(record.customer_id or ""))
    answer = peak_customer((None, customer_id, *values, None, store.catalog_id, store.pos_vendor))
    if not finite:
        answer["loyalty_points"] = None
    return answer


_DATE_FIELDS = frozenset({"birthday", "drivers_license_expiration", "medical_card_expiration"})
_DATETIME_FIELDS = frozenset({"pos_created_at", "pos_updated_at"})


def _existing_customer(
    *, store: Store, client: PosClient, data: CustomerInput, existing_id: str | None
) -> dict[str, Any] | None:
    """The customer the POS says this one duplicates (the canonical representation): from the mirror, else read
    from the POS and stored (as the POS has it where the mirror cannot store it); None when the POS has no such
    customer."""
    try:
        if existing_id:
            local = Customer.objects.filter(store=store, customer_id=existing_id).select_related("store").first()
            if local is not None:
                return local.to_peak_customer()
            found = client.get_customer(existing_id)
        else:
            found = _find_at_pos(client=client, data=data)
        if found is None:
            return None
        return _store_answer(store=store, record=found)[0]
    except PosError as exc:
        # The 409 stands without the existing customer; the POS said enough.
        logger.warning("Could not read the duplicate customer from %s: %s", store.catalog_id, type(exc).__name__)
        return None


def _earlier_attempt_result(
    *, store: Store, client: PosClient, data: CustomerInput, since: datetime
) -> CustomerCreateResult | None:
    """What an earlier request with this key, which died, came to: the customer it created (the newest with the
    create's identity: its email, phone and licence, or without them its names and birthday), found in the mirror,
    else at the POS (and stored); a duplicate when the one found is older than that request; None when neither
    has such a customer, or the POS cannot be searched by what the create gave."""
    identity = CustomerFilters(
        email=data.email or None, phone=data.phone or None, driver_license=data.drivers_license or None
    )
    names = CustomerFilters(first_name=data.first_name, last_name=data.last_name, birthday=data.birthday)
    filters = identity if identity.is_identity_lookup else names
    local = (
        customer_filter(queryset=Customer.objects.filter(store=store), filters=filters)
        .select_related("store")
        .order_by(F("pos_created_at").desc(nulls_last=True), "-id")
        .first()
    )
    warning: str | None = None
    customer: dict[str, Any] | None
    if local is not None:
        created_at, customer = local.pos_created_at, local.to_peak_customer()
    else:
        args = _pos_search_args(client=client, filters=identity) or _pos_search_args(client=client, filters=names)
        if not args:
            return None
        found = [r for r in client.search_customers(**args) if _same_identity(r, data)]
        if not found:
            return None
        newest = max(found, key=lambda r: r.pos_created_at or since - IDEMPOTENCY_TTL)
        created_at = newest.pos_created_at
        customer, warning = _store_answer(store=store, record=newest)
    if created_at is not None and created_at < since - POS_CLOCK_SKEW:
        return CustomerCreateResult(outcome="duplicate", customer=customer)
    return CustomerCreateResult(outcome="created", customer=customer, warning=warning)


def _pos_search_args(*, client: PosClient, filters: CustomerFilters) -> dict[str, Any]:
    """The POS client's search arguments for the filters it can search by."""
    searchable = client.capabilities.search_fields
    return {
        pos_name: getattr(filters, ours)
        for ours, pos_name in _SEARCH_ARGS.items()
        if getattr(filters, ours) and pos_name in searchable
    }


def _same_identity(record: CustomerRecord, data: CustomerInput) -> bool:
    """Whether a POS record has every identity a create gave (email, phone, licence; compared as the mirror does)."""
    return (
        (not data.email or text_key(record.email) == text_key(data.email))
        and (not data.phone or phone_digits(record.phone) == phone_digits(data.phone))
        and (not data.drivers_license or licence_key(record.drivers_license) == licence_key(data.drivers_license))
    )


def _find_at_pos(*, client: PosClient, data: CustomerInput) -> CustomerRecord | None:
    """The first customer the POS finds by the identity of a create (phone, email, licence, where it can search
    by them); None when it finds none or cannot search by any given."""
    searchable = client.capabilities.search_fields
    phone, email, licence = (
        value or None if name in searchable else None
        for name, value in (("phone", data.phone), ("email", data.email), ("drivers_license", data.drivers_license))
    )
    if not (phone or email or licence):
        return None
    matches = client.search_customers(phone=phone, email=email, drivers_license=licence)
    return matches[0] if matches else None


def _idempotency_lease() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)


def _idempotency_begin(idem: IdempotencyKey) -> tuple[IdempotencyRecord, bool] | CustomerCreateResult:
    """The key's record, held by this request for a lease, and whether it was taken over from a request that died
    (its lease ran out); or the replayed answer of a completed one. IdempotencyKeyReused, IdempotencyInProgress."""
    now = timezone.now()
    lease_until = now + _idempotency_lease()
    IdempotencyRecord.objects.filter(api_key=idem.api_key, key=idem.key, created_at__lt=now - IDEMPOTENCY_TTL).delete()
    try:
        with transaction.atomic():
            created = IdempotencyRecord.objects.create(
                api_key=idem.api_key, key=idem.key, request_hash=idem.request_hash, lease_expires_at=lease_until
            )
        return created, False
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(api_key=idem.api_key, key=idem.key).first()
    if existing is None:
        raise IdempotencyInProgress()  # deleted as expired by a request just now: it holds the key
    if existing.request_hash != idem.request_hash:
        raise IdempotencyKeyReused()
    if existing.status == IdempotencyStatus.IN_PROGRESS:
        held_until = existing.lease_expires_at or existing.created_at + _idempotency_lease()
        if held_until > now:
            raise IdempotencyInProgress(retry_after=max(1, math.ceil((held_until - now).total_seconds())))
        # The request holding the key died: this one takes it over (of two retries at once, one wins).
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, status=IdempotencyStatus.IN_PROGRESS, lease_expires_at=existing.lease_expires_at
        ).update(lease_expires_at=lease_until)
        if not taken:
            raise IdempotencyInProgress()
        existing.lease_expires_at = lease_until
        return existing, True
    response = existing.response or {}
    return customer_create_replay(
        result=CustomerCreateResult(
            outcome=response.get("outcome", "created"),
            customer=response.get("customer"),
            replayed=True,
            warning=response.get("warning"),
        )
    )


def _idempotency_release(record: IdempotencyRecord, *, forget: bool) -> None:
    """After a failed attempt: forget the key (the POS certainly created nothing), or end this request's lease now
    so that a retry takes it over and looks for what the POS may have created. Only while this request holds it."""
    ours = IdempotencyRecord.objects.filter(
        pk=record.pk, status=IdempotencyStatus.IN_PROGRESS, lease_expires_at=record.lease_expires_at
    )
    if forget:
        ours.delete()
    else:
        ours.update(lease_expires_at=timezone.now())


def _idempotency_complete(record: IdempotencyRecord, result: CustomerCreateResult) -> None:
    record.status = IdempotencyStatus.COMPLETED
    record.response = {"outcome": result.outcome, "customer": result.customer}
    if result.warning:
        record.response["warning"] = result.warning
    record.completed_at = timezone.now()
    record.save(update_fields=["status", "response", "completed_at"])
