"""Query parameters of the customer lists, parsed and validated with django-filter."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django_filters.fields import IsoDateTimeField

from customers.api.errors import InvalidParameters
from customers.models import Customer, CustomerQuerySet, phone_digits
from customers.selectors import CustomerFilters, customer_filter


def _has_phone_digits(value: str) -> None:
    if len(phone_digits(value)) < 7:
        raise ValidationError("Enter a phone number (at least 7 digits, any format).")


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, given with any offset (UTC when none), handed on in UTC: the database may not take
    an unusual offset, and a time out of range is the client's error, not ours."""

    def to_python(self, value: Any) -> dt.datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise ValidationError("Enter a date and time between the years 1 and 9999.") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


def _parse_bool(value: str) -> bool:
    return value == "true"


class CustomerFilter(django_filters.FilterSet):
    """GET /api/v1/customers filters; each maps to a CustomerQuerySet method served by an index."""

    catalog_id = django_filters.CharFilter(max_length=100, help_text="Only this store's customers.")
    first_name = django_filters.CharFilter(max_length=150, help_text="Exact first name, ignoring case.")
    last_name = django_filters.CharFilter(max_length=150, help_text="Exact last name, ignoring case.")
    phone = django_filters.CharFilter(
        max_length=40, validators=[_has_phone_digits], help_text="Phone in any format, matched on its digits."
    )
    email = django_filters.CharFilter(max_length=254, help_text="Email address, ignoring case.")
    driver_license = django_filters.CharFilter(
        max_length=64, help_text="Driver's licence number, ignoring case, spaces and dashes."
    )
    birthday = django_filters.DateFilter(help_text="Date of birth, YYYY-MM-DD.")
    modified_after = UtcDateTimeFilter(
        help_text="Changed at the POS after this time (ISO 8601; UTC unless an offset is given)."
    )
    active = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=_parse_bool, help_text="true or false."
    )
    search = django_filters.CharFilter(
        max_length=200, help_text="Free text: an email, a phone number, or the starts of first and last names."
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def filter_queryset(self, queryset: Any) -> CustomerQuerySet:
        return customer_filter(queryset=queryset, filters=CustomerFilters.from_mapping(self.form.cleaned_data))


class LegacySearchFilter(django_filters.FilterSet):
    """GET /customers/search filters."""

    customer_id = django_filters.CharFilter(max_length=64, required=True, help_text="The POS's customer id.")
    catalog_id = django_filters.CharFilter(max_length=100, help_text="Only this store.")

    class Meta:
        model = Customer
        fields: list[str] = []


def parse_query(
    filterset_class: type[django_filters.FilterSet], query: QueryDict, *, also_allowed: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The cleaned values of a query string; InvalidParameters naming each unknown or malformed parameter."""
    errors: dict[str, list[str]] = {}
    # A class is hashable, but mypy doesn't see type[Any] (django-filter is untyped) as Hashable: python/mypy#11470.
    fields = _form_fields(filterset_class)  # type: ignore[arg-type]
    for name in query:
        if name not in fields and name not in also_allowed:
            errors[name] = ["Unknown parameter."]
        elif len(query.getlist(name)) > 1:
            errors[name] = ["Give this parameter once."]
    # What the filterset's form would do (Form._clean_fields), without building a form per request: a form
    # deep-copies every field when it is made. Fields are not changed by cleaning, so they can be shared.
    cleaned: dict[str, Any] = {}
    for name, field in fields.items():
        try:
            cleaned[name] = field.clean(field.widget.value_from_datadict(query, {}, name))
        except ValidationError as exc:
            errors.setdefault(name, []).extend(exc.messages)
    if errors:
        names = ", ".join(sorted(errors))
        raise InvalidParameters(f"Invalid query parameters: {names}.", fields=errors)
    return cleaned


@functools.cache
def _form_fields(filterset_class: type[django_filters.FilterSet]) -> dict[str, forms.Field]:
    # A FilterSet deep-copies its filters and builds its form class on every instantiation; the form's fields
    # are all parsing needs, and they never change.
    form_class = filterset_class(queryset=filterset_class._meta.model.objects.none()).form.__class__
    return dict(form_class.base_fields)
