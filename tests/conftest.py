"""Shared fixtures."""

from __future__ import annotations

import hypothesis
import pytest
from django.db import connection

from tests.factories import StoreFactory

# Property tests assert what they find, not how fast: on a busy 2-core machine one example can take 800 ms, and
# hypothesis's default 200 ms deadline then fails a correct test as "flaky".
hypothesis.settings.register_profile("customer-flow", deadline=None)
hypothesis.settings.load_profile("customer-flow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked postgres_only are skipped when the suite runs on SQLite; scripts/test's Redis pass
    (REDIS_PASS=1) runs only the tests marked redis."""
    import os

    from django.conf import settings

    if os.environ.get("REDIS_PASS") == "1":
        selected = [item for item in items if "redis" in item.keywords]
        config.hook.pytest_deselected(items=[item for item in items if "redis" not in item.keywords])
        items[:] = selected

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip = pytest.mark.skip(reason="needs PostgreSQL (run the suite with DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres_only" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture
def store(db):  # type: ignore[no-untyped-def]
    return StoreFactory()


@pytest.fixture
def db_vendor(db) -> str:  # type: ignore[no-untyped-def]
    return connection.vendor


@pytest.fixture
def late_access_event(settings, monkeypatch):  # type: ignore[no-untyped-def]
    """The access-event writer on (PII_ACCESS_WRITE_SECONDS=0.2), and a web process's writer that stores an event
    (request id "late") naming the given customers while an erasure waits for it; call it with their ids, it
    gives the list of the waits' seconds."""
    from customers.models import AccessChannel, AccessEvent

    settings.PII_ACCESS_WRITE_SECONDS = 0.2

    def arrange(*customer_ids: int) -> list[float]:
        waits: list[float] = []

        def writer_meanwhile(seconds: float) -> None:
            waits.append(seconds)
            AccessEvent.objects.create(
                customer_ids=list(customer_ids), channel=AccessChannel.API, fields="birthday", request_id="late"
            )

        monkeypatch.setattr("customers.erasure.time.sleep", writer_meanwhile)
        return waits

    return arrange
