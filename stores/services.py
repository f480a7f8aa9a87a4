"""Writes for stores and API keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from stores.models import ApiKey, ApiScope, Store, all_api_scopes, hash_api_key

KEY_PREFIX_LENGTH = 8


def api_key_create(
    *, name: str, stores: Iterable[Store] | None = None, scopes: Iterable[str] | None = None
) -> tuple[ApiKey, str]:
    """Create a key for `stores` (None: every store) with `scopes` (ApiScope values; None: every scope) and return
    it with its secret, which is not stored."""
    scope_list = all_api_scopes() if scopes is None else [s for s in ApiScope.values if s in set(scopes)]
    unknown = sorted(set(scopes or ()) - set(ApiScope.values))
    if unknown:
        raise ValueError(f"Unknown scope(s): {', '.join(unknown)}")
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    raw_key = f"cf_{prefix}_{secrets.token_urlsafe(32)}"
    store_list = list(stores) if stores is not None else None
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            hashed_key=hash_api_key(raw_key),
            all_stores=store_list is None,
            scopes=scope_list,
        )
        if store_list:
            key.stores.set(store_list)
    return key, raw_key


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke a key; requests with it are refused from now on."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def store_set_credentials(*, store: Store, credentials: dict[str, str]) -> Store:
    """Replace a store's POS credentials after validating them for its vendor."""
    store.pos_credentials = credentials
    store.full_clean()
    store.save(update_fields=["pos_credentials", "updated_at"])
    return store


# A key's last use is recorded at most this often, so busy clients don't cost a write per request.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def api_key_record_use(*, key: ApiKey) -> None:
    """Record that a key was just used, unless that was already recorded within the last minute."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < API_KEY_TOUCH_INTERVAL:
        return
    # Conditional, so concurrent requests with the same key write once.
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - API_KEY_TOUCH_INTERVAL)
    ).update(last_used_at=now)
    key.last_used_at = now
