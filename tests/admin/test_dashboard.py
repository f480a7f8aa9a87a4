"""The sync-health dashboard: per-store state, a server-rendered chart, links to failing syncs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from syncs.dashboard import ago, format_duration, store_health_list
from syncs.models import CustomerSync, SyncStatus
from tests.factories import CustomerFactory, CustomerSyncFactory, StoreFactory

pytestmark = pytest.mark.django_db

URL = reverse("admin:syncs_dashboard")


def sync_at(store, when: dt.datetime, status: str, seconds: int = 30, fetched: int = 100) -> CustomerSync:
    sync = CustomerSyncFactory(
        store=store,
        status=status,
        started_at=when,
        finished_at=when + dt.timedelta(seconds=seconds),
        fetched=fetched,
        created=fetched // 2,
        updated=fetched // 4,
        error_message="POS answered 503" if status == SyncStatus.FAILED else "",
    )
    CustomerSync.objects.filter(pk=sync.pk).update(created_at=when)
    return sync


@pytest.fixture
def fleet():
    now = timezone.now()
    healthy = StoreFactory(name="Healthy Store")
    CustomerFactory.create_batch(3, store=healthy)
    sync_at(healthy, now - dt.timedelta(days=3), SyncStatus.FAILED)
    sync_at(healthy, now - dt.timedelta(days=2), SyncStatus.FINISHED, seconds=90, fetched=400)
    sync_at(healthy, now - dt.timedelta(days=40), SyncStatus.FINISHED)  # outside the window

    failing = StoreFactory(name="Failing Store")
    sync_at(failing, now - dt.timedelta(days=5), SyncStatus.FINISHED)
    # Two failures exactly a day apart fall on two days of the chart whatever the time of day
    # (a failure at now - 2 h shared yesterday's bar between midnight and 02:00).
    sync_at(failing, now - dt.timedelta(days=2), SyncStatus.FAILED, fetched=0)
    sync_at(failing, now - dt.timedelta(days=1), SyncStatus.FAILED, fetched=0)

    never = StoreFactory(name="New Store")
    return healthy, failing, never


def test_per_store_figures(fleet):
    healthy, failing, never = fleet
    rows = {r.store.pk: r for r in store_health_list()}

    assert rows[healthy.pk].health == "ok"
    assert rows[healthy.pk].store.failures_in_row == 0
    assert rows[healthy.pk].store.customer_count == 3
    assert rows[healthy.pk].syncs_in_window == 2
    assert rows[healthy.pk].chart.max_records == 400
    assert rows[healthy.pk].chart.max_seconds == 90

    assert rows[failing.pk].health == "failing"
    assert rows[failing.pk].store.failures_in_row == 2
    assert rows[failing.pk].store.last_sync_status == SyncStatus.FAILED
    assert rows[failing.pk].store.last_success_at is not None

    assert rows[never.pk].health == "never"
    assert rows[never.pk].store.last_success_at is None
    assert len(rows[never.pk].chart.bars) == 30
    # Failing stores come first.
    assert store_health_list()[0].store == failing


def test_failures_without_any_success_count_from_the_start():
    store = StoreFactory()
    now = timezone.now()
    for hours in (3, 2, 1):
        sync_at(store, now - dt.timedelta(hours=hours), SyncStatus.FAILED)
    [row] = store_health_list()
    assert row.store.failures_in_row == 3
    assert row.store.last_success_at is None


def test_dashboard_page(admin_client, fleet):
    _, failing, _ = fleet
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("Healthy Store", "Failing Store", "New Store"):
        assert name in html
    # The failures link to the failing syncs of that store.
    failures_link = f"?store__id__exact={failing.pk}&amp;status__exact=failed"
    assert failures_link in html
    # A chart per store, as inline SVG, with failed days linking to that day's failed syncs.
    assert html.count('<svg class="cf-chart"') == 3
    assert re.search(rf"store__id__exact={failing.pk}&amp;status__exact=failed&amp;created_at__year=\d+", html)
    assert "<polyline" in html
    # Nothing is loaded from elsewhere.
    assert not re.search(r"""<script[^>]+src=["']https?://""", html)
    assert not re.search(r"""<link[^>]+href=["']https?://""", html)


def test_the_day_link_lists_that_days_failed_syncs(admin_client, fleet):
    _, failing, _ = fleet
    html = admin_client.get(URL).content.decode()
    links = re.findall(
        rf'href="(/admin/syncs/customersync/\?store__id__exact={failing.pk}&amp;status__exact=failed&amp;created_at__year=[^"]+)"',
        html,
    )
    assert len(links) == 2
    response = admin_client.get(links[0].replace("&amp;", "&"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1
    assert response.context["cl"].result_list[0].status == SyncStatus.FAILED


def test_dashboard_is_linked_from_the_admin_index(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert URL in html
    assert "?status__exact=failed" in html


def test_dashboard_needs_staff(client, django_user_model):
    assert client.get(URL).status_code == 302
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(URL).status_code == 403


def test_dashboard_query_count_does_not_grow_with_stores_and_syncs(admin_client, fleet, count_queries):
    small = count_queries(admin_client, URL)
    now = timezone.now()
    for i in range(8):
        store = StoreFactory()
        CustomerFactory.create_batch(3, store=store)
        for day in range(0, 20, 3):
            sync_at(store, now - dt.timedelta(days=day, hours=i), SyncStatus.FAILED if day % 2 else SyncStatus.FINISHED)
    assert count_queries(admin_client, URL) == small


def test_syncing_now_counts_only_syncs_in_progress(admin_client):
    CustomerSyncFactory(store=StoreFactory(), status=SyncStatus.IN_PROGRESS, started_at=timezone.now())
    CustomerSyncFactory(store=StoreFactory(), status=SyncStatus.PENDING)
    CustomerSyncFactory(store=StoreFactory(), status=SyncStatus.PENDING)
    response = admin_client.get(URL)
    assert (response.context["running"], response.context["queued"]) == (1, 2)
    html = response.content.decode()
    assert re.search(r'id="cf-running-count"><strong>1</strong> syncing now', html)
    assert re.search(r'id="cf-queued-count"><strong>2</strong> queued', html)


def test_a_sync_seconds_ago_is_not_zero_minutes_ago():
    now = timezone.now()
    assert ago(now - dt.timedelta(seconds=42), now=now) == "42\xa0seconds ago"
    assert ago(now - dt.timedelta(minutes=5, seconds=3), now=now) == "5\xa0minutes ago"


def test_durations_are_to_the_second():
    assert format_duration(dt.timedelta(seconds=3.24)) == "3.2s"
    assert format_duration(dt.timedelta(minutes=4, seconds=5)) == "4m 05s"
    assert format_duration(dt.timedelta(hours=1, minutes=2, seconds=9)) == "1h 02m 09s"


def test_a_sync_without_a_heartbeat_for_longer_than_the_bound_shows_as_stalled_first(admin_client, fleet, settings):
    settings.SYNC_STALL_SECONDS = 180
    now = timezone.now()
    moving = StoreFactory(name="Moving Store")
    CustomerSyncFactory(
        store=moving,
        status=SyncStatus.IN_PROGRESS,
        started_at=now - dt.timedelta(minutes=20),
        heartbeat_at=now - dt.timedelta(seconds=20),
    )
    stuck = StoreFactory(name="Stuck Store")
    CustomerSyncFactory(
        store=stuck,
        status=SyncStatus.IN_PROGRESS,
        started_at=now - dt.timedelta(minutes=30),
        heartbeat_at=now - dt.timedelta(minutes=12),
    )
    rows = store_health_list()
    assert rows[0].store == stuck
    assert (rows[0].health, rows[0].status_label) == ("stalled", "Stalled: no progress for 12\xa0minutes")
    assert {r.store.pk: r.health for r in rows}[moving.pk] == "running"

    response = admin_client.get(URL)
    assert (response.context["stalled"], response.context["running"]) == (1, 1)
    html = response.content.decode()
    assert re.search(r'class="cf-bad" id="cf-stalled-count"><strong>1</strong> stalled', html)
    assert re.search(r'id="cf-running-count"><strong>1</strong> syncing now', html)
    row = re.search(rf'<tr class="cf-row--stalled" data-store="{stuck.catalog_id}">.*?</tr>', html, re.S)
    assert row is not None
    assert "Stalled: no progress for 12\xa0minutes" in row.group(0)
