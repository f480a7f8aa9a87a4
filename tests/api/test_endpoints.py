"""GET /api/v1/customers/{id}, the older /customers/search, and /api/v1/syncs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from stores.models import ApiKey
from syncs.models import CustomerSync, SyncStatus, SyncTrigger
from tests.factories import CustomerFactory, CustomerSyncFactory, StoreFactory

pytestmark = pytest.mark.django_db


# ---- GET /api/v1/customers/{id} -----------------------------------------------------------------------


def test_fetch_one_customer(api, store):
    customer = CustomerFactory(store=store)
    response = api.get(f"/api/v1/customers/{customer.pk}")
    assert response.status_code == 200
    assert response.json() == {"customer": customer.to_peak_customer()}


@pytest.mark.parametrize("pk", ["999999", "99999999999999999999999"])
def test_fetch_of_a_missing_customer_is_404(api, pk):
    response = api.get(f"/api/v1/customers/{pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


def test_unknown_paths_under_the_api_get_the_error_shape(api):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_gets_405(api, store):
    customer = CustomerFactory(store=store)
    response = api.delete(f"/api/v1/customers/{customer.pk}")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# ---- GET /customers/search ---------------------------------------------------------------------------


def test_older_search_finds_by_pos_id(key, store):
    customer = CustomerFactory(store=store, customer_id="5027")
    CustomerFactory(store=store, customer_id="5028")
    response = APIClient().get(f"/customers/search?api_key={key.raw}&customer_id=5027")
    assert response.status_code == 200
    assert response.json() == {"customers": [customer.to_peak_customer()]}


def test_older_search_takes_the_header_too(api, store):
    CustomerFactory(store=store, customer_id="5027")
    assert len(api.get("/customers/search?customer_id=5027").json()["customers"]) == 1


@pytest.mark.parametrize(("query", "bad"), [("", "customer_id"), ("customer_id=1&colour=red", "colour")])
def test_older_search_rejects_missing_or_unknown_parameters(key, query, bad):
    response = APIClient().get(f"/customers/search?api_key={key.raw}&{query}")
    assert response.status_code == 400
    assert bad in response.json()["error"]["fields"]


def test_older_search_with_a_wrong_key_is_401():
    assert APIClient().get("/customers/search?api_key=cf_nope_nope&customer_id=1").status_code == 401


# ---- /api/v1/syncs -----------------------------------------------------------------------------------


def test_sync_status_per_store(make_key, store):
    quiet = StoreFactory(catalog_id="zz-quiet")
    CustomerSyncFactory(store=store, status=SyncStatus.FINISHED, finished_at=timezone.now(), fetched=12, created=3)
    failed = CustomerSyncFactory(
        store=store, status=SyncStatus.FAILED, error_message="Treez is down", started_at=timezone.now()
    )
    body = make_key(store, quiet).client().get("/api/v1/syncs").json()
    assert [s["catalog_id"] for s in body["syncs"]] == [store.catalog_id, "zz-quiet"]
    mine = body["syncs"][0]
    assert mine["last_sync"]["id"] == failed.pk
    assert mine["last_sync"]["status"] == "failed"
    assert mine["last_sync"]["error"] == "Treez is down"
    assert set(mine["last_sync"]["counts"]) == {"fetched", "created", "updated", "unchanged", "invalid", "deactivated"}
    assert mine["last_finished_at"] is not None
    assert body["syncs"][1]["last_sync"] is None


def test_sync_status_of_one_store(api, store):
    CustomerSyncFactory(store=store)
    body = api.get(f"/api/v1/syncs?catalog_id={store.catalog_id}").json()
    assert len(body["syncs"]) == 1


def test_trigger_a_sync(api, store):
    response = api.post("/api/v1/syncs", {"catalog_id": store.catalog_id, "kind": "full"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["created"] is True
    sync = CustomerSync.objects.get(pk=body["sync"]["id"])
    assert (sync.store, sync.kind, sync.trigger, sync.status) == (store, "full", SyncTrigger.API, SyncStatus.PENDING)


def test_trigger_while_one_runs_answers_with_the_running_one(api, store):
    running = CustomerSyncFactory(
        store=store, status=SyncStatus.IN_PROGRESS, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    response = api.post("/api/v1/syncs", {"catalog_id": store.catalog_id}, format="json")
    assert response.status_code == 200
    assert response.json()["created"] is False
    assert response.json()["sync"]["id"] == running.pk
    assert CustomerSync.objects.count() == 1


@pytest.mark.parametrize("body", [{}, {"catalog_id": "x", "kind": "weekly"}, {"catalog_id": "x", "extra": 1}])
def test_trigger_with_a_bad_body_gets_400(api, body):
    assert api.post("/api/v1/syncs", body, format="json").status_code == 400


# ---- API key commands ----------------------------------------------------------------------------------


def test_create_api_key_prints_the_key_once_and_stores_only_its_hash(store, capsys):
    call_command("create_api_key", "online menu", "--store", store.catalog_id)
    raw = capsys.readouterr().out.strip()
    key = ApiKey.objects.get()
    assert raw.startswith(f"cf_{key.prefix}_")
    assert raw not in (key.hashed_key, key.prefix)
    assert list(key.stores.all()) == [store]
    assert not key.all_stores
    response = APIClient().get("/api/v1/customers", HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert response.status_code == 200


def test_revoke_api_key_by_prefix_or_whole_key(make_key):
    first, second = make_key(), make_key()
    call_command("revoke_api_key", first.key.prefix)
    call_command("revoke_api_key", second.raw)
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 2
    assert first.client().get("/api/v1/customers").status_code == 401


def test_list_api_keys_shows_no_secrets(make_key, capsys):
    key = make_key()
    key.key.last_used_at = timezone.now() - dt.timedelta(hours=1)
    key.key.save()
    call_command("list_api_keys")
    out = capsys.readouterr().out
    assert key.key.prefix in out
    assert "all stores" in out
    assert key.raw not in out
    assert key.key.hashed_key not in out
