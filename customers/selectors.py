"""Reads of customers, always within what an API key reaches."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DateField, DateTimeField, Expression, Func, Subquery
from django.db.models.sql.compiler import SQLCompiler

from customers import list_sql
from customers.filters import CustomerFilters
from customers.models import PEAK_COLUMNS, Customer, CustomerQuerySet, peak_customer
from stores.models import ApiKey, Store
from stores.selectors import api_key_store_ids, store_get_for_key


class PeakTimestamp(Func):
    """A timestamp column as the canonical representation writes it (see customers.models.iso_timestamp): on
    PostgreSQL, formatted by the database as ISO 8601 in UTC to the second (to_char truncates) with a "Z";
    elsewhere the datetime, which peak_customer formats. Reading the text skips the timestamptz loader Django
    installs in psycopg (Python, ~4 µs a value) and the formatting in Python."""

    output_field = DateTimeField()
    template = "%(expressions)s"
    _POSTGRESQL = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[str | int, ...]]:
        return self.as_sql(compiler, connection, template=self._POSTGRESQL, **extra_context)


class PeakDate(Func):
    """A date column as the canonical representation writes it (YYYY-MM-DD): formatted by PostgreSQL there (no
    date object to build and format again per value); elsewhere the date, which peak_customer formats."""

    output_field = DateField()
    template = "%(expressions)s"

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[str | int, ...]]:
        return self.as_sql(compiler, connection, template="to_char(%(expressions)s, 'YYYY-MM-DD')", **extra_context)


# What a list selects, in the order of customers.models.PEAK_KEYS: the columns peak_customer reads, then the
# store's catalog_id and pos_vendor (joined; the store's POS credentials are never read). Plain rows, not model
# instances: a page of model instances, each with its Store, cost more than all the rest of the request.
_TIMESTAMPS = frozenset({"pos_created_at", "pos_updated_at", "synced_at"})
_DATES = frozenset({"birthday", "drivers_license_expiration", "medical_card_expiration"})
PEAK_SELECT: tuple[str | Expression, ...] = (
    *(
        PeakTimestamp(name) if name in _TIMESTAMPS else PeakDate(name) if name in _DATES else name
        for name in PEAK_COLUMNS
    ),
    "store__catalog_id",
    "store__pos_vendor",
)


def _list_shape() -> CustomerQuerySet:
    # Rows of PEAK_SELECT (turned into answers by _peak): the vendor JSON and our bookkeeping times are never read.
    # Each list starts from a copy of one unevaluated queryset: setting up its thirty columns cost more than
    # running an indexed lookup.
    return _peak_rows().all()


@functools.cache
def _peak_rows() -> CustomerQuerySet:
    return Customer.objects.values_list(*PEAK_SELECT)  # type: ignore[return-value]


def _peak(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of a list (PEAK_SELECT) in the canonical representation."""
    return [peak_customer(row) for row in rows]


def store_customers(*, store: Store) -> CustomerQuerySet:
    """One store's customers, in list shape (rows for peak_customer)."""
    return _list_shape().filter(store=store)


def customer_scope(*, api_key: ApiKey, store: Store | None = None) -> CustomerQuerySet:
    """Every customer the key reaches (of one store, when given: the caller has checked the key reaches it)."""
    if store is not None:
        return store_customers(store=store)
    qs = _list_shape()
    store_ids = api_key_store_ids(api_key=api_key)
    return qs if store_ids is None else qs.filter(store_id__in=sorted(store_ids))


def customer_filter(*, queryset: CustomerQuerySet, filters: CustomerFilters) -> CustomerQuerySet:
    """Apply the filters given, in their order (customers.filters; each served by an index, see
    Customer.Meta.indexes)."""
    qs = queryset
    for _, spec, value in filters.given():
        if spec.apply is not None:
            qs = spec.apply(qs, value)
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
        # The store's id as a scalar subquery, not a join: PostgreSQL then reads the customers through the
        # (store_id, ..., id) indexes in id order, a page at a time, instead of fetching every match to sort it.
        store_id = Store.objects.filter(catalog_id=filters.catalog_id).order_by().values("id")[:1]
        qs = qs.filter(store_id=Subquery(store_id))
    return customer_filter(queryset=qs, filters=filters)


def customer_get(*, api_key: ApiKey, pk: int) -> dict[str, Any]:
    """One customer by our id, in the canonical representation, if the key reaches its store;
    Customer.DoesNotExist otherwise."""
    return _peak([customer_scope(api_key=api_key).get(pk=pk)])[0]  # type: ignore[list-item]


def live_lookup_store(*, api_key: ApiKey, filters: CustomerFilters) -> Store | None:
    """The one store a live POS lookup would ask: the catalog_id given, or the key's only store."""
    if filters.catalog_id:
        return store_get_for_key(api_key=api_key, catalog_id=filters.catalog_id)
    store_ids = api_key_store_ids(api_key=api_key)
    if store_ids is not None and len(store_ids) == 1:
        return Store.objects.filter(id__in=store_ids).first()
    return None


def customer_page(
    *, api_key: ApiKey, filters: CustomerFilters, after: int | None, size: int
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of the key's customers matching `filters` (customer_list with check_store=False), in id order
    (keyset: `id > after`), in the canonical representation, and the id the next page starts after, or None.
    On PostgreSQL its SQL may come from the one kept for its shape (customers.list_sql)."""

    def page() -> CustomerQuerySet:
        queryset = customer_list(api_key=api_key, filters=filters, check_store=False)
        if after is not None:
            queryset = queryset.filter(id__gt=after)
        return queryset[: size + 1]

    customers = _peak(list_sql.page_rows(api_key=api_key, filters=filters, after=after, size=size, build=page))
    if len(customers) > size:
        customers = customers[:size]
        return customers, customers[-1]["id"]
    return customers, None


def customer_peak_list(*, queryset: CustomerQuerySet, limit: int) -> list[dict[str, Any]]:
    """The first `limit` customers of a list, in the canonical representation."""
    return _peak(queryset[:limit])  # type: ignore[arg-type]
