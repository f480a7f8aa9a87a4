"""The customer filters, each declared once: one field of CustomerFilters per filter.

A filter's field says how its query parameter is parsed and validated (a django-filter filter: the list
endpoint's query validation and OpenAPI parameters are built from these, customers.api.filters), how its value is
normalised (the value its QuerySet method compares: the SQL parameter of a kept list, customers.list_sql), which
CustomerQuerySet method applies it, and how that shows in the SQL. customer_filter (customers.selectors) applies
them in this order. Adding a filter is one field here, plus the index that serves it (Customer.Meta.indexes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import django_filters
from django.core.validators import RegexValidator
from django_filters.fields import IsoDateTimeField

from api.query import NonBlankCharFilter
from customers.fields import card_indexes, licence_indexes
from customers.models import CustomerQuerySet, phone_digits, text_key

# At least 7 digits 0-9, whatever else is between them; a pattern that JSON Schema reads alike, so the API's
# schema states it (api.schema).
_has_phone_digits = RegexValidator(
    r"^[^0-9\u0000]*(?:[0-9][^0-9\u0000]*){7,}$", "Enter a phone number (at least 7 digits, any format)."
)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, given with any offset (UTC when none), handed on in UTC: the database may not take
    an unusual offset. A valid time whose UTC falls outside the years 1 to 9999 (year 1 with a positive offset,
    9999 with a negative one) is the earliest or the latest time there is: every change, or none, is after it."""

    def to_python(self, value: Any) -> dt.datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            if parsed.year == 1:
                return dt.datetime.min.replace(tzinfo=dt.UTC)
            return dt.datetime.max.replace(tzinfo=dt.UTC)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


def _parse_bool(value: str) -> bool:
    return value == "true"


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """One customer filter (see the module's docstring)."""

    # The query parameter of GET /api/v1/customers; None: the list does not take it.
    query: django_filters.Filter | None
    # The CustomerQuerySet method that applies the (given) value; None: not a column filter.
    apply: Callable[[CustomerQuerySet, Any], CustomerQuerySet] | None
    # The value as the method compares it (it normalises it the same way itself); a tuple: several values, each a
    # parameter (a blind index under each index key, then the partial index's condition: _held).
    normalise: Callable[[Any], Any]
    # How an applied filter shows in the SQL: one parameter, the normalised value; written into the SQL text (a
    # boolean: its value is part of the list's shape); or as patterns (a list with it is never kept).
    sql: Literal["parameter", "literal", "patterns"]
    # A lookup by an identity (phone, email, licence): the kind the store's POS can be asked live.
    identity: bool


def _held(indexes: tuple[str, ...]) -> tuple[str, ...]:
    """A blind-index lookup's parameters, in the order of its SQL: the value's index under each key, then the ''
    of the condition it repeats from its partial index (customers.models.licence_index_in); () for no value."""
    return (*indexes, "") if indexes else ()


def filter_field(
    query: django_filters.Filter | None,
    *,
    apply: Callable[[CustomerQuerySet, Any], CustomerQuerySet] | None,
    normalise: Callable[[Any], Any] = _same,
    sql: Literal["parameter", "literal", "patterns"] = "parameter",
    identity: bool = False,
) -> Any:
    """A CustomerFilters field: not given (None) by default, its FilterSpec in the field's metadata. (A
    dataclasses.Field, which is why pyproject.toml tells ruff this call is no shared mutable default.)"""
    spec = FilterSpec(query=query, apply=apply, normalise=normalise, sql=sql, identity=identity)
    return field(default=None, metadata={"filter": spec})


@dataclass(frozen=True, slots=True)
class CustomerFilters:
    """What a customer list can be narrowed by; None means "not given"."""

    # The store: it narrows the scope to that store once the key is known to reach it (customers.selectors).
    catalog_id: str | None = filter_field(
        django_filters.CharFilter(max_length=100, help_text="Only this store's customers."), apply=None
    )
    first_name: str | None = filter_field(
        django_filters.CharFilter(max_length=150, help_text="Exact first name, ignoring case."),
        apply=CustomerQuerySet.first_name_equal,
        normalise=text_key,
    )
    last_name: str | None = filter_field(
        django_filters.CharFilter(max_length=150, help_text="Exact last name, ignoring case."),
        apply=CustomerQuerySet.last_name_equal,
        normalise=text_key,
    )
    # The identity lookups (and the card number's): given empty or blank, an error naming it, not every customer.
    phone: str | None = filter_field(
        NonBlankCharFilter(
            max_length=40, validators=[_has_phone_digits], help_text="Phone in any format, matched on its digits."
        ),
        apply=CustomerQuerySet.phone_equal,
        normalise=phone_digits,
        identity=True,
    )
    email: str | None = filter_field(
        NonBlankCharFilter(max_length=254, help_text="Email address, ignoring case."),
        apply=CustomerQuerySet.email_equal,
        normalise=text_key,
        identity=True,
    )
    # Licence and card numbers are encrypted at rest: these compare their blind indexes (customers.crypto).
    driver_license: str | None = filter_field(
        NonBlankCharFilter(max_length=64, help_text="Driver's licence number, ignoring case, spaces and dashes."),
        apply=CustomerQuerySet.licence_equal,
        normalise=lambda value: _held(licence_indexes(value)),
        identity=True,
    )
    medical_card_number: str | None = filter_field(
        NonBlankCharFilter(max_length=64, help_text="Medical card number, ignoring case, spaces and dashes."),
        apply=CustomerQuerySet.card_number_equal,
        normalise=lambda value: _held(card_indexes(value)),
    )
    birthday: dt.date | None = filter_field(
        django_filters.DateFilter(help_text="Date of birth, YYYY-MM-DD."), apply=CustomerQuerySet.birthday_on
    )
    modified_after: dt.datetime | None = filter_field(
        UtcDateTimeFilter(help_text="Changed at the POS after this time (ISO 8601; UTC unless an offset is given)."),
        apply=CustomerQuerySet.modified_after,
    )
    active: bool | None = filter_field(
        django_filters.TypedChoiceFilter(
            choices=[("true", "true"), ("false", "false")],
            coerce=_parse_bool,
            help_text="true or false: active customers, or inactive ones (at the POS, merged away, no longer listed).",
        ),
        apply=CustomerQuerySet.active_equal,
        sql="literal",
    )
    banned: bool | None = filter_field(
        django_filters.TypedChoiceFilter(
            choices=[("true", "true"), ("false", "false")],
            coerce=_parse_bool,
            help_text="true or false: customers the POS bans, or those it does not (where it has no ban flag: none).",
        ),
        apply=CustomerQuerySet.banned_equal,
        sql="literal",
    )
    search: str | None = filter_field(
        django_filters.CharFilter(
            max_length=200, help_text="Free text: an email, a phone number, or the starts of first and last names."
        ),
        apply=CustomerQuerySet.search,
        sql="patterns",
    )
    # The older GET /customers/search asks by it (its own query: customers.api.filters.LegacySearchFilter).
    customer_id: str | None = filter_field(None, apply=CustomerQuerySet.customer_id_equal, normalise=str.strip)

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> CustomerFilters:
        return cls(**{k: v for k, v in values.items() if k in FILTERS and is_given(v)})  # type: ignore[arg-type]

    def given(self) -> list[tuple[str, FilterSpec, Any]]:
        """The filters given, in order, with their specs and values."""
        return [(name, spec, value) for name, spec in FILTERS.items() if is_given(value := getattr(self, name))]

    @property
    def is_identity_lookup(self) -> bool:
        """A lookup by phone, email or licence: the kind the POS can be asked live."""
        return any(spec.identity for _, spec, _ in self.given())


def is_given(value: object) -> bool:
    """A filter's value counts unless it is None or empty text."""
    return value is not None and value != ""


# Every filter, in the order they are applied: {name: spec}.
FILTERS: dict[str, FilterSpec] = {f.name: f.metadata["filter"] for f in fields(CustomerFilters)}
