"""Query parameters of the customer endpoints, as django-filter FilterSets: what parse_query validates and what
the OpenAPI schema documents."""

from __future__ import annotations

from typing import Any

import django_filters

from customers.filters import FILTERS, CustomerFilters
from customers.models import Customer, CustomerQuerySet
from customers.selectors import customer_filter


class _CustomerFilterSet(django_filters.FilterSet):
    class Meta:
        model = Customer
        fields: list[str] = []

    def filter_queryset(self, queryset: Any) -> CustomerQuerySet:
        return customer_filter(queryset=queryset, filters=CustomerFilters.from_mapping(self.form.cleaned_data))


# GET /api/v1/customers filters: the query parameter of each filter in customers.filters that has one.
CustomerFilter: type[django_filters.FilterSet] = type(
    "CustomerFilter",
    (_CustomerFilterSet,),
    {
        "__module__": __name__,
        "__doc__": "GET /api/v1/customers filters; each maps to a CustomerQuerySet method served by an index.",
        **{name: spec.query for name, spec in FILTERS.items() if spec.query is not None},
    },
)


class LegacySearchFilter(django_filters.FilterSet):
    """GET /customers/search filters."""

    customer_id = django_filters.CharFilter(max_length=64, required=True, help_text="The POS's customer id.")
    catalog_id = django_filters.CharFilter(max_length=100, help_text="Only this store.")

    class Meta:
        model = Customer
        fields: list[str] = []
