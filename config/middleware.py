"""Django's session, authentication and messages middleware, for everything but the REST API.

The API authenticates every request with an API key and never reads a session, a logged-in user or a message,
so its requests skip loading them (and writing their cookies back): together ~5 % of the CPU of an indexed
lookup. The admin and every other page get Django's behaviour unchanged. (CSRF and the security headers still
apply everywhere.)
"""

from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse

from api.errors import API_PATH_PREFIXES


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PATH_PREFIXES)


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
