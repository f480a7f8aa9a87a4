"""The access-event writer of a process (PII_ACCESS_WRITE_SECONDS above 0): API answers' events gathered and
written by its own thread, many answers in one INSERT; what waits is written at exit. (The rest of the suite
writes each answer's event on its own, PII_ACCESS_WRITE_SECONDS=0; tests/live/test_access_event_writer.py runs
the writer in gunicorn.)"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import AccessChannel, AccessEvent
from customers.pii_access import AccessEventWriter, PendingEvent
from stores.models import ApiScope
from stores.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)  # the writer's thread has a connection of its own
DEADLINE = 30  # seconds for the thread to write, on a busy machine


@pytest.fixture
def writer(settings) -> Iterator[AccessEventWriter]:
    settings.PII_ACCESS_WRITE_SECONDS = 60
    settings.PII_ACCESS_WRITE_EVENTS = 100
    writer = AccessEventWriter()
    yield writer
    writer.close()


@pytest.fixture
def key(store):
    return api_key_create(name="checkout", stores=[store], scopes=[ApiScope.CUSTOMERS_READ, ApiScope.PII])[0]


def event(key, n: int) -> PendingEvent:
    return PendingEvent(
        api_key_id=key.pk,
        request_id=f"req-{n}",
        path="/api/v1/customers",
        at=timezone.now(),
        ids=[n, n + 1],
        fields="drivers_license",
    )


def written_within(count: int, seconds: float) -> list[AccessEvent]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        events = list(AccessEvent.objects.order_by("request_id"))
        if len(events) >= count:
            return events
        time.sleep(0.05)
    return list(AccessEvent.objects.order_by("request_id"))


def test_events_wait_and_are_written_as_one_insert(writer, key):
    for n in range(5):
        writer.add(event(key, n))
    assert not AccessEvent.objects.exists()  # gathered, not yet written
    with CaptureQueriesContext(connection) as queries:
        assert writer.flush() == 5
    inserts = [q for q in queries.captured_queries if q["sql"].startswith(("INSERT", "COPY"))]
    assert len(inserts) == 1
    events = list(AccessEvent.objects.order_by("request_id"))
    assert [e.request_id for e in events] == [f"req-{n}" for n in range(5)]
    assert [e.customer_ids for e in events] == [[n, n + 1] for n in range(5)]
    assert {(e.channel, e.api_key_id, e.user_id, e.fields) for e in events} == {
        (AccessChannel.API, key.pk, None, "drivers_license")
    }


def test_the_thread_writes_them_every_interval(writer, key, settings):
    settings.PII_ACCESS_WRITE_SECONDS = 0.2
    writer.add(event(key, 1))
    writer.add(event(key, 2))
    assert [e.request_id for e in written_within(2, DEADLINE)] == ["req-1", "req-2"]


def test_the_thread_writes_at_once_when_enough_are_waiting(writer, key, settings):
    settings.PII_ACCESS_WRITE_EVENTS = 3
    started = time.monotonic()
    for n in range(3):
        writer.add(event(key, n))
    assert len(written_within(3, DEADLINE)) == 3
    assert time.monotonic() - started < DEADLINE < settings.PII_ACCESS_WRITE_SECONDS


def test_closing_writes_what_waits(writer, key):
    writer.add(event(key, 7))
    writer.close()
    [written] = AccessEvent.objects.all()
    assert written.request_id == "req-7"
    writer.add(event(key, 8))  # a late answer, after close: written on its own rather than lost
    assert AccessEvent.objects.count() == 2


def test_a_failed_write_is_logged_without_values_and_the_next_one_goes_on(writer, key, monkeypatch, caplog):
    def refused(events: list[PendingEvent]) -> None:
        raise DatabaseError("could not extend file: No space left on device")

    writer.add(event(key, 1))
    writer.add(event(key, 2))
    with monkeypatch.context() as patched:
        patched.setattr("customers.pii_access.access_events_write", refused)
        writer.flush()
    [record] = [r for r in caplog.records if r.name == "customers.pii_access"]
    assert record.levelname == "ERROR"
    assert f"API key {key.pk} saw customers [1, 2] (fields ['drivers_license']) in request req-1" in record.getMessage()
    assert "req-2" in record.getMessage()
    writer.add(event(key, 3))
    writer.flush()
    assert [e.request_id for e in AccessEvent.objects.all()] == ["req-3"]


def test_with_zero_seconds_each_event_is_written_when_added(writer, key, settings):
    settings.PII_ACCESS_WRITE_SECONDS = 0
    writer.add(event(key, 4))
    assert [e.request_id for e in AccessEvent.objects.all()] == ["req-4"]
