"""Against the sandbox enforcing a tight rate limit (`ratelimit=5/1s`), clients whose limiter is configured to
match see no 429 — several clients of one credential at once, as a sync's pages in flight are — and a live
lookup made while a sync has used up its share is answered at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests
from django.db import connection, connections

from pos_integrations import PosClient, get_client
from pos_integrations.ratelimit import BucketStore, MemoryBucketStore, RateLimit, RateLimits
from pos_sandbox import SANDBOX_CREDENTIALS, SandboxServer

N = 200  # four Treez pages of 50, and the token
SEED = 7
LIMIT = RateLimit(5, 1.0)

# The shared store's variant reads the database (the limiter's own connection) or Redis (on the Redis pass).
pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, databases=["default", "pos_ratelimit"])]


@pytest.fixture(params=["memory", "shared"])
def store(request: pytest.FixtureRequest) -> Iterator[BucketStore]:
    """This process's memory, or the store every process shares (the database, Redis on the Redis pass)."""
    if request.param == "memory":
        yield MemoryBucketStore()
        return
    from django.conf import settings

    if not settings.REDIS_URL and connection.vendor == "sqlite":
        pytest.skip("SQLite's in-memory test database cannot be shared by threads (tests/stores covers a file)")
    from stores.ratelimit import bucket_store

    yield bucket_store()
    connections.close_all()


class Statuses(list[int]):
    """Every status the POS answered a client."""

    def hook(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.append(response.status_code)


def client(sb: SandboxServer, store: BucketStore, statuses: Statuses) -> PosClient:
    built = get_client(
        "treez",
        base_url=sb.vendor_url("treez"),
        credentials=SANDBOX_CREDENTIALS["treez"],
        rate_limits=RateLimits(store=store, overrides={"treez": LIMIT}),
    )
    built.http.session.hooks["response"].append(statuses.hook)
    return built


def listing(pos: PosClient, into: list[str], times: int = 1) -> None:
    """List every customer `times` times, in a thread of its own (which closes its database connections)."""
    try:
        for _ in range(times):
            for page in pos.iter_customers():
                into += [record.customer_id for record in page.records]
    finally:
        connections.close_all()


def test_clients_sharing_a_credential_get_no_429_from_a_tight_limit(sb: SandboxServer, store: BucketStore) -> None:
    sb.set_faults(f"treez:ratelimit={LIMIT.requests}/1s")
    statuses = Statuses()
    found: list[list[str]] = [[], []]
    threads = [threading.Thread(target=listing, args=(client(sb, store, statuses), ids)) for ids in found]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [len(set(ids)) for ids in found] == [N, N]
    assert 429 not in statuses
    # Ten requests or more at four a second (one of five kept for lookups): the limiter did the waiting.
    assert len(statuses) >= 10
    assert time.monotonic() - started > 1.5


def test_a_live_lookup_is_not_queued_behind_a_saturated_sync(sb: SandboxServer, store: BucketStore) -> None:
    sb.set_faults(f"treez:ratelimit={LIMIT.requests}/1s")
    statuses = Statuses()
    some = [sb.vendor_id("treez", p) for p in list(sb.dataset.iter_people("treez"))[:3]]
    synced: list[str] = []
    sync = threading.Thread(target=listing, args=(client(sb, store, statuses), synced, 2))
    lookups = client(sb, store, statuses)
    lookups.get_customer(some[0])  # its token, before the sync starts
    sync.start()
    took = []
    time.sleep(0.5)  # the sync has used its share of the window
    for customer_id in some:
        started = time.monotonic()
        record = lookups.get_customer(customer_id)
        took.append(time.monotonic() - started)
        assert record is not None
        assert record.customer_id == customer_id
        time.sleep(1.3)  # a window later (each window keeps one request for lookups)
    sync.join(timeout=60)
    assert len(set(synced)) == N
    assert 429 not in statuses
    assert max(took) < 0.5, took
