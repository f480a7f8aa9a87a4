"""Single flight, abandoned syncs, resume, the django-q2 task, schedules and the commands."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from customers.models import Customer
from customers.tasks import PRUNE_SCHEDULE_NAME
from pos_integrations.errors import PosAuthError
from stores.models import SYNC_CATCH_UP_SCHEDULE, SYNC_CLUSTER, SYNC_TASK, Store
from syncs.models import CustomerSync, SyncKind, SyncStatus, SyncTrigger
from syncs.services import sync_create, sync_reap_abandoned, sync_retry, sync_trigger
from syncs.tasks import sync_store_customers
from tests.factories import CustomerSyncFactory, StoreFactory

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    """Tasks queued by the services; on-commit callbacks run at once (each test runs in a transaction)."""
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr("syncs.services.async_task", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setattr("syncs.services.transaction.on_commit", lambda func, *a, **k: func())
    return calls


def test_the_sync_is_queued_only_once_its_row_is_committed(store, monkeypatch, django_capture_on_commit_callbacks):
    calls = []
    monkeypatch.setattr("syncs.services.async_task", lambda *args, **kwargs: calls.append(args))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sync_trigger(store=store, trigger=SyncTrigger.API)
        assert calls == []
    assert len(callbacks) == 1
    assert len(calls) == 1


def test_trigger_creates_a_pending_sync_and_queues_it_on_the_sync_cluster(store, queued):
    sync, created = sync_trigger(store=store, kind=SyncKind.FULL, trigger=SyncTrigger.ADMIN)

    assert created
    assert (sync.status, sync.kind, sync.trigger) == (SyncStatus.PENDING, SyncKind.FULL, SyncTrigger.ADMIN)
    [(args, kwargs)] = queued
    assert args == (SYNC_TASK, store.pk)
    assert kwargs["sync_id"] == sync.pk
    assert kwargs["cluster"] == SYNC_CLUSTER
    assert (kwargs["kind"], kwargs["trigger"]) == (SyncKind.FULL, SyncTrigger.ADMIN)


def test_a_second_trigger_while_one_is_active_returns_the_active_one(store, queued):
    first, _ = sync_trigger(store=store, trigger=SyncTrigger.API)
    again, created = sync_trigger(store=store, kind=SyncKind.FULL, trigger=SyncTrigger.ADMIN)
    assert not created
    assert again.pk == first.pk
    assert len(queued) == 1


def test_a_sync_the_queue_refuses_is_failed_so_it_blocks_nothing(store, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr("syncs.services.async_task", refuse)
    monkeypatch.setattr("syncs.services.transaction.on_commit", lambda func, *a, **k: func())
    with pytest.raises(ConnectionError):
        sync_trigger(store=store, trigger=SyncTrigger.API)
    sync = CustomerSync.objects.get(store=store)
    assert (sync.status, sync.error_type) == (SyncStatus.FAILED, "EnqueueFailed")


def test_retry_queues_a_new_sync_of_the_same_kind(store, queued):
    failed = CustomerSyncFactory(store=store, status=SyncStatus.FAILED, kind=SyncKind.FULL)
    new, created = sync_retry(sync=failed)
    assert created
    assert (new.kind, new.trigger, new.status) == (SyncKind.FULL, SyncTrigger.ADMIN, SyncStatus.PENDING)


def test_a_sync_without_heartbeat_past_the_lease_is_failed_as_abandoned_and_blocks_nothing(store, settings):
    settings.SYNC_LEASE_SECONDS = 60
    stale = CustomerSyncFactory(
        store=store, status=SyncStatus.IN_PROGRESS, heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    never_started = CustomerSyncFactory(status=SyncStatus.PENDING)
    CustomerSync.objects.filter(pk=never_started.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    alive = CustomerSyncFactory(status=SyncStatus.IN_PROGRESS, heartbeat_at=timezone.now() - timedelta(seconds=30))

    _new, created = sync_create(store=store, trigger=SyncTrigger.MANUAL)

    assert created
    stale.refresh_from_db()
    assert (stale.status, stale.error_type) == (SyncStatus.FAILED, "Abandoned")
    assert "heartbeat" in stale.error_message
    assert sync_reap_abandoned() == 1  # the never-started one, in another store
    alive.refresh_from_db()
    assert alive.status == SyncStatus.IN_PROGRESS


def test_a_crashed_sync_is_resumed_from_its_checkpoint_within_the_same_window(store, fake_pos, settings):
    settings.SYNC_LEASE_SECONDS = 60
    fake_pos.faults[3] = PosAuthError("401")
    crashed = sync_create(store=store, trigger=SyncTrigger.MANUAL)[0].do_process()
    assert crashed.checkpoint["position"]["page"] == 3
    # Pretend it died instead of failing cleanly: still in progress, heartbeat gone stale.
    CustomerSync.objects.filter(pk=crashed.pk).update(
        status=SyncStatus.IN_PROGRESS, heartbeat_at=timezone.now() - timedelta(minutes=5), error_type=""
    )
    fake_pos.fetches.clear()

    resumed = sync_create(store=store, trigger=SyncTrigger.SCHEDULE)[0].do_process()

    assert resumed.resumed_from_id == crashed.pk
    assert resumed.status == SyncStatus.FINISHED
    assert [f["page"] for f in fake_pos.fetches] == [3]
    assert Customer.objects.filter(store=store).count() == 25


def test_a_failed_resume_that_made_no_progress_is_not_resumed_again(store, fake_pos):
    fake_pos.faults[2] = PosAuthError("401")
    first = sync_create(store=store, trigger=SyncTrigger.MANUAL)[0].do_process()
    fake_pos.faults[3] = PosAuthError("401")
    second = sync_create(store=store, trigger=SyncTrigger.MANUAL)[0].do_process()
    assert second.resumed_from_id == first.pk
    assert second.pages == 0

    third = sync_create(store=store, trigger=SyncTrigger.MANUAL)[0].do_process()

    assert third.resumed_from_id is None
    assert third.status == SyncStatus.FINISHED


def test_the_task_runs_a_new_sync_and_logs_its_start_and_end(store, fake_pos, caplog):
    caplog.set_level("INFO", logger="syncs.tasks")
    result = sync_store_customers(store.pk)

    sync = CustomerSync.objects.get(store=store)
    assert (sync.status, sync.trigger) == (SyncStatus.FINISHED, SyncTrigger.SCHEDULE)
    assert result["status"] == SyncStatus.FINISHED
    assert result["created"] == 25
    messages = [r.getMessage() for r in caplog.records if r.name == "syncs.tasks"]
    assert any("starting" in m for m in messages)
    assert any("ended finished" in m for m in messages)


def test_the_task_skips_when_a_sync_is_running(store, fake_pos):
    running = CustomerSyncFactory(store=store, status=SyncStatus.IN_PROGRESS, heartbeat_at=timezone.now())
    result = sync_store_customers(store.pk)
    assert result["skipped"]
    assert result["sync_id"] == running.pk
    assert fake_pos.fetches == []


def test_the_task_runs_the_queued_sync_once(store, fake_pos, queued):
    sync, _ = sync_trigger(store=store, trigger=SyncTrigger.ADMIN)
    assert sync_store_customers(store.pk, sync_id=sync.pk)["status"] == SyncStatus.FINISHED
    assert sync_store_customers(store.pk, sync_id=sync.pk)["skipped"]  # delivered twice: runs once


def test_the_scheduled_task_skips_a_store_with_sync_disabled(fake_pos):
    store = StoreFactory(sync_enabled=False)
    assert sync_store_customers(store.pk, trigger="schedule")["skipped"]
    assert not CustomerSync.objects.exists()


def test_each_enabled_store_has_exactly_one_schedule_and_disabling_removes_it(store):
    store.schedule_customer_sync()
    store.schedule_customer_sync()
    [schedule] = Schedule.objects.filter(name=store.schedule_name)
    assert (schedule.func, schedule.args, schedule.minutes, schedule.cluster) == (
        SYNC_TASK,
        repr(store.pk),
        store.sync_interval_minutes,
        SYNC_CLUSTER,
    )
    assert eval(schedule.kwargs) == {"trigger": "schedule"}  # what django-q2 parses
    assert schedule.intended_date_kwarg == "scheduled_for"  # each run is handed the time it was due: its slot

    store.sync_interval_minutes = 15
    store.schedule_customer_sync()
    assert Schedule.objects.get(name=store.schedule_name).minutes == 15

    store.sync_enabled = False
    assert store.schedule_customer_sync() is None
    assert not Schedule.objects.filter(name=store.schedule_name).exists()


def test_schedule_customer_syncs_matches_every_store_and_is_idempotent():
    on = StoreFactory(sync_enabled=True)
    off = StoreFactory(sync_enabled=False)
    gone = StoreFactory()
    gone.schedule_customer_sync()
    Schedule.objects.create(name=off.schedule_name, func=SYNC_TASK, args=repr(off.pk))
    Store.objects.filter(pk=gone.pk).delete()

    out = StringIO()
    call_command("schedule_customer_syncs", stdout=out)
    assert "1 created" in out.getvalue()
    assert "2 removed" in out.getvalue()
    # The store's schedule, the one that catches up runs whose task was lost (syncs.slots), and the access log's
    # pruning (customers.apps), untouched.
    assert sorted(Schedule.objects.values_list("name", flat=True)) == sorted(
        [on.schedule_name, SYNC_CATCH_UP_SCHEDULE, PRUNE_SCHEDULE_NAME]
    )

    out = StringIO()
    call_command("schedule_customer_syncs", stdout=out)
    assert "1 unchanged, 0 created, 0 updated, 0 removed" in out.getvalue()


def test_sync_customers_command_prints_the_counts(store, fake_pos):
    out, err = StringIO(), StringIO()
    call_command("sync_customers", "--store", store.catalog_id, "--full", stdout=out, stderr=err)
    assert f"{store.catalog_id}: full sync" in out.getvalue()
    assert "fetched=25 created=25 updated=0 unchanged=0 invalid=0" in out.getvalue()
    assert "customers" in err.getvalue()  # the progress bar
    assert CustomerSync.objects.get(store=store).trigger == SyncTrigger.MANUAL


def test_sync_customers_command_fails_on_a_failed_sync(store, fake_pos):
    fake_pos.faults[1] = PosAuthError("Treez rejected the credentials")
    out = StringIO()
    with pytest.raises(CommandError, match="did not finish"):
        call_command("sync_customers", "--store", store.catalog_id, "--no-progress", stdout=out, stderr=StringIO())
    assert "PosAuthError: Treez rejected the credentials" in out.getvalue()


def test_sync_customers_command_rejects_an_unknown_store(db):
    with pytest.raises(CommandError, match="No store"):
        call_command("sync_customers", "--store", "nope")


def test_sync_customers_all_syncs_every_enabled_store(fake_pos):
    stores = [StoreFactory(), StoreFactory()]
    StoreFactory(sync_enabled=False)
    out = StringIO()
    call_command("sync_customers", "--all", "--no-progress", stdout=out, stderr=StringIO())
    assert CustomerSync.objects.finished().count() == 2
    for s in stores:
        assert Customer.objects.filter(store=s).count() == 25


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_five_simultaneous_triggers_give_exactly_one_run(fake_pos):
    store = StoreFactory()
    barrier = threading.Barrier(5)
    results: list[dict] = []
    errors: list[BaseException] = []

    def trigger() -> None:
        try:
            barrier.wait()
            results.append(sync_store_customers(store.pk, trigger="schedule"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert CustomerSync.objects.filter(store=store).count() == 1
    assert sum(not r.get("skipped") for r in results) == 1
    assert CustomerSync.objects.get(store=store).status == SyncStatus.FINISHED
    assert Customer.objects.filter(store=store).count() == 25


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_five_simultaneous_api_triggers_create_one_sync(queued):
    store = StoreFactory()
    barrier = threading.Barrier(5)
    created: list[bool] = []

    def trigger() -> None:
        try:
            barrier.wait()
            created.append(sync_trigger(store=store, trigger=SyncTrigger.API)[1])
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(created) == [False, False, False, False, True]
    assert CustomerSync.objects.filter(store=store).count() == 1
    assert len(queued) == 1


def test_a_fleets_schedules_come_due_spread_over_the_interval_each_at_once_the_first_time():
    # 40 stores created together, every 2 minutes: had their schedules all come due at once, 40 syncs would
    # queue behind the workers at every interval (the fleet benchmark's start lag); spread, they arrive one by one.
    before = timezone.now()
    stores = [StoreFactory(sync_interval_minutes=2) for _ in range(40)]
    for store in stores:
        store.schedule_customer_sync()
    runs = [Schedule.objects.get(name=store.schedule_name).next_run for store in stores]
    assert all(before - timedelta(minutes=2) < run <= timezone.now() for run in runs)  # due now: the first run
    phases = sorted(run.timestamp() % 120 for run in runs)
    gaps = [b - a for a, b in zip(phases, [*phases[1:], phases[0] + 120], strict=True)]
    assert max(gaps) < 3 * 120 / 40  # no bunching: the widest gap within three times the even spacing
    # A new interval gives a new phase in it; the schedule stays due at once.
    store = stores[0]
    store.sync_interval_minutes = 7
    store.save()
    store.schedule_customer_sync()
    run = Schedule.objects.get(name=store.schedule_name).next_run
    assert timezone.now() - timedelta(minutes=7) < run <= timezone.now()
