"""OpenAPI pieces every endpoint shares: the API-key authentication (registered with drf-spectacular when this
module is imported, which api.urls and every API views module do) and the common error responses and examples."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from api import examples as ex
from api.serializers import ErrorSerializer

# The errors any endpoint can answer, and examples of the ones not tied to an endpoint's own input.
ERRORS: dict[int, Any] = {
    400: OpenApiResponse(ErrorSerializer, description="Unknown or malformed parameters or fields."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, wrong or revoked API key."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests for this key; see Retry-After."),
}
COMMON_EXAMPLES = [ex.UNAUTHORIZED, ex.THROTTLED]


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
