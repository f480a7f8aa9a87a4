"""API keys found, kept in this process for a few seconds (REST_FRAMEWORK["API_KEY_CACHE_SECONDS"], 0: off).

Keys are kept by the hash of their secret, to save a query or two per request. A key revoked, or given other stores,
elsewhere (another worker, the admin in another process) is seen here that many seconds later at most; changes
saved in this process clear the cache at once. Unknown keys are never kept.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.db.models.signals import m2m_changed, post_delete, post_save

from stores.models import ApiKey, hash_api_key
from stores.selectors import MAX_RAW_KEY_LENGTH, api_key_get_by_raw

_key_cache: dict[str, tuple[float, ApiKey]] = {}
_key_cache_lock = threading.Lock()
KEY_CACHE_MAX_ENTRIES = 1000


def _key_cache_seconds() -> float:
    return float(getattr(settings, "REST_FRAMEWORK", {}).get("API_KEY_CACHE_SECONDS", 0) or 0)


def clear_key_cache(**_: Any) -> None:
    with _key_cache_lock:
        _key_cache.clear()


post_save.connect(clear_key_cache, sender=ApiKey, dispatch_uid="api.key_cache.key_saved")
post_delete.connect(clear_key_cache, sender=ApiKey, dispatch_uid="api.key_cache.key_deleted")
m2m_changed.connect(clear_key_cache, sender=ApiKey.stores.through, dispatch_uid="api.key_cache.key_stores")


def api_key_for(raw_key: str) -> ApiKey | None:
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
