"""Request and response examples every endpoint's OpenAPI schema uses, and the helpers that build examples (the
README shows the same ones)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample


def error(code: str, message: str, **more: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **more}}


def ex(name: str, value: Any, *, request: bool = False, status: int | None = None, summary: str = "") -> OpenApiExample:
    return OpenApiExample(
        name,
        value=value,
        summary=summary or name,
        request_only=request,
        response_only=not request,
        status_codes=[str(status)] if status else None,
    )


UNAUTHORIZED = ex(
    "Missing or wrong key",
    error("not_authenticated", "An API key is required: send 'Authorization: Api-Key <key>'."),
    status=401,
)
INSUFFICIENT_SCOPE = ex(
    "The key lacks the scope",
    error("insufficient_scope", "This API key lacks the 'customers:write' scope."),
    status=403,
)
THROTTLED = ex(
    "Too many requests",
    error("rate_limited", "Too many requests for this API key.", retry_after=12),
    status=429,
)
BAD_PARAMS = ex(
    "Unknown or malformed parameter",
    error(
        "invalid_parameters",
        "Invalid query parameters: birthday, colour.",
        fields={"birthday": ["Enter a valid date."], "colour": ["Unknown parameter."]},
    ),
    status=400,
)
TOO_LARGE = ex(
    "Body too large",
    error("body_too_large", "The body is larger than this API takes (1048576 bytes)."),
    status=413,
)
UNSUPPORTED_MEDIA_TYPE = ex(
    "Not JSON",
    error("unsupported_media_type", 'Unsupported media type "text/plain" in request.'),
    status=415,
)
STORE_NOT_FOUND = ex(
    "Store unknown or outside the key's reach",
    error("store_not_found", "No store 'greenleaf-berkeley' for this API key."),
    status=404,
)
