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
