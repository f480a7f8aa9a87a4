"""Query parameters of the customer lists, parsed and validated with django-filter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

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
