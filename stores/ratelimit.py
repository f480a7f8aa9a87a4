"""Where POS rate budgets are kept (pos_integrations.ratelimit): on Redis when REDIS_URL is set, else in the
database, on a connection of its own (the `pos_ratelimit` alias: the same database as `default`).

Its own connection, because on PostgreSQL the customer writer leaves a page's COMMIT in flight on the default
connection while the sync fetches the next page, and a limiter query there would wait for (or interleave with)
that pipeline; and each budget update is one tiny transaction of its own, whatever transaction the caller is in.
On SQLite that transaction takes the write lock at once (BEGIN IMMEDIATE) and gives up after the alias's short
busy timeout; the limiter asks again a few times within the call's deadline, then lets the request go unlimited
(logged) rather than waiting behind a long write.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, OperationalError, connections, transaction

from pos_integrations.ratelimit import BucketStore, BucketStoreError, RateLimits, RedisBucketStore, State

from .models import PosRateBucket

ALIAS = "pos_ratelimit"
T = TypeVar("T")


class DatabaseBucketStore:
    """Budgets as rows of PosRateBucket (its JSON state as text): the row locked (SELECT ... FOR UPDATE; SQLite:
    the IMMEDIATE transaction), changed and written back in one transaction on the `pos_ratelimit` connection."""

    def __init__(self, alias: str = ALIAS, *, lock_timeout: float = 2.0) -> None:
        self.alias = alias
        # Threads of one process take turns here, in order, rather than in SQLite's busy handler, which sleeps
        # and retries and can starve one thread past its timeout while the others keep the lock busy.
        self._lock = threading.Lock()
        self.lock_timeout = lock_timeout

    def thread_done(self) -> None:
        # Django keeps a connection per thread; one a thread that ends leaves open stays open until collected.
        connections[self.alias].close()

    def update(self, key: str, change: Callable[[State | None], tuple[State, T]], *, ttl: float) -> T:
        if not self._lock.acquire(timeout=self.lock_timeout):
            raise BucketStoreError(f"database: no turn within {self.lock_timeout:g} s", busy=True)
        try:
            return self._update(key, change)
        finally:
            self._lock.release()

    def _update(self, key: str, change: Callable[[State | None], tuple[State, T]]) -> T:
        # Plain SQL (the ORM's query building cost more than the queries): lock the row (SELECT ... FOR UPDATE;
        # on SQLite the IMMEDIATE transaction holds the lock already), create it the first time, write it back.
        connection = connections[self.alias]
        table = connection.ops.quote_name(PosRateBucket._meta.db_table)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        as_json = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
        # Only quoted names are formatted in; every value is a parameter.
        select = f"SELECT state FROM {table} WHERE {connection.ops.quote_name('key')} = %s{lock}"  # noqa: S608
        try:
            with transaction.atomic(using=self.alias), connection.cursor() as cursor:
                cursor.execute(select, [key])
                row = cursor.fetchone()
                if row is None:
                    cursor.execute(
                        f"INSERT INTO {table} ({connection.ops.quote_name('key')}, state) VALUES (%s, {as_json}) "  # noqa: S608
                        "ON CONFLICT DO NOTHING",
                        [key, "{}"],
                    )
                    cursor.execute(select, [key])
                    row = cursor.fetchone()
                stored = row[0]
                state, result = change((json.loads(stored) if isinstance(stored, str) else stored) or None)
                cursor.execute(
                    f"UPDATE {table} SET state = {as_json} WHERE {connection.ops.quote_name('key')} = %s",  # noqa: S608
                    [json.dumps(state, separators=(",", ":")), key],
                )
        except OperationalError as exc:
            # SQLite's "database is locked": its busy timeout ran out while other processes held the write lock.
            raise BucketStoreError(f"database: {type(exc).__name__}", busy="locked" in str(exc)) from exc
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
