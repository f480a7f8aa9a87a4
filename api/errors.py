"""One error shape for the whole API, and the DRF exception handler that produces it.

    {"error": {"code": "invalid_request", "message": "...", "fields": {"email": ["..."]}, "retry_after": 30}}

`fields` ({"customer.birthday": ["..."]}, nested fields joined with dots) appears on validation errors,
`retry_after` (seconds, also sent as a Retry-After header) where a retry may succeed;
a 409 for a duplicate also carries the existing `customer` next to `error`.

Domain errors (raised by services, selectors and POS clients, which know nothing of HTTP) are answered through
tables of ErrorAnswer: DOMAIN_ERRORS here for the errors of stores and the POS clients, and a view's own
`domain_errors` for its app's (customers.api.errors). Django's refusals of a request itself (a body over
DATA_UPLOAD_MAX_MEMORY_SIZE, too many parameters, a bad Host) are answered through REQUEST_ERRORS, inside a view
(exception_handler) or outside one (Django's handler400: bad_request; config.middleware). Every answer under
API_PATH_PREFIXES, whatever fails, has this shape: Django's handler400, 403, 404 and 500 are ours too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from pos_integrations.errors import (
    PosAuthError,
    PosError,
    PosNotSupported,
    PosRateLimited,
    PosUnavailable,
    PosValidationError,
)
from stores.selectors import StoreNotReachable

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


class InsufficientScope(ApiError):
    """The API key lacks the scope the endpoint needs (api.permissions)."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "insufficient_scope"


class InvalidParameters(ApiError):
    default_code = "invalid_parameters"
    default_detail = "Some query parameters are unknown or malformed."


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """How the API answers a domain error: its status and code, its message (a format string, given the error as
    `exc`), and its retry_after, field errors and keys beside `error` in the body, fixed or read from the error."""

    status: int
    code: str
    message: str
    retry_after: float | Callable[[Any], float | None] | None = None
    fields: Callable[[Any], dict[str, list[str]] | None] | None = None
    body: Callable[[Any], dict[str, Any]] | None = None

    def error(self, exc: Exception) -> ApiError:
        retry_after = self.retry_after(exc) if callable(self.retry_after) else self.retry_after
        return ApiError(
            self.message.format(exc=exc),
            code=self.code,
            fields=self.fields(exc) if self.fields else None,
            retry_after=retry_after,
            extra=self.body(exc) if self.body else None,
            status_code=self.status,
        )


# Domain errors (of services, selectors, POS clients) and their answers. An exception is answered by the entry of
# its most specific class (the first in its MRO) in the view's `domain_errors`, then here.
DomainErrors = Mapping[type[Exception], ErrorAnswer]


def _pos_field_errors(exc: PosValidationError) -> dict[str, list[str]] | None:
    return {name: [str(m) for m in messages] for name, messages in exc.field_errors.items()} or None


DOMAIN_ERRORS: DomainErrors = {
    StoreNotReachable: ErrorAnswer(
        status.HTTP_404_NOT_FOUND, "store_not_found", "No store {exc.catalog_id!r} for this API key."
    ),
    PosNotSupported: ErrorAnswer(status.HTTP_405_METHOD_NOT_ALLOWED, "pos_not_supported", "{exc.message}"),
    PosValidationError: ErrorAnswer(
        status.HTTP_400_BAD_REQUEST,
        "pos_rejected",
        "The store's POS rejected the customer: {exc.message}",
        fields=_pos_field_errors,
    ),
    PosRateLimited: ErrorAnswer(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "pos_rate_limited",
        "The store's POS is rate-limiting us; retry later.",
        retry_after=lambda exc: exc.retry_after or 30,
    ),
    PosUnavailable: ErrorAnswer(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "pos_unavailable",
        "The store's POS is unavailable; retry later.",
        retry_after=30,
    ),
    PosAuthError: ErrorAnswer(
        status.HTTP_502_BAD_GATEWAY,
        "pos_auth_failed",
        "The store's POS refused our credentials; staff have to fix the store's connection.",
        retry_after=300,
    ),
    PosError: ErrorAnswer(
        status.HTTP_502_BAD_GATEWAY, "pos_error", "The store's POS failed: {exc.message}", retry_after=30
    ),
}


# Django's refusals of the request itself, wherever they are raised.
REQUEST_ERRORS: DomainErrors = {
    RequestDataTooBig: ErrorAnswer(
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        "body_too_large",
        "The body is larger than this API takes ({limit} bytes).",
    ),
    TooManyFieldsSent: ErrorAnswer(
        status.HTTP_400_BAD_REQUEST, "invalid_parameters", "Too many query parameters (at most {fields})."
    ),
    TooManyFilesSent: ErrorAnswer(status.HTTP_400_BAD_REQUEST, "malformed_body", "Too many files in the body."),
    DisallowedHost: ErrorAnswer(
        status.HTTP_400_BAD_REQUEST, "bad_request", "This server does not answer for that Host header."
    ),
    SuspiciousOperation: ErrorAnswer(status.HTTP_400_BAD_REQUEST, "bad_request", "The request was refused."),
}


def request_error(exc: Exception) -> ApiError | None:
    """Django's refusal of a request as the API error it is answered with (see REQUEST_ERRORS); None: not one."""
    for cls in type(exc).__mro__:
        answer = REQUEST_ERRORS.get(cls)
        if answer is not None:
            return ApiError(
                answer.message.format(
                    limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE, fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
                ),
                code=answer.code,
                status_code=answer.status,
            )
    return None


def request_error_response(exc: Exception) -> JsonResponse:
    """The answer to Django's refusal of a request, outside DRF (middleware, Django's handler400)."""
    error = request_error(exc) or ApiError("The request was refused.", code="bad_request")
    return JsonResponse(error_body(error.code, error.message), status=error.status_code)


def domain_error(exc: Exception, view_errors: DomainErrors | None = None) -> ApiError | None:
    """A domain error as the API error it is answered with (see DOMAIN_ERRORS); None: not a domain error."""
    for cls in type(exc).__mro__:
        answer = (view_errors or {}).get(cls) or DOMAIN_ERRORS.get(cls)
        if answer is not None:
            return answer.error(exc)
    return None


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
    mapped = domain_error(exc, getattr(context.get("view"), "domain_errors", None))
    if mapped is not None:
        if isinstance(mapped.status_code, int) and mapped.status_code >= 500:
            logger.warning("API answered %s (%s)", mapped.status_code, type(exc).__name__)
        exc = mapped
    elif isinstance(exc, SuspiciousOperation):
        logger.warning("API refused a request (%s)", type(exc).__name__)
        exc = request_error(exc) or exc
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


def is_api_path(request: HttpRequest) -> bool:
    path = request.path_info
    return path.startswith(API_PATH_PREFIXES) or f"{path}/" in API_PATH_PREFIXES


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler404: the error shape for API paths, Django's page elsewhere (the admin)."""
    if is_api_path(request):
        message = "No such endpoint."
        # The API's paths have no trailing slash (the docs' pages do, and redirect to it).
        if request.path_info.endswith("/") and len(request.path_info) > 1:
            try:
                resolve(request.path_info.rstrip("/"))
            except Resolver404:
                pass
            else:
                message = f"No such endpoint; the path has no trailing slash: {request.path.rstrip('/')}"
        return JsonResponse(error_body("not_found", message), status=404)
    return defaults.page_not_found(request, exception or Http404())


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler400 (a request Django refused before or outside a view): the error shape for API paths."""
    if is_api_path(request):
        return request_error_response(exception or SuspiciousOperation())
    return defaults.bad_request(request, exception or SuspiciousOperation())


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler403: the error shape for API paths."""
    if is_api_path(request):
        return JsonResponse(error_body("forbidden", "You may not do that."), status=403)
    return defaults.permission_denied(request, exception or DjangoPermissionDenied())


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: the error shape for API paths; the exception itself goes to the logs and Sentry."""
    if is_api_path(request):
        return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
    return defaults.server_error(request)
