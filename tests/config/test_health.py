import datetime as dt

import pytest
from django.db import DatabaseError

pytestmark = pytest.mark.django_db


def test_health_reports_database_and_queue(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    queue = body["checks"]["task_queue"]
    assert (queue["ok"], queue["broker"], queue["queued"]) == (True, "orm", 0)
    assert isinstance(queue["clusters"], int)


def test_health_is_503_when_the_database_fails(client, monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr("config.health.connection.cursor", broken)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "DatabaseError"}


def _stalled_sync(seconds_ago: float):
    from django.utils import timezone

    from syncs.models import SyncStatus
    from tests.factories import CustomerSyncFactory

    beat = timezone.now() - dt.timedelta(seconds=seconds_ago)
    return CustomerSyncFactory(status=SyncStatus.IN_PROGRESS, started_at=beat, heartbeat_at=beat)


def test_health_is_degraded_but_200_when_a_sync_is_stalled(client, settings):
    settings.SYNC_STALL_SECONDS = 180
    _stalled_sync(60)  # a sync still making progress: fine
    _stalled_sync(700)
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["1 sync in progress without a heartbeat for over 180 s (the longest 700 s)"]
    assert body["checks"]["syncs"]["stalled"] == 1
    assert 700 <= body["checks"]["syncs"]["stalled_longest_seconds"] < 710


def test_health_is_degraded_when_the_queue_has_a_backlog(client, settings):
    from django.utils import timezone
    from django_q.models import OrmQ

    settings.HEALTH_QUEUE_BACKLOG_SECONDS = 300
    now = timezone.now()
    OrmQ.objects.create(key="customer_sync", payload="x", lock=now - dt.timedelta(seconds=30))
    assert client.get("/health/").json()["status"] == "ok"  # queued 30 s ago: the workers are behind a little
    OrmQ.objects.create(key="customer_sync", payload="x", lock=now - dt.timedelta(seconds=400))
    OrmQ.objects.create(key="customer_sync", payload="x", lock=now + dt.timedelta(seconds=600))  # a worker has it
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    [problem] = body["degraded"]
    assert problem.startswith("backlog: 2 queued, the oldest waiting 40")
    assert problem.endswith("s (over 300 s)")
    assert body["checks"]["task_queue"]["queued"] == 2


def test_a_database_failure_is_still_503_and_says_nothing_of_syncs(client, monkeypatch):
    _stalled_sync(700)

    def broken(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr("config.health.connection.cursor", broken)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert "syncs" not in response.json()["checks"]


def test_health_answers_within_seconds_when_redis_accepts_connections_but_never_answers(client, monkeypatch):
    from django_q.conf import Conf

    from tests.hanging_pos import HangingServer, Stopwatch

    with HangingServer() as hung:
        monkeypatch.setattr(Conf, "ORM", None)  # the Redis broker, at a server that never answers
        monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{hung.port}/0")
        with Stopwatch() as took:
            response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["task_queue"] == {"ok": False, "broker": "redis", "error": "TimeoutError"}
    assert took.seconds < 5  # the check's own 2 s socket timeout, not redis-py's none
