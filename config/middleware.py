"""Django's session, authentication and messages middleware, for everything but the REST API; and the API's
bound on request bodies, checked before anything reads one.

The API authenticates every request with an API key and never reads a session, a logged-in user or a message,
so its requests skip loading them (and writing their cookies back): together ~5 % of the CPU of an indexed
lookup. The admin and every other page get Django's behaviour unchanged. (CSRF and the security headers still
apply everywhere.)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from api.errors import is_api_path, request_error_response

is_api_request = is_api_path
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    """Every request gets an id (`request.request_id`, the `X-Request-ID` answer header): the caller's own when it
    sends a sane one (1 to 64 of letters, digits, `-`, `_`, `.`), else a new one. Access events name it."""

    HEADER = "X-Request-ID"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(self.HEADER, "")
        request.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[self.HEADER] = request.request_id  # type: ignore[attr-defined]
        return response


class ApiBodyLimitMiddleware:
    """A request under the API whose declared body is over DATA_UPLOAD_MAX_MEMORY_SIZE answers 413 in the error
    shape, whatever its path or method, before anything reads the body. (Django itself raises RequestDataTooBig
    only where a view reads the body, and answers it with a 400 page; api.errors answers that one too.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and is_api_path(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0  # as Django reads it: no body
            if length > limit:
                return request_error_response(RequestDataTooBig())
        return self.get_response(request)


class BrowserSessionMiddleware(SessionMiddleware):
    """SessionMiddleware, except for API requests."""

    def process_request(self, request: HttpRequest) -> None:
        if not is_api_request(request):
            super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not hasattr(request, "session"):
            return response
        return super().process_response(request, response)


class BrowserAuthenticationMiddleware(AuthenticationMiddleware):
    """AuthenticationMiddleware, except for API requests (DRF sets their request.user from the API key)."""

    def process_request(self, request: HttpRequest) -> None:
        if not is_api_request(request):
            super().process_request(request)


class BrowserMessageMiddleware(MessageMiddleware):
    """MessageMiddleware, except for API requests (its process_response already skips requests without storage)."""

    def process_request(self, request: HttpRequest) -> None:
        if not is_api_request(request):
            super().process_request(request)
