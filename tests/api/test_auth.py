"""API keys: how they are sent, refused, scoped, throttled and recorded."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from api.throttling import ApiKeyRateThrottle
from customers.models import Customer
from stores.models import ApiKey
from stores.services import api_key_revoke
from tests.factories import CustomerFactory, CustomerSyncFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/customers"),
    ("get", "/api/v1/customers/1"),
    ("post", "/api/v1/customers"),
    ("get", "/customers/search?customer_id=1"),
    ("get", "/api/v1/syncs"),
    ("post", "/api/v1/syncs"),
]


def _call(client: APIClient, method: str, url: str):
    return getattr(client, method)(url, {}, format="json") if method == "post" else client.get(url)


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_no_key_gets_401_everywhere(method, url):
    response = _call(APIClient(), method, url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_wrong_key_gets_401_everywhere(method, url, key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.raw}x")
    response = _call(client, method, url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_revoked_key_gets_401_everywhere(method, url, key):
    api_key_revoke(key=key.key)
    response = _call(key.client(), method, url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


def test_other_authorization_scheme_is_refused(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    assert client.get("/api/v1/customers").status_code == 401


def test_x_api_key_header_works(key, store):
    CustomerFactory(store=store)
    response = key.client(header="x-api-key").get("/api/v1/customers")
    assert response.status_code == 200
    assert len(response.json()["customers"]) == 1


def test_query_param_key_works_only_on_the_older_endpoint(key, store):
    CustomerFactory(store=store, customer_id="5027")
    assert APIClient().get(f"/customers/search?api_key={key.raw}&customer_id=5027").status_code == 200
    assert APIClient().get(f"/api/v1/customers?api_key={key.raw}").status_code == 401


def test_last_use_is_recorded_at_most_once_a_minute(key, api):
    assert key.key.last_used_at is None
    api.get("/api/v1/customers")
    first = ApiKey.objects.get(pk=key.key.pk).last_used_at
    assert first is not None
    api.get("/api/v1/customers")
    assert ApiKey.objects.get(pk=key.key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.key.pk).update(last_used_at=timezone.now() - dt.timedelta(minutes=5))
    api.get("/api/v1/customers")
    assert ApiKey.objects.get(pk=key.key.pk).last_used_at > first - dt.timedelta(seconds=1)
    assert ApiKey.objects.get(pk=key.key.pk).last_used_at > timezone.now() - dt.timedelta(minutes=1)


@pytest.mark.redis  # the counts live in the cache: Redis on the Redis pass
def test_requests_beyond_the_rate_get_429_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    statuses = [api.get("/api/v1/customers").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get("/api/v1/customers")
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["retry_after"] == int(response["Retry-After"])


@pytest.mark.redis  # the counts live in the cache: Redis on the Redis pass
def test_the_rate_refills_one_request_at_a_time(api, monkeypatch):
    # 3/min: three at once, then one every 20 seconds; a key left alone for a minute has three again.
    clock = [1_000_000.0]
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: clock[0])

    def statuses(n: int) -> list[int]:
        return [api.get("/api/v1/customers").status_code for _ in range(n)]

    assert statuses(4) == [200, 200, 200, 429]
    clock[0] += 5
    refused = api.get("/api/v1/customers")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "15"
    clock[0] += 15
    assert statuses(2) == [200, 429]
    clock[0] += 60
    assert statuses(4) == [200, 200, 200, 429]


@pytest.mark.redis  # the counts live in the cache: Redis on the Redis pass
def test_a_cache_holding_drf_throttle_lists_from_before_an_upgrade_is_no_error(api, key):
    # DRF's throttle kept a list of request times under "throttle_api_key_<id>"; a shared cache may still hold
    # them (and anything else) when the new code starts.
    for name in (f"throttle_api_key_{key.key.pk}", f"throttle_api_key_bucket_{key.key.pk}"):
        cache.set(name, [1.0, 2.0], 60)
    assert api.get("/api/v1/customers").status_code == 200
    assert api.get("/api/v1/customers").status_code == 200


@pytest.mark.redis  # the counts live in the cache: Redis on the Redis pass
def test_a_rate_of_zero_refuses_every_request(api, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "0/min"})
    response = api.get("/api/v1/customers")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"


@pytest.mark.redis  # the counts live in the cache: Redis on the Redis pass
def test_throttling_counts_per_key(make_key, store, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
    first, second = make_key(store).client(), make_key(store).client()
    assert first.get("/api/v1/customers").status_code == 200
    assert first.get("/api/v1/customers").status_code == 429
    assert second.get("/api/v1/customers").status_code == 200


# ---- a store outside the key's scope: 404, never its data (one test per endpoint) ---------------------


@pytest.fixture
def outsider(other_store):
    return CustomerFactory(store=other_store, customer_id="9001", email="outsider@example.com")


def test_list_never_shows_another_stores_customers(api, store, outsider):
    mine = CustomerFactory(store=store)
    ids = [c["id"] for c in api.get("/api/v1/customers").json()["customers"]]
    assert ids == [mine.pk]
    assert api.get("/api/v1/customers?email=outsider@example.com").json()["customers"] == []


def test_list_with_a_store_outside_the_scope_is_404(api, outsider):
    response = api.get("/api/v1/customers?catalog_id=elsewhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "store_not_found"
    assert "outsider" not in response.content.decode()


def test_fetch_of_another_stores_customer_is_404(api, outsider):
    response = api.get(f"/api/v1/customers/{outsider.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


def test_create_at_a_store_outside_the_scope_is_404(api, other_store, pos):
    body = {"catalog_id": "elsewhere", "customer": {"first_name": "Sean", "last_name": "Odegaard"}}
    response = api.post("/api/v1/customers", body, format="json")
    assert response.status_code == 404
    assert pos.creates == []
    assert not Customer.objects.filter(store=other_store).exists()


def test_older_search_never_shows_another_stores_customers(key, outsider):
    response = APIClient().get(f"/customers/search?api_key={key.raw}&customer_id=9001")
    assert response.status_code == 200
    assert response.json() == {"customers": []}
    response = APIClient().get(f"/customers/search?api_key={key.raw}&customer_id=9001&catalog_id=elsewhere")
    assert response.status_code == 404


def test_sync_status_never_shows_another_store(api, store, other_store):
    CustomerSyncFactory(store=other_store, error_message="secret failure")
    body = api.get("/api/v1/syncs").json()
    assert [s["catalog_id"] for s in body["syncs"]] == [store.catalog_id]
    assert api.get("/api/v1/syncs?catalog_id=elsewhere").status_code == 404


def test_sync_trigger_for_a_store_outside_the_scope_is_404(api, other_store, monkeypatch):
    import syncs.services

    called = []
    monkeypatch.setattr(syncs.services, "sync_trigger", lambda **kw: called.append(kw), raising=False)
    response = api.post("/api/v1/syncs", {"catalog_id": "elsewhere"}, format="json")
    assert response.status_code == 404
    assert called == []


def test_key_for_all_stores_reaches_every_store(make_key, store, other_store):
    CustomerFactory(store=store)
    CustomerFactory(store=other_store)
    response = make_key().client().get("/api/v1/customers")
    assert len(response.json()["customers"]) == 2
