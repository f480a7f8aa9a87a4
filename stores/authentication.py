"""API-key authentication, permission and throttling for the REST API."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from stores.models import ApiKey, hash_api_key
from stores.selectors import MAX_RAW_KEY_LENGTH, api_key_get_by_raw
from stores.services import api_key_record_use

HEADER_SCHEME = "Api-Key"
QUERY_PARAM = "api_key"
# Keys found, by the hash of their secret, kept in this process for REST_FRAMEWORK["API_KEY_CACHE_SECONDS"]
# (0: off) to save a query or two per request. A key revoked, or given other stores, elsewhere (another worker,
# the admin in another process) is seen here that many seconds later at most; changes saved in this process
# clear the cache at once. Unknown keys are never kept.
_key_cache: dict[str, tuple[float, ApiKey]] = {}
_key_cache_lock = threading.Lock()
KEY_CACHE_MAX_ENTRIES = 1000


def _key_cache_seconds() -> float:
    return float(getattr(settings, "REST_FRAMEWORK", {}).get("API_KEY_CACHE_SECONDS", 0) or 0)


def clear_key_cache(**_: Any) -> None:
    with _key_cache_lock:
        _key_cache.clear()


post_save.connect(clear_key_cache, sender=ApiKey, dispatch_uid="stores.authentication.key_saved")
post_delete.connect(clear_key_cache, sender=ApiKey, dispatch_uid="stores.authentication.key_deleted")
m2m_changed.connect(clear_key_cache, sender=ApiKey.stores.through, dispatch_uid="stores.authentication.key_stores")


def _api_key_for(raw_key: str) -> ApiKey | None:
    """api_key_get_by_raw, through the process-local cache when it is on."""
    ttl = _key_cache_seconds()
    if ttl <= 0:
        return api_key_get_by_raw(raw_key=raw_key)
    raw_key = raw_key.strip()
    if not raw_key or len(raw_key) > MAX_RAW_KEY_LENGTH:
        return None
    digest = hash_api_key(raw_key)
    now = time.monotonic()
    hit = _key_cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    api_key = api_key_get_by_raw(raw_key=raw_key)
    if api_key is not None and api_key.revoked_at is None:
        with _key_cache_lock:
            if len(_key_cache) >= KEY_CACHE_MAX_ENTRIES:
                _key_cache.clear()
            _key_cache[digest] = (now + ttl, api_key)
    return api_key


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
        api_key = _api_key_for(raw_key)
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
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != HEADER_SCHEME.lower() or not value.strip():
                raise exceptions.AuthenticationFailed(
                    f"Use 'Authorization: {HEADER_SCHEME} <key>'.", code="invalid_api_key"
                )
            return value.strip()
        if "HTTP_X_API_KEY" in request.META:
            return str(request.META["HTTP_X_API_KEY"])
        view = request.parser_context.get("view") if request.parser_context else None
        if getattr(view, "allow_query_api_key", False) and QUERY_PARAM in request.query_params:
            return request.query_params[QUERY_PARAM]
        return None


class HasApiKey(BasePermission):
    """Only requests authenticated with a live API key get through."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key, at REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"]: N per period is a bucket of N
    requests that refills one request every period / N ("1200/min": 1,200 at once, then one every 50 ms).

    The bucket is one number per key in the cache, the time it will be full again (GCRA). DRF's own throttle keeps
    the time of every request of the last period instead, and reads and writes that whole list on each request:
    1,200 entries at 1200/min, pickled twice in the local-memory cache or sent both ways to Redis."""

    scope = "api_key"
    # Not DRF's key ("throttle_api_key_<id>"): a cache still holding DRF's lists after an upgrade is left alone.
    cache_format = "throttle_%(scope)s_bucket_%(ident)s"
    num_requests: int  # set from the rate by SimpleRateThrottle.__init__
    duration: int
    wait_seconds: float | None = None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        if self.num_requests <= 0:  # "0/min": nothing gets through
            self.wait_seconds = self.duration
            return False
        interval = self.duration / self.num_requests
        full_at = self.cache.get(key)  # when the bucket is full again; none, or past: it is full now
        if not isinstance(full_at, float) or full_at < now:
            full_at = now
        # This request fits if the bucket, with it, would be full again within one period.
        over = full_at + interval - now - self.duration
        if over > 0:
            self.wait_seconds = over
            return False
        self.cache.set(key, full_at + interval, self.duration)
        return True

    def wait(self) -> float | None:
        return self.wait_seconds
