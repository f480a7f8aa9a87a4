"""Query strings, parsed and validated with a django-filter FilterSet's fields: unknown, repeated and malformed
parameters are all named in one InvalidParameters (with the page's, see all_parameters).

An empty text parameter is the same as none, but for a lookup's (NonBlankCharFilter: a licence, a phone), which
is malformed empty or blank, as is an empty typed one (a date, a time, a choice); the schema says so
(api.schema.FilterSchemaExtension)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.http import QueryDict

from api.errors import InvalidParameters

T = TypeVar("T")
U = TypeVar("U")
EMPTY_TYPED = "Give a value, or leave the parameter out."
EMPTY_LOOKUP = "Must not be empty: give a value, or leave it out."


class NonBlankCharField(forms.CharField):
    """Optional text that, when given, is not empty or white space."""

    def clean(self, value: Any) -> Any:
        cleaned = super().clean(value)
        if value is not None and cleaned in self.empty_values:
            raise ValidationError(EMPTY_LOOKUP, code="blank")
        return cleaned


class NonBlankCharFilter(django_filters.CharFilter):
    """A lookup by a value (a licence, a phone): given empty or blank it is an error, never "no filter", which
    would answer everything to a client whose value went missing."""

    field_class = NonBlankCharField


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
        raw = field.widget.value_from_datadict(query, {}, name)
        if raw == "" and not isinstance(field, forms.CharField):
            errors.setdefault(name, []).append(EMPTY_TYPED)
            continue
        try:
            if isinstance(field, forms.CharField) and field.max_length is not None and isinstance(raw, str):
                # As the schema's maxLength counts: white space included (the field strips it before it counts).
                MaxLengthValidator(field.max_length)(raw)
            cleaned[name] = field.clean(raw)
        except ValidationError as exc:
            errors.setdefault(name, []).extend(exc.messages)
    if errors:
        raise invalid_parameters(errors)
    return cleaned


def invalid_parameters(errors: dict[str, list[str]]) -> InvalidParameters:
    return InvalidParameters(f"Invalid query parameters: {', '.join(sorted(errors))}.", fields=errors)


def all_parameters(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """Both parsers' results; or one InvalidParameters naming what either found wrong."""
    errors: dict[str, list[str]] = {}
    results: list[Any] = []
    for parse in (first, second):
        try:
            results.append(parse())
        except InvalidParameters as exc:
            for name, messages in (exc.fields or {}).items():
                errors.setdefault(name, []).extend(messages)
    if errors:
        raise invalid_parameters(errors)
    return results[0], results[1]


@functools.cache
def _form_fields(filterset_class: type[django_filters.FilterSet]) -> dict[str, forms.Field]:
    # A FilterSet deep-copies its filters and builds its form class on every instantiation; the form's fields
    # are all parsing needs, and they never change.
    form_class = filterset_class(queryset=filterset_class._meta.model.objects.none()).form.__class__
    return dict(form_class.base_fields)


def query_from_body(body: Any, *, numbers: frozenset[str] = frozenset()) -> tuple[QueryDict, dict[str, list[str]]]:
    """A JSON body's fields as a query string, for an endpoint that takes a list's parameters in its body: each
    field's value is the parameter's text, a JSON string (a whole number for the `numbers`); and the errors of
    the fields of another type, left out of the query. InvalidParameters when the body is not an object."""
    if not isinstance(body, dict):
        raise InvalidParameters("The body must be a JSON object of the search's fields.", code="invalid_request")
    query = QueryDict(mutable=True)
    errors: dict[str, list[str]] = {}
    for name, value in body.items():
        if name in numbers:
            if isinstance(value, int) and not isinstance(value, bool):
                query[name] = str(value)
            else:
                errors[name] = ["Give a whole number."]
        elif isinstance(value, str):
            query[name] = value
        else:
            errors[name] = ["Give a string."]
    return query, errors


def body_errors(errors: dict[str, list[str]]) -> InvalidParameters:
    """The errors of a body's fields, named as such."""
    return InvalidParameters(
        f"The request has invalid fields: {', '.join(sorted(errors))}.", code="invalid_request", fields=errors
    )
