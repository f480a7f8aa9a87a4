"""Requests per API key: a bucket that refills at the configured rate."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from stores.models import ApiKey


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
