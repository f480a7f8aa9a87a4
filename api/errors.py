"""One error shape for the whole API, and the DRF exception handler that produces it.

    {"error": {"code": "invalid_request", "message": "...", "fields": {"email": ["..."]}, "retry_after": 30}}

`fields` ({"customer.birthday": ["..."]}, nested fields joined with dots) appears on validation errors,
`retry_after` (seconds, also sent as a Retry-After header) where a retry may succeed;
a 409 for a duplicate also carries the existing `customer` next to `error`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error the API answers with, in the one error shape."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "error"
    default_detail = "The request failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        retry_after: float | None = None,
        extra: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message or self.default_detail, code or self.default_code)
        self.code = code or self.default_code
        self.message = message or str(self.default_detail)
        self.fields = fields
        self.retry_after = retry_after
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code


class InvalidParameters(ApiError):
    default_code = "invalid_parameters"
    default_detail = "Some query parameters are unknown or malformed."


class StoreNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "store_not_found"
    default_detail = "No such store for this API key."


class CustomerNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "customer_not_found"
    default_detail = "No such customer for this API key."


def error_body(
    code: str,
    message: str,
    *,
    fields: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """The one error shape."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"error": error}


# DRF's own exceptions: status -> (our code, message when DRF's is too terse)
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid_request",
    exceptions.ParseError: "malformed_body",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_api_key",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def _flatten(detail: Any) -> Any:
    """DRF error details as plain strings, lists and dicts."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _as_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Validation errors as {"field": [messages]}, nested fields joined with dots ("customer.birthday")."""
    flat = _flatten(detail)
    if not isinstance(flat, dict):
        return {prefix or "non_field_errors": flat if isinstance(flat, list) else [flat]}
    fields: dict[str, list[str]] = {}
    for name, value in flat.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            fields.update(_as_fields(value, key))
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                if item:
                    fields.update(_as_fields(item, f"{key}.{index}"))
        else:
            fields[key] = value if isinstance(value, list) else [value]
    return fields


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error the API raises, in the one error shape; anything unexpected stays a server error."""
    mapped = domain_error(exc)
    if mapped is not None:
        if isinstance(mapped.status_code, int) and mapped.status_code >= 500:
            logger.warning("API answered %s (%s)", mapped.status_code, type(exc).__name__)
        exc = mapped
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    retry_after: float | None = None
    fields: dict[str, Any] | None = None
    extra: dict[str, Any] = {}
    if isinstance(exc, ApiError):
        code, message, fields, retry_after, extra = exc.code, exc.message, exc.fields, exc.retry_after, exc.extra
    elif isinstance(exc, exceptions.ValidationError):
        code, message = "invalid_request", "The request has invalid fields."
        fields = _as_fields(exc.detail)
    else:
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        if isinstance(exc, exceptions.AuthenticationFailed):
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) and codes != "authentication_failed" else code
        message = str(exc.detail) if not isinstance(exc.detail, list | dict) else str(_flatten(exc.detail))
        if isinstance(exc, exceptions.NotAuthenticated):
            message = "An API key is required: send 'Authorization: Api-Key <key>'."
        if isinstance(exc, exceptions.Throttled):
            retry_after = exc.wait  # type: ignore[attr-defined]  # the stubs omit `wait`, set by Throttled.__init__
            message = "Too many requests for this API key."

    if retry_after is not None:
        retry_after = max(1, math.ceil(retry_after))
        headers["Retry-After"] = str(retry_after)
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    elif exc.status_code == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Api-Key"

    set_rollback()
    body = error_body(code, message, fields=fields, retry_after=retry_after)
    body.update(extra)
    return Response(body, status=exc.status_code, headers=headers)


API_PATH_PREFIXES = ("/api/", "/customers/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler404: the error shape for API paths, Django's page elsewhere (the admin)."""
    if request.path.startswith(API_PATH_PREFIXES):
        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    return defaults.page_not_found(request, exception or Http404())


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: the error shape for API paths; the exception itself goes to the logs and Sentry."""
    if request.path.startswith(API_PATH_PREFIXES):
        return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
    return defaults.server_error(request)


def domain_error(exc: Exception) -> ApiError | None:
    """Our services' and the POS clients' typed errors as API errors (None: not one of them)."""
    from customers.models import Customer
    from customers.services import CustomerDuplicate, IdempotencyInProgress, IdempotencyKeyReused
    from pos_integrations.errors import (
        PosAuthError,
        PosError,
        PosNotSupported,
        PosRateLimited,
        PosUnavailable,
        PosValidationError,
    )
    from stores.selectors import StoreNotReachable

    if isinstance(exc, StoreNotReachable):
        return StoreNotFound(f"No store {exc.catalog_id!r} for this API key.")
    if isinstance(exc, Customer.DoesNotExist):
        return CustomerNotFound()
    if isinstance(exc, CustomerDuplicate):
        return ApiError(
            "The store's POS already has this customer.",
            code="duplicate_customer",
            status_code=status.HTTP_409_CONFLICT,
            extra={"customer": exc.customer},
        )
    if isinstance(exc, IdempotencyKeyReused):
        return ApiError(
            "This Idempotency-Key was used with a different request body.",
            code="idempotency_key_reused",
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if isinstance(exc, IdempotencyInProgress):
        return ApiError(
            "A request with this Idempotency-Key is still in progress; retry later.",
            code="idempotency_in_progress",
            status_code=status.HTTP_409_CONFLICT,
            retry_after=2,
        )
    if not isinstance(exc, PosError):
        return None
    if isinstance(exc, PosNotSupported):
        return ApiError(exc.message, code="pos_not_supported", status_code=status.HTTP_405_METHOD_NOT_ALLOWED)
    if isinstance(exc, PosValidationError):
        fields = {name: [str(m) for m in messages] for name, messages in exc.field_errors.items()}
        return ApiError(
            f"The store's POS rejected the customer: {exc.message}",
            code="pos_rejected",
            fields=fields or None,
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, PosRateLimited):
        return ApiError(
            "The store's POS is rate-limiting us; retry later.",
            code="pos_rate_limited",
            retry_after=exc.retry_after or 30,
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, PosUnavailable):
        return ApiError(
            "The store's POS is unavailable; retry later.",
            code="pos_unavailable",
            retry_after=30,
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, PosAuthError):
        return ApiError(
            "The store's POS refused our credentials; staff have to fix the store's connection.",
            code="pos_auth_failed",
            retry_after=300,
            status_code=status.HTTP_502_BAD_GATEWAY,
        )
    return ApiError(
        f"The store's POS failed: {exc.message}",
        code="pos_error",
        retry_after=30,
        status_code=status.HTTP_502_BAD_GATEWAY,
    )
