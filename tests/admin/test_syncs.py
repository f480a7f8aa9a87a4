"""Sync admin: failed syncs one click away with their reasons, retry, read-only history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from syncs.models import CustomerSync, SyncStatus
from tests.factories import CustomerFactory, CustomerSyncFactory, StoreFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:syncs_customersync_changelist")


def change_url(sync: CustomerSync) -> str:
    return reverse("admin:syncs_customersync_change", args=[sync.pk])


@pytest.fixture
def failed_sync():
    started = timezone.now() - dt.timedelta(minutes=5)
    sync = CustomerSyncFactory(
        status=SyncStatus.FAILED,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=125),
        fetched=500,
        created=480,
        updated=10,
        invalid=2,
        error_type="PosUnavailable",
        error_message="Treez kept answering 503 after 5 attempts",
    )
    sync.record_errors.create(
        store=sync.store,
        source="sync",
        customer_id="77",
        reason="birthday: not a date ('31/02/1990')",
        payload={"id": 77},
    )
    sync.record_errors.create(
        store=sync.store, source="sync", customer_id="", reason="record has no customer id", payload={"name": "x"}
    )
    return sync


def test_failed_syncs_are_one_click_from_the_list(admin_client, failed_sync):
    CustomerSyncFactory(store=failed_sync.store, status=SyncStatus.FINISHED)
    html = admin_client.get(CHANGELIST).content.decode()
    assert 'href="?status__exact=failed"' in html
    response = admin_client.get(CHANGELIST, {"status__exact": "failed"})
    assert [s.pk for s in response.context["cl"].result_list] == [failed_sync.pk]
    html = response.content.decode()
    assert "Treez kept answering 503" in html
    assert "2m 05s" in html


def test_sync_page_shows_error_counts_duration_and_quarantined_records(admin_client, failed_sync):
    html = admin_client.get(change_url(failed_sync)).content.decode()
    for text in [
        "PosUnavailable",
        "Treez kept answering 503 after 5 attempts",
        "2m 05s",
        "480",
        "birthday: not a date",
        "record has no customer id",
        "&quot;id&quot;: 77",
    ]:
        assert text in html, text
    assert ">Retry</button>" in html
    sync_type = ContentType.objects.get_for_model(failed_sync).pk
    assert f"?origin_type={sync_type}&amp;origin_id={failed_sync.pk}" in html


def test_history_cannot_be_edited(admin_client, failed_sync):
    html = admin_client.get(change_url(failed_sync)).content.decode()
    assert 'name="_save"' not in html
    response = admin_client.post(change_url(failed_sync), {"status": "finished"})
    assert response.status_code == 403
    failed_sync.refresh_from_db()
    assert failed_sync.status == SyncStatus.FAILED
    assert admin_client.get(reverse("admin:syncs_customersync_add")).status_code == 403


def test_retry_button_starts_a_new_sync(admin_client, failed_sync, sync_services):
    response = admin_client.post(reverse("admin:syncs_customersync_retry", args=[failed_sync.pk]), follow=True)
    new = CustomerSync.objects.exclude(pk=failed_sync.pk).get()
    assert sync_services.calls == [
        ("sync_retry", {"sync": failed_sync}),
        ("sync_trigger", {"store": failed_sync.store, "kind": "incremental", "trigger": "admin"}),
    ]
    assert response.redirect_chain[-1][0] == change_url(new)
    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert f"Retrying sync #{failed_sync.pk}" in text


def test_retry_action_skips_syncs_that_did_not_fail(admin_client, failed_sync, sync_services):
    ok = CustomerSyncFactory(status=SyncStatus.FINISHED)
    response = admin_client.post(
        CHANGELIST, {"action": "retry", "_selected_action": [failed_sync.pk, ok.pk]}, follow=True
    )
    assert [c[0] for c in sync_services.calls] == ["sync_retry", "sync_trigger"]
    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert f"Sync #{ok.pk} is finished; only failed or interrupted syncs can be retried." in text


def test_finished_sync_has_no_retry_button(admin_client):
    sync = CustomerSyncFactory(status=SyncStatus.FINISHED)
    assert ">Retry</button>" not in admin_client.get(change_url(sync)).content.decode()


def test_changelist_query_count_does_not_grow_with_syncs(admin_client, count_queries):
    CustomerSyncFactory.create_batch(3, status=SyncStatus.FAILED, error_message="x")
    small = count_queries(admin_client, CHANGELIST)
    small_failed = count_queries(admin_client, CHANGELIST + "?status__exact=failed")
    for _ in range(5):
        CustomerSyncFactory.create_batch(6, store=StoreFactory(), status=SyncStatus.FAILED)
    assert count_queries(admin_client, CHANGELIST) == small
    assert count_queries(admin_client, CHANGELIST + "?status__exact=failed") == small_failed


def test_sync_page_query_count_does_not_grow_with_record_errors(admin_client, failed_sync, count_queries):
    small = count_queries(admin_client, change_url(failed_sync))
    for i in range(60):
        failed_sync.record_errors.create(
            store=failed_sync.store, source="sync", customer_id=str(i), reason="bad", payload={"i": i}
        )
    assert count_queries(admin_client, change_url(failed_sync)) == small
    html = admin_client.get(change_url(failed_sync)).content.decode()
    assert html.count("has_original") == 50


def test_record_error_changelist_query_count(admin_client, failed_sync, count_queries):
    url = reverse("admin:customers_rejectedrecord_changelist")
    small = count_queries(admin_client, url)
    for _ in range(4):
        sync = CustomerSyncFactory(store=StoreFactory(), status=SyncStatus.FAILED)
        for i in range(5):
            sync.record_errors.create(store=sync.store, source="sync", customer_id=str(i), reason="bad")
    assert count_queries(admin_client, url) == small
    sync_type = ContentType.objects.get_for_model(failed_sync).pk
    assert count_queries(admin_client, f"{url}?origin_type={sync_type}&origin_id={failed_sync.pk}") > 0


def test_history_has_no_delete_even_for_superusers(admin_client, failed_sync):
    html = admin_client.get(change_url(failed_sync)).content.decode()
    assert "deletelink" not in html
    assert "/delete/" not in html
    delete = reverse("admin:syncs_customersync_delete", args=[failed_sync.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    record = failed_sync.record_errors.first()
    page = reverse("admin:customers_rejectedrecord_change", args=[record.pk])
    assert "deletelink" not in admin_client.get(page).content.decode()
    assert (
        admin_client.post(
            reverse("admin:customers_rejectedrecord_delete", args=[record.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert CustomerSync.objects.filter(pk=failed_sync.pk).exists()
    assert failed_sync.record_errors.count() == 2
    actions = admin_client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert "delete_selected" not in {name for name, _ in actions}


def test_a_deleted_store_takes_its_history_along(admin_client, failed_sync):
    store = failed_sync.store
    CustomerFactory(store=store)
    delete = reverse("admin:stores_store_delete", args=[store.pk])
    confirm = admin_client.get(delete).content.decode()
    assert "permission to delete" not in confirm
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not CustomerSync.objects.filter(pk=failed_sync.pk).exists()


def test_times_show_seconds_and_their_zone(admin_client, failed_sync):
    failed_sync.cursor_to = dt.datetime(2026, 11, 24, 10, 0, 4, tzinfo=dt.UTC)
    failed_sync.save()
    html = admin_client.get(change_url(failed_sync)).content.decode()
    assert "2026-11-24 10:00:04 UTC" in html
    assert "2m 05s" in html  # the duration, to the second
    listed = admin_client.get(CHANGELIST).content.decode()
    started = timezone.localtime(failed_sync.started_at)
    assert f'{started:%Y-%m-%d} <span style="white-space: nowrap">{started:%H:%M:%S} UTC</span>' in listed


def test_syncs_queued_by_the_demo_or_a_schedule_say_so(admin_client):
    CustomerSyncFactory(trigger="demo")
    CustomerSyncFactory(trigger="schedule")
    html = admin_client.get(CHANGELIST).content.decode()
    assert '<span class="cf-quiet">Demo</span>' in html
    assert '<span class="cf-quiet">Schedule</span>' in html
