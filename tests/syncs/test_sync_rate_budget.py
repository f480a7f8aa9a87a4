"""A sync through the engine with the rate limiter on (the settings' store: the database's own connection, or
Redis on the Redis pass) keeps within the sandbox's enforced limit: no 429, every customer written."""

from __future__ import annotations

import logging
import time

import pytest
from django.db import connection

from customers.models import Customer
from pos_integrations.ratelimit import RateLimit
from syncs.models import SyncKind, SyncStatus
from syncs.services import sync_create

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, databases=["default", "pos_ratelimit"])]


def test_a_sync_within_a_tight_limit_gets_no_429_and_writes_everything(sandbox_store, settings, caplog):
    settings.POS_RATE_LIMIT_ENABLED = True
    settings.POS_RATE_LIMITS = {"treez": RateLimit(5, 1.0)}
    if connection.vendor == "sqlite":
        # The test database is SQLite in memory with a shared cache, where a second connection (the threads
        # fetching pages ahead each take the limiter's) meets table locks at once (SQLITE_LOCKED) rather than
        # waiting as connections to a file do: one page at a time here; PostgreSQL and Redis run 4 in flight.
        settings.SYNC_PAGES_IN_FLIGHT = 1
    _server, store = sandbox_store("treez", customers=300, seed=5, faults="treez:ratelimit=5/1s")
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="pos_integrations"):
        sync = sync_create(store=store, kind=SyncKind.FULL, trigger="manual")[0].do_process()
    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    assert sync.fetched == 300
    assert Customer.objects.filter(store=store).count() == 300
    answers = [r for r in caplog.records if r.name == "pos_integrations.http" and hasattr(r, "http_status")]
    assert len(answers) >= 7  # the token and six pages of 50, each answered...
    assert [r.http_status for r in answers if r.http_status == 429] == []  # ...none refused
    assert "rate limiter unavailable" not in caplog.text
    assert time.monotonic() - started > 1.0  # seven requests at four a second: the limiter spaced them
