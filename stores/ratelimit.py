"""Where POS rate budgets are kept (pos_integrations.ratelimit): on Redis when REDIS_URL is set, else in the
database, on a connection of its own (the `pos_ratelimit` alias: the same database as `default`).

Its own connection, because on PostgreSQL the customer writer leaves a page's COMMIT in flight on the default
connection while the sync fetches the next page, and a limiter query there would wait for (or interleave with)
that pipeline; and each budget update is one tiny transaction of its own, whatever transaction the caller is in.
On SQLite that transaction takes the write lock at once (BEGIN IMMEDIATE) and gives up after the alias's short
busy timeout: the request then goes unlimited (logged) rather than waiting behind a long write.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, transaction

from pos_integrations.ratelimit import BucketStore, BucketStoreError, RateLimits, RedisBucketStore, State

from .models import PosRateBucket

ALIAS = "pos_ratelimit"
T = TypeVar("T")


class DatabaseBucketStore:
    """Budgets as rows of PosRateBucket: the row locked (SELECT ... FOR UPDATE; SQLite: the IMMEDIATE
    transaction), changed and written back in one transaction on the `pos_ratelimit` connection."""

    def __init__(self, alias: str = ALIAS) -> None:
        self.alias = alias

    def update(self, key: str, change: Callable[[State | None], tuple[State, T]], *, ttl: float) -> T:
        rows = PosRateBucket.objects.using(self.alias)
        try:
            with transaction.atomic(using=self.alias):
                locked = rows.select_for_update().filter(key=key)
                found = list(locked.values_list("state", flat=True))
                if not found:
                    rows.bulk_create([PosRateBucket(key=key, state={})], ignore_conflicts=True)
                    found = list(locked.values_list("state", flat=True))
                state, result = change(found[0] or None)
                locked.update(state=state)
        except DatabaseError as exc:
            raise BucketStoreError(f"database: {type(exc).__name__}") from exc
        return result


@functools.cache
def _redis_store(url: str) -> RedisBucketStore:
    return RedisBucketStore(url)


@functools.cache
def _database_store() -> DatabaseBucketStore:
    return DatabaseBucketStore()


def bucket_store() -> BucketStore:
    """The store every process of this deployment shares: Redis when REDIS_URL is set, else the database."""
    if settings.REDIS_URL:
        return _redis_store(settings.REDIS_URL)
    return _database_store()


def rate_limits() -> RateLimits | None:
    """The limiter configuration of the settings (None when POS_RATE_LIMIT_ENABLED is off)."""
    if not settings.POS_RATE_LIMIT_ENABLED:
        return None
    return RateLimits(
        store=bucket_store(), overrides=settings.POS_RATE_LIMITS, reserve_share=settings.POS_RATE_LIMIT_RESERVE
    )
