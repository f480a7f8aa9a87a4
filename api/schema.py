"""OpenAPI pieces every endpoint shares: the API-key authentication and the query filters' constraints (both
registered with drf-spectacular when this module is imported, which api.urls and every API views module do), the
schema class that states what request bodies take, and the common error responses and examples.

The schema states the limits the API enforces, so a client (or schemathesis) that keeps to it is never refused
for its form: text is never NUL (Django and DRF refuse it), a required text is not blank, lengths and patterns
are those the fields validate with, and a request body has no keys but its fields.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from api import examples as ex
from api.permissions import required_scope
from api.query import NonBlankCharField
from api.serializers import NO_NUL, NOT_BLANK, ErrorSerializer, StrictSerializer, TextRule, blank_or

# The errors any endpoint can answer, and examples of the ones not tied to an endpoint's own input.
ERRORS: dict[int, Any] = {
    400: OpenApiResponse(ErrorSerializer, description="Unknown or malformed parameters or fields."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(ErrorSerializer, description="The API key lacks this endpoint's scope (insufficient_scope)."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests for this key; see Retry-After."),
}
COMMON_EXAMPLES = [ex.UNAUTHORIZED, ex.INSUFFICIENT_SCOPE, ex.THROTTLED]
# And those of an endpoint that takes a body.
BODY_ERRORS: dict[int, Any] = {
    413: OpenApiResponse(ErrorSerializer, description="The body is over the size limit (body_too_large)."),
    415: OpenApiResponse(ErrorSerializer, description="The body is not `application/json`."),
}
BODY_EXAMPLES = [ex.TOO_LARGE, ex.UNSUPPORTED_MEDIA_TYPE]


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's, stating what request bodies take: no unknown keys in a StrictSerializer, and the text
    rules of DRF's CharField (no NUL; not blank unless allow_blank) where no validator gives a pattern."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        # After the operation is built: extend_schema(description=...) replaces get_description itself.
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        scope = required_scope(self.view, self.method)
        if operation is not None and scope is not None:
            text = operation.get("description", "")
            operation["description"] = f"{text}\n\nNeeds the API key scope `{scope}`.".strip()
        return operation

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction != "request":
            return schema
        if isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        for name, field in serializer.fields.items():
            if type(field) is serializers.CharField and name in schema["properties"]:
                # DRF takes blank (or white-space) text as "" without validating it, where allow_blank. (Set here,
                # after drf-spectacular's validators, so that a pattern taking blank text needs no blank oneOf.)
                rule = _pattern(field.validators) or (NO_NUL if field.allow_blank else NOT_BLANK)
                schema["properties"][name]["pattern"] = blank_or(rule) if field.allow_blank and rule != NO_NUL else rule
        return schema


def _pattern(validators: list[Any]) -> str | None:
    """The pattern of a field's TextRule or RegexValidator, if it has one."""
    for validator in validators:
        if isinstance(validator, TextRule):
            return validator.pattern
        if isinstance(validator, RegexValidator) and not validator.inverse_match:
            regex = validator.regex  # compiled on first use; the stubs allow the source text too
            return str(getattr(regex, "pattern", regex))
    return None


class FilterSchemaExtension(DjangoFilterExtension):
    """drf-spectacular's django-filter parameters, with what their form fields validate: a text's length and
    pattern (a RegexValidator's; else no NUL, and not blank where required or a lookup's). An optional text may be
    empty (or white space): that is the same as leaving it out; a lookup's (api.query.NonBlankCharFilter) may not.
    A typed parameter (date, time, choice) may not be empty (api.query.parse_query), as its format says."""

    priority = 1

    def resolve_filter_field(
        self, auto_schema: Any, model: Any, filterset_class: Any, field_name: str, filter_field: Any
    ) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        field = filter_field.field
        if type(field) not in (forms.CharField, NonBlankCharField):
            return parameters
        for parameter in parameters:
            schema = parameter["schema"]
            if field.max_length is not None:
                schema["maxLength"] = field.max_length
            rule = _pattern(field.validators)
            if field.required or isinstance(field, NonBlankCharField):
                schema["minLength"] = 1
                schema["pattern"] = rule or NOT_BLANK
            else:
                schema["pattern"] = blank_or(rule) if rule else NO_NUL
        return parameters


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = ["ApiKeyAuth", "ApiKeyHeader"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Api-Key <key>`, the key printed by `manage.py create_api_key`.",
            },
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The key alone."},
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # Either header will do (OpenAPI: separate requirement objects are alternatives).
        return [{"ApiKeyAuth": []}, {"ApiKeyHeader": []}]


def body_from_query(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: an operation marked `x-body-from-query: <operationId>` takes that
    operation's query parameters as the fields of its JSON body (same names and rules; integers stay integers),
    so a body search documents exactly the list's filters without declaring them twice."""
    paths = result.get("paths", {}).values()
    operations = {op["operationId"]: op for item in paths for op in item.values() if "operationId" in op}
    for operation in operations.values():
        source_id = operation.pop("x-body-from-query", None)
        if source_id is None:
            continue
        parameters = [p for p in operations[source_id].get("parameters", []) if p["in"] == "query"]
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {p["name"]: {**p["schema"], "description": p.get("description", "")} for p in parameters},
        }
        for media in operation["requestBody"]["content"].values():
            media["schema"] = schema
    return result
