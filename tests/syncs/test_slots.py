"""Scheduled runs: one per store per slot, however often the schedule fires or a task is delivered, and a run whose
task was lost caught up once. Through django-q2's own scheduler and broker: the database's (ORM) on the plain
passes, a real Redis server on scripts/test's Redis pass (REDIS_URL set)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.brokers import Broker, get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage

from stores.models import SYNC_CLUSTER, SYNC_TASK
from syncs.models import CustomerSync, ScheduledSlot, SyncStatus
from syncs.slots import slot_start, sync_catch_up_missed
from syncs.tasks import sync_store_customers
from tests.factories import StoreFactory

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

GRACE = timedelta(seconds=settings.SYNC_CATCH_UP_GRACE_SECONDS)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sync cluster's broker as configured (ORM, or Redis with REDIS_URL), empty before and after."""
    # The scheduler closes "old" connections first, as it may in a cluster's own process; inside a test's
    # transaction that would close the test's connection.
    monkeypatch.setattr("django_q.scheduler.close_old_django_connections", lambda: None)
    queue = get_broker(SYNC_CLUSTER)
    queue.purge_queue()
    yield queue
    queue.purge_queue()


def take(broker: Broker) -> list[dict[str, Any]]:
    """Every task queued, taken off the queue as a worker takes one (the test decides whether it then runs)."""
    tasks: list[dict[str, Any]] = []
    while broker.queue_size():
        for ack_id, payload in broker.dequeue() or []:
            tasks.append(SignedPackage.loads(payload))
            if ack_id is not None:
                broker.acknowledge(ack_id)
    return tasks


def run(task: dict[str, Any]) -> Any:
    """What a worker does with a task."""
    return import_string(task["func"])(*task["args"], **task["kwargs"])


def store_tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tasks if t["func"] == SYNC_TASK]


def fire_due(store: Any, broker: Broker, *, ago: timedelta = timedelta(seconds=1)) -> datetime:
    """Make the store's schedule due `ago` and let django-q2's scheduler fire it; the time it was due."""
    due = timezone.now() - ago
    Schedule.objects.filter(name=store.schedule_name).update(next_run=due)
    scheduler(broker=broker)
    return due


INTERVAL = timedelta(minutes=5)


@pytest.fixture
def scheduled(store: Any) -> Any:
    """A store synced every 5 minutes (more than the catch-up's grace: a lost run is caught up before the next)."""
    store.sync_interval_minutes = 5
    store.save()
    store.schedule_customer_sync()
    return store


def test_slots_are_buckets_of_the_interval_counted_from_the_epoch():
    at = datetime(2026, 12, 2, 10, 7, 59, tzinfo=UTC)
    assert slot_start(at=at, interval_minutes=5) == datetime(2026, 12, 2, 10, 5, tzinfo=UTC)
    assert slot_start(at=at, interval_minutes=60) == datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert slot_start(at=at + timedelta(seconds=1), interval_minutes=5) == datetime(2026, 12, 2, 10, 5, tzinfo=UTC)
    assert slot_start(at=at + timedelta(seconds=121), interval_minutes=5) == datetime(2026, 12, 2, 10, 10, tzinfo=UTC)


def test_two_claims_of_one_slot_give_one_run_and_the_second_is_logged(scheduled, fake_pos, caplog):
    due = datetime.now(UTC).replace(second=10, microsecond=0)
    first = sync_store_customers(scheduled.pk, trigger="schedule", scheduled_for=due.isoformat())
    assert first["status"] == SyncStatus.FINISHED
    with caplog.at_level(logging.INFO, logger="syncs.slots"):
        # The same run again (fired twice, or delivered twice), and one due later within the same minute.
        again = sync_store_customers(scheduled.pk, trigger="schedule", scheduled_for=due.isoformat())
        same_slot = sync_store_customers(
            scheduled.pk, trigger="schedule", scheduled_for=(due + timedelta(seconds=30)).isoformat()
        )
    assert again == same_slot == {"store_id": scheduled.pk, "skipped": True, "reason": "slot already claimed"}
    assert "already claimed" in caplog.text
    assert scheduled.catalog_id in caplog.text
    assert CustomerSync.objects.filter(store=scheduled).count() == 1

    # The next interval runs, once; a copy of the first slot's task arriving after it is stale and skipped.
    nxt = sync_store_customers(scheduled.pk, trigger="schedule", scheduled_for=(due + INTERVAL).isoformat())
    assert nxt["status"] == SyncStatus.FINISHED
    late = sync_store_customers(scheduled.pk, trigger="schedule", scheduled_for=due.isoformat())
    assert late["skipped"]
    assert CustomerSync.objects.filter(store=scheduled).count() == 2
    assert list(ScheduledSlot.objects.filter(store=scheduled).values_list("slot_start", flat=True)) == [
        slot_start(at=due + INTERVAL, interval_minutes=5),
        slot_start(at=due, interval_minutes=5),
    ]


def test_manual_and_api_syncs_claim_no_slot(scheduled, fake_pos):
    assert sync_store_customers(scheduled.pk, trigger="manual")["status"] == SyncStatus.FINISHED
    assert not ScheduledSlot.objects.exists()
    # ... so the scheduled run of the interval still runs.
    assert sync_store_customers(scheduled.pk, trigger="schedule")["status"] == SyncStatus.FINISHED


def test_a_schedule_fired_twice_by_a_rolled_back_scheduler_batch_runs_once(scheduled, fake_pos, broker):
    # django-q2 pushes each due schedule's task, then saves its next_run, in one transaction: when a later
    # schedule of the batch raises, next_run rolls back but a task pushed to Redis stays, and the next pass
    # pushes it again. (With the ORM broker the pushed task rolls back too.)
    Schedule.objects.create(name="broken", func="math.floor", args="(", next_run=timezone.now() + timedelta(hours=1))
    due = timezone.now() - timedelta(seconds=2)
    Schedule.objects.filter(name=scheduled.schedule_name).update(next_run=due)
    Schedule.objects.filter(name="broken").update(next_run=due + timedelta(seconds=1))
    scheduler(broker=broker)
    scheduler(broker=broker)
    Schedule.objects.filter(name="broken").delete()
    scheduler(broker=broker)
    tasks = store_tasks(take(broker))
    assert len(tasks) == (3 if settings.REDIS_URL else 1)
    results = [run(task) for task in tasks]
    assert sum(not r.get("skipped") for r in results) == 1
    [sync] = CustomerSync.objects.filter(store=scheduled)
    assert sync.status == SyncStatus.FINISHED
    assert ScheduledSlot.objects.get(store=scheduled).slot_start == slot_start(at=due, interval_minutes=5)


def test_a_run_whose_task_died_with_its_worker_is_caught_up_once(
    scheduled, fake_pos, broker, django_capture_on_commit_callbacks
):
    due = fire_due(scheduled, broker)
    [lost] = store_tasks(take(broker))  # a worker takes it and dies: Redis keeps no receipt, the task is gone
    assert not ScheduledSlot.objects.exists()

    assert sync_catch_up_missed(now=due + GRACE - timedelta(seconds=5)) == []  # still on its way, perhaps
    later = due + GRACE + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):  # queued once its claim is committed
        [caught_up] = sync_catch_up_missed(now=later)
    # Caught up once: the sweeps after it (every minute, on every cluster) leave the store alone.
    assert sync_catch_up_missed(now=later) == []
    assert sync_catch_up_missed(now=later + timedelta(seconds=20)) == []
    [queued] = store_tasks(take(broker))
    assert queued["kwargs"]["sync_id"] == caught_up.pk
    assert run(queued)["status"] == SyncStatus.FINISHED

    # The lost copy turning up after all (the ORM broker redelivers after `retry`): the slot has run.
    assert run(lost)["skipped"]
    [sync] = CustomerSync.objects.filter(store=scheduled)
    assert (sync.pk, sync.status) == (caught_up.pk, SyncStatus.FINISHED)
    [claim] = ScheduledSlot.objects.filter(store=scheduled)
    assert claim.catch_up
    assert claim.slot_start == slot_start(at=due, interval_minutes=5)
    assert claim.sync == sync

    # The next interval's run goes ahead as usual.
    nxt = sync_store_customers(scheduled.pk, trigger="schedule", scheduled_for=(due + INTERVAL).isoformat())
    assert nxt["status"] == SyncStatus.FINISHED
    assert CustomerSync.objects.filter(store=scheduled).count() == 2


def test_workers_down_for_an_hour_give_one_run_not_a_burst(scheduled, fake_pos, broker):
    fire_due(scheduled, broker, ago=timedelta(minutes=61))  # sixty slots passed while nothing ran
    tasks = store_tasks(take(broker))
    assert len(tasks) == 1  # catch_up is off: django-q2 fires a schedule once, however late
    assert run(tasks[0])["status"] == SyncStatus.FINISHED
    # ... and the catch-up sees the store has run since: nothing more.
    assert sync_catch_up_missed(now=timezone.now() + GRACE + timedelta(seconds=1)) == []
    assert CustomerSync.objects.filter(store=scheduled).count() == 1


def test_the_catch_up_leaves_alone_stores_not_scheduled_or_still_due(scheduled, fake_pos, broker):
    due = fire_due(scheduled, broker)
    take(broker)  # lost
    later = due + GRACE + timedelta(seconds=1)
    scheduled.sync_enabled = False
    scheduled.save()
    assert sync_catch_up_missed(now=later) == []
    scheduled.sync_enabled = True
    scheduled.save()
    # A schedule whose next run has come is the scheduler's to fire.
    assert sync_catch_up_missed(now=due + INTERVAL + timedelta(seconds=1)) == []
    assert len(sync_catch_up_missed(now=later)) == 1


def test_a_slot_whose_store_is_still_syncing_is_claimed_by_that_sync(scheduled, fake_pos):
    running = CustomerSync.objects.create(store=scheduled, status=SyncStatus.IN_PROGRESS, heartbeat_at=timezone.now())
    result = sync_store_customers(scheduled.pk, trigger="schedule")
    assert result["skipped"]
    assert ScheduledSlot.objects.get(store=scheduled).sync == running
    assert CustomerSync.objects.filter(store=scheduled).count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_five_workers_claiming_one_slot_at_once_give_one_run(fake_pos):
    store = StoreFactory(sync_interval_minutes=5)
    due = timezone.now().isoformat()
    barrier = threading.Barrier(5)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(sync_store_customers(store.pk, trigger="schedule", scheduled_for=due))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(bool(r.get("skipped")) for r in results) == [False, True, True, True, True]
    assert CustomerSync.objects.filter(store=store).count() == 1
    assert ScheduledSlot.objects.filter(store=store).count() == 1
