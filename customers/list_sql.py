"""The SQL of each customer list shape, kept per worker (PostgreSQL; on with settings.CUSTOMER_LIST_SQL_CACHE).

Building and compiling a list page's queryset (thirty columns) costs more than running its query (~0.7 ms of a
~1.5 ms request), and from one request to the next only the parameters change. So the SQL the ORM compiled for a
list's shape (how many stores the key reaches, whether a store is named, which filters, a cursor or not, the page
size) is kept once the ORM has built it, and later lists of that shape run it with their own parameters. A list's
plan (its shape, and its parameters in the order the ORM binds them) is derived from the filter table
(customers.filters); the SQL is kept only when the ORM's parameters are exactly the plan's, so a plan that
disagreed with the ORM would only be slower, never answer wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection

from customers.fields import EncryptedTextField
from customers.filters import CustomerFilters
from customers.models import CustomerQuerySet
from stores.models import ApiKey
from stores.selectors import api_key_store_ids

# {shape: (sql, the encrypted columns: (position, field))}. Bounded (shapes are few: filter combinations and page
# sizes); past the bound, new shapes run through the ORM every time.
_Decrypted = tuple[tuple[int, EncryptedTextField], ...]
_KEPT: dict[tuple[Any, ...], tuple[str, _Decrypted]] = {}
KEPT_MAX = 1000


@dataclass(frozen=True, slots=True)
class ListPlan:
    """A list's shape (what its SQL depends on) and its SQL parameters, in order."""

    shape: tuple[Any, ...]
    params: list[Any]


def is_on() -> bool:
    return bool(settings.CUSTOMER_LIST_SQL_CACHE) and connection.vendor == "postgresql"


def page_rows(
    *,
    api_key: ApiKey,
    filters: CustomerFilters,
    after: int | None,
    size: int,
    build: Callable[[], CustomerQuerySet],
) -> Iterable[Sequence[Any]]:
    """The rows of a list page (`build()`: its queryset, `size` rows after `after`): from the kept SQL of its
    shape when there is one; else from the queryset, whose SQL is then kept for its shape when it can be."""
    plan = list_plan(api_key=api_key, filters=filters, after=after, size=size) if is_on() else None
    if plan is None:
        return build()  # type: ignore[return-value]  # rows of customers.selectors.PEAK_SELECT
    kept = _KEPT.get(plan.shape)
    if kept is not None:
        return _fetch(kept[0], plan.params, kept[1])
    return _run_and_keep(build(), plan)


def list_plan(*, api_key: ApiKey, filters: CustomerFilters, after: int | None, size: int) -> ListPlan | None:
    """The plan of a list whose SQL depends on its shape only (customers.selectors.customer_list with
    check_store=False, then the cursor and the page); None for the others."""
    store_ids = api_key_store_ids(api_key=api_key)
    if store_ids is not None and not store_ids:
        return None  # no store at all: the ORM answers without a query
    # The scope: the key's stores, then the store named (a subquery by catalog_id).
    params: list[Any] = sorted(store_ids) if store_ids is not None else []
    if filters.catalog_id:
        params.append(filters.catalog_id)
    # The filters as customer_filter applies them: each one parameter of the SQL, in order, or written into it.
    names: list[str] = []
    for name, spec, value in filters.given():
        if spec.apply is None:
            continue  # catalog_id: in the scope, above
        if spec.sql == "patterns":
            return None
        if spec.sql == "literal":
            names.append(f"{name}={value!r}")
            continue
        value = spec.normalise(value)
        if value == "" or value == ():
            return None  # nothing to compare (no digits in a phone, say): the ORM answers it, maybe without a query
        if isinstance(value, tuple):  # several parameters (blind indexes under each key): their number is shape
            names.append(f"{name}*{len(value)}")
            params.extend(value)
        else:
            names.append(name)
            params.append(value)
    if after is not None:
        params.append(after)
    stores = len(store_ids) if store_ids is not None else None
    return ListPlan(shape=(stores, bool(filters.catalog_id), tuple(names), after is not None, size), params=params)


def kept_count() -> int:
    """How many list shapes have their SQL kept in this worker."""
    return len(_KEPT)


def clear() -> None:
    """Forget every kept SQL."""
    _KEPT.clear()


def _fetch(sql: str, params: Sequence[Any], decrypted: _Decrypted) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[Any] = cursor.fetchall()
    if decrypted:
        rows = [list(row) for row in rows]
        for row in rows:
            for i, field in decrypted:
                row[i] = field.from_db_value(row[i], None, connection)
    return rows


def _run_and_keep(queryset: CustomerQuerySet, plan: ListPlan) -> Iterable[Sequence[Any]]:
    """The queryset's rows; its SQL is kept for the plan's shape when the ORM's parameters are exactly the plan's
    (each value distinct, so that none can stand for another) and the rows need no conversion but the decryption
    of encrypted columns (done here)."""
    compiler = queryset.query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return []
    decrypted: list[tuple[int, EncryptedTextField]] = []
    for i, (converters, expression) in compiler.get_converters([column for column, _, _ in compiler.select]).items():
        field = getattr(expression, "target", None)
        if not (isinstance(field, EncryptedTextField) and converters == [field.from_db_value]):
            return queryset  # type: ignore[return-value]
        decrypted.append((i, field))
    distinct = len({(type(p), p) for p in plan.params}) == len(plan.params)
    if distinct and list(params) == plan.params and len(_KEPT) < KEPT_MAX:
        _KEPT[plan.shape] = (sql, tuple(decrypted))
    return _fetch(sql, params, tuple(decrypted))
