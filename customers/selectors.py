"""Reads of customers, always within what an API key reaches."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime

from customers.models import Customer, CustomerQuerySet
from stores.models import ApiKey, Store
from stores.selectors import api_key_store_ids, store_get_for_key

# Lists never need the vendor JSON or our bookkeeping times; leaving them out keeps rows small. The store's POS
# credentials are never shown, and loading them would decrypt them once per row.
LIST_DEFERRED = ("raw", "created_at", "updated_at", "store__pos_credentials")
IDENTITY_FIELDS = ("phone", "email", "driver_license")


@dataclass(frozen=True, slots=True)
class CustomerFilters:
    """What a customer list can be narrowed by; None means "not given"."""

    catalog_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    driver_license: str | None = None
    birthday: date | None = None
    modified_after: datetime | None = None
    active: bool | None = None
    search: str | None = None
    customer_id: str | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> CustomerFilters:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v not in (None, "")})  # type: ignore[arg-type]

    @property
    def is_identity_lookup(self) -> bool:
        """A lookup by phone, email or licence: the kind the POS can be asked live."""
        return any(getattr(self, name) for name in IDENTITY_FIELDS)


def _list_shape() -> CustomerQuerySet:
    return Customer.objects.select_related("store").defer(*LIST_DEFERRED)  # type: ignore[return-value]


def store_customers(*, store: Store) -> CustomerQuerySet:
    """One store's customers, in list shape."""
    return _list_shape().filter(store=store)


def customer_scope(*, api_key: ApiKey, store: Store | None = None) -> CustomerQuerySet:
    """Every customer the key reaches (of one store, when given: the caller has checked the key reaches it)."""
    if store is not None:
        return store_customers(store=store)
    qs = _list_shape()
    store_ids = api_key_store_ids(api_key=api_key)
    return qs.across_stores() if store_ids is None else qs.filter(store_id__in=store_ids)


def customer_filter(*, queryset: CustomerQuerySet, filters: CustomerFilters) -> CustomerQuerySet:
    """Apply the filters (each served by an index; see Customer.Meta.indexes)."""
    qs = queryset
    if filters.first_name:
        qs = qs.first_name_equal(filters.first_name)
    if filters.last_name:
        qs = qs.last_name_equal(filters.last_name)
    if filters.phone:
        qs = qs.phone_equal(filters.phone)
    if filters.email:
        qs = qs.email_equal(filters.email)
    if filters.driver_license:
        qs = qs.licence_equal(filters.driver_license)
    if filters.birthday:
        qs = qs.birthday_on(filters.birthday)
    if filters.modified_after:
        qs = qs.modified_after(filters.modified_after)
    if filters.active is not None:
        qs = qs.filter(active=filters.active)
    if filters.search:
        qs = qs.search(filters.search)
    if filters.customer_id:
        qs = qs.customer_id_equal(filters.customer_id)
    return qs.order_by("id")


def customer_list(*, api_key: ApiKey, filters: CustomerFilters, check_store: bool = True) -> CustomerQuerySet:
    """Customers the key reaches that match `filters`, in a stable order (by id); StoreNotReachable if the
    catalog_id is not one of the key's stores. With check_store=False the store is only filtered on (one query
    fewer): the caller checks it when the answer is empty, the only case where the two can differ."""
    if filters.catalog_id and check_store:
        store = store_get_for_key(api_key=api_key, catalog_id=filters.catalog_id)
        return customer_filter(queryset=customer_scope(api_key=api_key, store=store), filters=filters)
    qs = customer_scope(api_key=api_key)
    if filters.catalog_id:
        qs = qs.filter(store__catalog_id=filters.catalog_id)
    return customer_filter(queryset=qs, filters=filters)


def customer_get(*, api_key: ApiKey, pk: int) -> Customer:
    """One customer by our id, if the key reaches its store; Customer.DoesNotExist otherwise."""
    store_ids = api_key_store_ids(api_key=api_key)
    qs = Customer.objects.select_related("store").defer("store__pos_credentials")
    if store_ids is not None:
        qs = qs.filter(store_id__in=store_ids)
    return qs.get(pk=pk)


def live_lookup_store(*, api_key: ApiKey, filters: CustomerFilters) -> Store | None:
    """The one store a live POS lookup would ask: the catalog_id given, or the key's only store."""
    if filters.catalog_id:
        return store_get_for_key(api_key=api_key, catalog_id=filters.catalog_id)
    store_ids = api_key_store_ids(api_key=api_key)
    if store_ids is not None and len(store_ids) == 1:
        return Store.objects.filter(id__in=store_ids).first()
    return None


def customer_page(*, queryset: CustomerQuerySet, after: int | None, size: int) -> tuple[list[Customer], int | None]:
    """One page of an id-ordered list (keyset: `id > after`), and the id the next page starts after, or None."""
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    rows = list(queryset[: size + 1])
    if len(rows) > size:
        rows = rows[:size]
        return rows, rows[-1].pk
    return rows, None
