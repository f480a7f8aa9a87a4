"""OpenAPI description of the API-key authentication (imported by the views so drf-spectacular finds it)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "stores.authentication.ApiKeyAuthentication"
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
