"""API-key authentication: `Authorization: Api-Key <key>`, `X-API-Key: <key>`, or `?api_key=` where a view allows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from api.key_cache import api_key_for
from stores.models import ApiKey
from stores.services import api_key_record_use

HEADER_SCHEME = "Api-Key"
QUERY_PARAM = "api_key"


def request_api_key(request: Request) -> ApiKey:
    """The key a request was authenticated with (in views behind HasApiKey, which lets no other through)."""
    return cast(ApiKey, request.auth)


@dataclass(frozen=True, slots=True)
class ApiClient:
    """The `request.user` of a request made with an API key (DRF expects a user-like object)."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self) -> int:
        return self.api_key.pk


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <key>` or `X-API-Key: <key>`; views with `allow_query_api_key` also take `?api_key=`."""

    def authenticate(self, request: Request) -> tuple[ApiClient, ApiKey] | None:
        raw_key = self._raw_key(request)
        if raw_key is None:
            return None
        api_key = api_key_for(raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
        api_key_record_use(key=api_key)
        return ApiClient(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return HEADER_SCHEME

    @staticmethod
    def _raw_key(request: Request) -> str | None:
        """The key the request carries; a request that carries two different ones is refused (which would be
        used, and which ignored, would be a guess)."""
        keys: list[str] = []
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != HEADER_SCHEME.lower() or not value.strip():
                raise exceptions.AuthenticationFailed(
                    f"Use 'Authorization: {HEADER_SCHEME} <key>'.", code="invalid_api_key"
                )
            keys.append(value.strip())
        if "HTTP_X_API_KEY" in request.META:
            keys.append(str(request.META["HTTP_X_API_KEY"]))
        view = request.parser_context.get("view") if request.parser_context else None
        if getattr(view, "allow_query_api_key", False) and QUERY_PARAM in request.query_params:
            keys.append(request.query_params[QUERY_PARAM])
        if len(set(keys)) > 1:
            raise exceptions.AuthenticationFailed(
                "Two different API keys in one request: send one.", code="invalid_api_key"
            )
        return keys[0] if keys else None
