"""A sync stopped by a signal records `interrupted` with its checkpoint; the next sync, of whatever kind, carries on."""

from __future__ import annotations

import os
import signal
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from customers.models import Customer
from pos_integrations.errors import PosAuthError
from stores.services import api_key_create
from syncs.interrupt import SyncInterrupted, stop_signals_interrupt
from syncs.models import CustomerSync, SyncKind, SyncStatus, SyncTrigger
from syncs.services import sync_create
from syncs.tasks import sync_store_customers

pytestmark = pytest.mark.django_db


def signal_after_page(fake_pos, page: int, signum: int = signal.SIGTERM) -> None:
    """The process gets `signum` once the POS has handed out `page` (and the engine has written it)."""
    fake_pos.after_page[page] = lambda pos: os.kill(os.getpid(), signum)


def start(store, kind: str = SyncKind.INCREMENTAL, trigger: str = SyncTrigger.MANUAL) -> CustomerSync:
    sync, created = sync_create(store=store, kind=kind, trigger=trigger)
    assert created
    return sync


@pytest.mark.parametrize(("signum", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_a_signal_mid_sync_records_it_interrupted_at_its_checkpoint_and_frees_the_store(
    store, fake_pos, sentry_events, signum, name
):
    signal_after_page(fake_pos, 2, signum)
    sync = start(store, SyncKind.FULL)

    with pytest.raises(SyncInterrupted), stop_signals_interrupt():
        sync.do_process()

    sync.refresh_from_db()
    assert (sync.status, sync.error_type) == (SyncStatus.INTERRUPTED, "Interrupted")
    assert name in sync.error_message
    assert sync.finished_at is not None
    assert (sync.pages, sync.fetched, sync.created) == (2, 20, 20)
    assert sync.checkpoint["position"]["page"] == 3
    assert Customer.objects.filter(store=store).count() == 20
    assert sentry_events == []  # a stop is not an error
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back

    # The store is free at once (no lease to wait for) and the next sync carries on at page 3.
    fake_pos.fetches.clear()
    following = start(store, SyncKind.FULL).do_process()
    assert following.status == SyncStatus.FINISHED
    assert following.resumed_from_id == sync.pk
    assert [f["page"] for f in fake_pos.fetches] == [3]
    assert Customer.objects.filter(store=store).count() == 25


def test_a_scheduled_incremental_after_an_unfinished_full_sync_finishes_the_full_sync(store, fake_pos):
    start(store, SyncKind.FULL).do_process()  # everyone mirrored once
    fake_pos.delete("1024")  # gone from the POS: only a full sync notices
    fake_pos.faults[len(fake_pos.fetches) + 2] = PosAuthError("401")  # the full sync fails at its 2nd page
    failed = start(store, SyncKind.FULL).do_process()
    assert (failed.status, failed.pages) == (SyncStatus.FAILED, 1)
    fake_pos.fetches.clear()

    following = start(store, SyncKind.INCREMENTAL, SyncTrigger.SCHEDULE).do_process()

    assert following.status == SyncStatus.FINISHED, following.error_message
    assert (following.kind, following.trigger, following.resumed_from_id) == (
        SyncKind.FULL,
        SyncTrigger.SCHEDULE,
        failed.pk,
    )
    assert (following.cursor_from, following.cursor_bound) == (None, failed.cursor_bound)
    assert [f["page"] for f in fake_pos.fetches] == [2, 3]  # the full listing from its checkpoint on
    assert following.deactivated == 1
    assert not Customer.objects.get(store=store, customer_id="1024").active
    # The full sync done, the next incremental starts from its bound.
    again = start(store, SyncKind.INCREMENTAL).do_process()
    assert (again.kind, again.resumed_from_id) == (SyncKind.INCREMENTAL, None)
    assert again.cursor_from == following.cursor_to - fake_pos.overlap


def test_a_full_sync_after_an_unfinished_incremental_starts_over(store, fake_pos):
    start(store, SyncKind.FULL).do_process()
    signal_after_page(fake_pos, 1)
    incremental = start(store)
    with pytest.raises(SyncInterrupted), stop_signals_interrupt():
        incremental.do_process()
    fake_pos.fetches.clear()

    full = start(store, SyncKind.FULL).do_process()

    assert (full.kind, full.resumed_from_id, full.status) == (SyncKind.FULL, None, SyncStatus.FINISHED)
    assert fake_pos.fetches[0] == {"page": 1, "since": None}


def test_an_interrupted_incremental_is_carried_on_by_the_next_incremental(store, fake_pos):
    start(store, SyncKind.FULL).do_process()
    for i in range(3):
        fake_pos.modify(f"10{i:02d}", first_name=f"Changed{i}")
    fake_pos.page_size = 1
    signal_after_page(fake_pos, 1)
    incremental = start(store)
    with pytest.raises(SyncInterrupted), stop_signals_interrupt():
        incremental.do_process()
    fake_pos.fetches.clear()

    following = start(store, trigger=SyncTrigger.SCHEDULE).do_process()

    assert (following.kind, following.resumed_from_id) == (SyncKind.INCREMENTAL, incremental.pk)
    assert following.cursor_from == incremental.cursor_from
    assert fake_pos.fetches[0]["page"] == 2
    assert {c.first_name for c in Customer.objects.filter(store=store, customer_id__in=["1000", "1001", "1002"])} == {
        "Changed0",
        "Changed1",
        "Changed2",
    }


def test_sync_customers_stopped_by_sigterm_exits_143_and_says_where_it_stopped(store, fake_pos):
    signal_after_page(fake_pos, 1)
    out, err = StringIO(), StringIO()

    with pytest.raises(SystemExit) as stopped:
        call_command("sync_customers", store=store.catalog_id, no_progress=True, stdout=out, stderr=err)

    assert stopped.value.code == 128 + signal.SIGTERM
    sync = CustomerSync.objects.get(store=store)
    assert sync.status == SyncStatus.INTERRUPTED
    assert f"sync #{sync.pk} interrupted" in out.getvalue()
    assert "Stopped by SIGTERM" in err.getvalue()


def test_a_signal_before_the_sync_began_leaves_it_interrupted_not_pending(store, fake_pos, monkeypatch):
    real_claim = CustomerSync.claim

    def claim_then_signal(self):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives before the claim: the sync never starts
        return real_claim(self)

    monkeypatch.setattr(CustomerSync, "claim", claim_then_signal)

    with pytest.raises(SystemExit):
        call_command("sync_customers", store=store.catalog_id, no_progress=True, stdout=StringIO(), stderr=StringIO())

    sync = CustomerSync.objects.get(store=store)
    assert (sync.status, sync.pages) == (SyncStatus.INTERRUPTED, 0)
    assert fake_pos.fetches == []
    monkeypatch.setattr(CustomerSync, "claim", real_claim)
    assert start(store).do_process().status == SyncStatus.FINISHED  # nothing blocks the store


def test_the_task_interrupted_ends_with_the_interrupted_status(store, fake_pos):
    signal_after_page(fake_pos, 1)
    with stop_signals_interrupt():
        result = sync_store_customers(store.pk)
    sync = CustomerSync.objects.get(store=store)
    assert result["status"] == sync.status == SyncStatus.INTERRUPTED
    assert result["fetched"] == 10


def test_a_sync_page_links_the_sync_it_resumed_and_the_one_that_resumed_it(admin_client, store, fake_pos):
    signal_after_page(fake_pos, 1)
    first = start(store, SyncKind.FULL)
    with pytest.raises(SyncInterrupted), stop_signals_interrupt():
        first.do_process()
    second = start(store).do_process()
    assert second.resumed_from_id == first.pk

    first_page = admin_client.get(reverse("admin:syncs_customersync_change", args=[first.pk])).content.decode()
    second_page = admin_client.get(reverse("admin:syncs_customersync_change", args=[second.pk])).content.decode()

    second_url = reverse("admin:syncs_customersync_change", args=[second.pk])
    first_url = reverse("admin:syncs_customersync_change", args=[first.pk])
    assert f'<a href="{second_url}">sync #{second.pk}</a> (carried on from this sync' in first_page
    assert f'<a href="{first_url}">sync #{first.pk}</a> (this sync carried on from its checkpoint)' in second_page
    assert "Interrupted" in first_page
    assert reverse("admin:syncs_customersync_retry", args=[first.pk]) in first_page  # it can be retried


def test_the_api_names_the_sync_a_sync_resumed(store, fake_pos):
    signal_after_page(fake_pos, 1)
    first = start(store, SyncKind.FULL)
    with pytest.raises(SyncInterrupted), stop_signals_interrupt():
        first.do_process()
    second = start(store).do_process()

    _, raw = api_key_create(name="ops", stores=[store])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    [row] = client.get("/api/v1/syncs", {"catalog_id": store.catalog_id}).json()["syncs"]

    assert row["last_sync"]["id"] == second.pk
    assert row["last_sync"]["resumed_from"] == first.pk
    assert row["last_sync"]["kind"] == "full"


def test_a_signal_while_a_page_is_written_waits_for_the_page_to_commit(store, fake_pos, monkeypatch):
    from customers.writer import CustomerWriter

    real_write = CustomerWriter.write
    writes = {"n": 0}

    def write_with_a_signal(self, *args, **kwargs):
        writes["n"] += 1
        if writes["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # lands inside the page's transaction
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(CustomerWriter, "write", write_with_a_signal)
    sync = start(store, SyncKind.FULL)

    with pytest.raises(SyncInterrupted), stop_signals_interrupt():
        sync.do_process()

    sync.refresh_from_db()
    assert sync.status == SyncStatus.INTERRUPTED
    assert (sync.pages, sync.checkpoint["position"]["page"]) == (2, 3)  # page 2 committed whole, then the stop
    assert Customer.objects.filter(store=store).count() == 20
