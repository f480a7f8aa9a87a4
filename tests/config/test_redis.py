"""With REDIS_URL set (scripts/test's Redis pass), the broker and both caches live on that Redis server."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture
def redis_url() -> str:
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: runs on scripts/test's Redis pass (scripts/with-redis.sh sets REDIS_URL)")
    return settings.REDIS_URL


def test_health_reports_the_redis_broker(client, redis_url):
    queue = client.get("/health/").json()["checks"]["task_queue"]
    assert (queue["ok"], queue["broker"]) == (True, "redis")


def test_throttle_counts_and_cluster_status_are_kept_on_the_redis_server(redis_url):
    import redis

    server = redis.from_url(redis_url)
    for alias in ("default", "queue"):
        caches[alias].set(f"probe-{alias}", 1, 60)
        # Another process (a fresh connection) finds it: every web process and cluster shares these.
        assert [key for key in server.keys(f"*probe-{alias}") if key.endswith(f"probe-{alias}".encode())]
        caches[alias].delete(f"probe-{alias}")
    server.close()


def test_health_reports_a_backlog_on_the_redis_broker(client, redis_url, settings):
    import datetime as dt

    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage
    from django_q.tasks import async_task

    settings.HEALTH_QUEUE_BACKLOG_SECONDS = 300
    broker = get_broker()
    broker.purge_queue()  # what earlier tests of the pass left for workers that are not running
    try:
        async_task("math.floor", 1.5)  # queued just now: the workers are behind a little
        queue = client.get("/health/").json()["checks"]["task_queue"]
        assert (queue["queued"], "degraded" in queue) == (1, False)
        assert 0 <= queue["oldest_queued_seconds"] < 30
        broker.purge_queue()
        # A task queued 400 s ago (as async_task stamps it), still first in line, and a newer one behind it.
        old = {"id": "b" * 32, "name": "old", "func": "math.floor", "args": (1.5,), "kwargs": {}}
        broker.enqueue(SignedPackage.dumps({**old, "started": timezone.now() - dt.timedelta(seconds=400)}))
        async_task("math.floor", 2.5)
        response = client.get("/health/")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        [problem] = body["degraded"]
        assert problem.startswith("backlog: 2 queued, the oldest waiting 40")
        assert problem.endswith("s (over 300 s)")
        assert 400 <= body["checks"]["task_queue"]["oldest_queued_seconds"] < 430
    finally:
        broker.purge_queue()
