"""Store admin: sync state columns, write-only credentials, sync actions, schedules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from pos_integrations.errors import PosAuthError
from stores.models import Store
from syncs.models import CustomerSync, SyncStatus
from tests.factories import CustomerFactory, CustomerSyncFactory, StoreFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:stores_store_changelist")
ADD = reverse("admin:stores_store_add")


def change_url(store: Store) -> str:
    return reverse("admin:stores_store_change", args=[store.pk])


def form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "Mission Buds",
        "catalog_id": "mission-buds",
        "pos_vendor": "blaze",
        "pos_base_url": "",
        "sync_enabled": "on",
        "sync_interval_minutes": "30",
        "customer_syncs-TOTAL_FORMS": "0",
        "customer_syncs-INITIAL_FORMS": "0",
        "customer_syncs-MIN_NUM_FORMS": "0",
        "customer_syncs-MAX_NUM_FORMS": "0",
    }
    data.update(overrides)
    return data


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def populate(n: int) -> None:
    for _ in range(n):
        store = StoreFactory()
        CustomerFactory.create_batch(2, store=store)
        CustomerSyncFactory(store=store, status=SyncStatus.FAILED, error_message="boom")
        CustomerSyncFactory(store=store, status=SyncStatus.FINISHED, finished_at=timezone.now())


def test_changelist_shows_last_sync_and_customer_count(admin_client):
    store = StoreFactory(name="Oakland Greens")
    CustomerFactory.create_batch(3, store=store)
    old = CustomerSyncFactory(store=store, status=SyncStatus.FINISHED)
    failed = CustomerSyncFactory(store=store, status=SyncStatus.FAILED)
    CustomerSync.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))

    html = admin_client.get(CHANGELIST).content.decode()

    assert "Oakland Greens" in html
    assert "cf-status--failed" in html
    assert reverse("admin:syncs_customersync_change", args=[failed.pk]) in html
    assert f'?store__id__exact={store.pk}">3</a>' in html


def test_changelist_query_count_does_not_grow_with_stores(admin_client, count_queries):
    populate(2)
    small = count_queries(admin_client, CHANGELIST)
    populate(12)
    assert count_queries(admin_client, CHANGELIST) == small


def test_change_page_query_count_does_not_grow_with_syncs(admin_client, count_queries):
    store = StoreFactory()
    CustomerSyncFactory.create_batch(2, store=store)
    small = count_queries(admin_client, change_url(store))
    CustomerSyncFactory.create_batch(15, store=store)
    assert count_queries(admin_client, change_url(store)) == small
    response = admin_client.get(change_url(store))
    # Only the latest ten syncs are inlined.
    assert response.content.decode().count("has_original") == 10


def test_adding_a_store_encrypts_credentials_and_never_renders_them(admin_client):
    response = admin_client.post(
        ADD, form_data(cred_partner_key="partner-SECRET-1", cred_api_key="dispensary-SECRET-2", cred_username="x")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    store = Store.objects.get(catalog_id="mission-buds")
    # Keys Blaze does not use are dropped.
    assert store.pos_credentials == {"partner_key": "partner-SECRET-1", "api_key": "dispensary-SECRET-2"}
    html = admin_client.get(change_url(store)).content.decode()
    assert "SECRET" not in html
    assert "Stored — leave blank to keep." in html
    assert "API key, Partner key" in html


def test_blank_credential_field_keeps_the_stored_value(admin_client):
    store = StoreFactory(pos_vendor="blaze", pos_credentials={"partner_key": "old-partner", "api_key": "old-key"})
    response = admin_client.post(
        change_url(store), form_data(name="Renamed", catalog_id=store.catalog_id, cred_api_key="new-key")
    )
    assert response.status_code == 302
    store.refresh_from_db()
    assert store.name == "Renamed"
    assert store.pos_credentials == {"partner_key": "old-partner", "api_key": "new-key"}


def test_credentials_are_validated_per_vendor(admin_client):
    response = admin_client.post(ADD, form_data(pos_vendor="treez", cred_api_key="only-this"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "credentials are missing" in html
    assert "Required for this POS." in html
    assert "only-this" not in html
    assert not Store.objects.filter(catalog_id="mission-buds").exists()


def test_saving_a_store_updates_its_schedule_and_deleting_removes_it(admin_client):
    admin_client.post(ADD, form_data(cred_partner_key="p", cred_api_key="k"))
    store = Store.objects.get(catalog_id="mission-buds")
    assert Schedule.objects.get(name=store.schedule_name).minutes == 30

    admin_client.post(change_url(store), form_data(sync_interval_minutes="15"))
    assert Schedule.objects.get(name=store.schedule_name).minutes == 15

    data = form_data(sync_interval_minutes="15")
    del data["sync_enabled"]
    admin_client.post(change_url(store), data)
    assert not Schedule.objects.filter(name=store.schedule_name).exists()

    store.sync_enabled = True
    store.save()
    store.schedule_customer_sync()
    name = store.schedule_name
    admin_client.post(reverse("admin:stores_store_delete", args=[store.pk]), {"post": "yes"})
    assert not Store.objects.filter(pk=store.pk).exists()
    assert not Schedule.objects.filter(name=name).exists()


@pytest.mark.parametrize(("action", "kind"), [("sync_now", "incremental"), ("full_resync", "full")])
def test_sync_actions_queue_a_sync(admin_client, sync_services, action, kind):
    store = StoreFactory()
    response = admin_client.post(CHANGELIST, {"action": action, "_selected_action": [store.pk]}, follow=True)
    assert sync_services.calls == [("sync_trigger", {"store": store, "kind": kind, "trigger": "admin"})]
    sync = CustomerSync.objects.get(store=store)
    assert f"sync #{sync.pk} of {store} queued" in " ".join(messages_of(response)).replace("</a>", "").replace(
        f'<a href="{reverse("admin:syncs_customersync_change", args=[sync.pk])}">', ""
    )


def test_sync_button_reports_a_sync_already_running(admin_client, sync_services):
    store = StoreFactory()
    running = CustomerSyncFactory(store=store, status=SyncStatus.IN_PROGRESS)
    response = admin_client.post(reverse("admin:stores_store_sync_now", args=[store.pk]), follow=True)
    assert response.redirect_chain[-1][0] == change_url(store)
    text = " ".join(messages_of(response))
    assert f"#{running.pk}</a> in progress; not starting another" in text
    assert CustomerSync.objects.filter(store=store).count() == 1


def test_sync_buttons_need_post(admin_client, sync_services):
    store = StoreFactory()
    assert admin_client.get(reverse("admin:stores_store_full_resync", args=[store.pk])).status_code == 405
    assert sync_services.calls == []


class FakeClient:
    def __init__(self, result: str | Exception) -> None:
        self.result = result

    def check_connection(self) -> str:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_test_connection_shows_the_result(admin_client, monkeypatch):
    store = StoreFactory()
    monkeypatch.setattr(Store, "pos_client", lambda self, **kw: FakeClient("Treez OK, 1042 customers"))
    response = admin_client.post(reverse("admin:stores_store_test_connection", args=[store.pk]), follow=True)
    assert messages_of(response) == [f"{store}: connection OK — Treez OK, 1042 customers"]


def test_test_connection_shows_a_pos_error(admin_client, monkeypatch):
    store = StoreFactory()
    monkeypatch.setattr(
        Store, "pos_client", lambda self, **kw: FakeClient(PosAuthError("Treez rejected the credentials (401)"))
    )
    response = admin_client.post(CHANGELIST, {"action": "test_connection", "_selected_action": [store.pk]}, follow=True)
    assert messages_of(response) == [f"{store}: connection failed — Treez rejected the credentials (401)"]


def test_staff_without_change_permission_cannot_trigger_syncs(client, django_user_model, sync_services):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_store"))
    client.force_login(user)
    store = StoreFactory()
    assert client.post(reverse("admin:stores_store_sync_now", args=[store.pk])).status_code == 403
    assert sync_services.calls == []


def test_without_javascript_every_credential_field_names_the_pos_that_uses_it(admin_client):
    html = admin_client.get(ADD).content.decode()
    assert "For LeafLogix (Dutchie POS), Treez (one sign-in method), Flowhub, Blaze." in html  # API key
    assert "For Treez (one sign-in method)." in html  # private key
    assert "For LeafLogix (Dutchie POS) (optional)." in html  # integrator key
    assert "For Cova." in html
    for label in ("POS vendor", "POS base URL", "API key", "Private key (PEM)", "Sync every (minutes)"):
        assert f">{label}:</label>" in html
    assert "Pos vendor" not in html
    assert "Pos base url" not in html
    # The script that shows only the chosen vendor's fields gets the same table.
    assert '"cred_partner_key": ["blaze"]' in html
