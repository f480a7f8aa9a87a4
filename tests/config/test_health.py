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
