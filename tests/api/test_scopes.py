"""API key scopes: customers:read, customers:write, syncs, pii. Without `pii` a key's answers mask licence and
medical card numbers and birthdays, though it may still look customers up by them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from api.permissions import required_scope
from customers.api.pii import mask_number
from stores.models import ApiKey, ApiScope
from stores.services import api_key_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

# (method, path, the scope it needs)
ENDPOINTS = [
    ("get", "/api/v1/customers", ApiScope.CUSTOMERS_READ),
    ("post", "/api/v1/customers/search", ApiScope.CUSTOMERS_READ),
    ("get", "/api/v1/customers/{id}", ApiScope.CUSTOMERS_READ),
    ("get", "/customers/search?customer_id=5027", ApiScope.CUSTOMERS_READ),
    ("post", "/api/v1/customers", ApiScope.CUSTOMERS_WRITE),
    ("get", "/api/v1/syncs", ApiScope.SYNCS),
    ("post", "/api/v1/syncs", ApiScope.SYNCS),
]


def client_with(*scopes: str, store=None) -> APIClient:
    _, raw = api_key_create(name="scoped", stores=[store] if store else None, scopes=scopes)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def call(client: APIClient, method: str, path: str, customer):
    url = path.replace("{id}", str(customer.pk))
    return client.post(url, {}, format="json") if method == "post" else client.get(url)


@pytest.fixture
def customer(store):
    return CustomerFactory(
        store=store,
        customer_id="5027",
        phone="5551234567",
        drivers_license="D4161227",
        medical_card_number="MED42216773",
        birthday=dt.date(1988, 9, 12),
    )


def test_the_schema_lists_exactly_these_endpoints():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    documented = {(m, p) for p, item in schema["paths"].items() for m in item}
    assert documented == {(m, p.split("?")[0]) for m, p, _ in ENDPOINTS}
    for method, path, scope in ENDPOINTS:
        operation = schema["paths"][path.split("?")[0]][method]
        assert f"Needs the API key scope `{scope}`." in operation["description"]
        assert "403" in operation["responses"]


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_a_key_without_the_scope_gets_403_and_with_it_gets_through(store, customer, method, path, scope):
    others = [s for s in ApiScope.values if s != scope]
    refused = call(client_with(*others, store=store), method, path, customer)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {"code": "insufficient_scope", "message": f"This API key lacks the '{scope}' scope."}
    }
    allowed = call(client_with(scope, store=store), method, path, customer)
    assert allowed.status_code != 403, allowed.content


def test_every_api_view_names_its_scope():
    from django.urls import get_resolver

    def views(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from views(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern.callback

    checked = 0
    for route, callback in views(get_resolver().url_patterns):
        cls = getattr(callback, "cls", None)
        if cls is None or not (route.startswith("api/v1/") or route.startswith("customers/")):
            continue
        actions = getattr(callback, "actions", None) or {m: m for m in ("get", "post") if hasattr(cls, m)}
        for method, action in actions.items():
            view = cls()
            view.action = action
            assert required_scope(view, method) in ApiScope.values, (route, method)
            checked += 1
    assert checked >= len(ENDPOINTS)


def test_without_pii_numbers_are_masked_and_birthdays_null_in_every_answer(store, customer):
    client = client_with(ApiScope.CUSTOMERS_READ, store=store)
    answers = [
        client.get("/api/v1/customers").json()["customers"][0],
        client.get(f"/api/v1/customers/{customer.pk}").json()["customer"],
        client.post("/api/v1/customers/search", {"phone": "5551234567"}, format="json").json()["customers"][0],
        client.get("/customers/search?customer_id=5027").json()["customers"][0],
    ]
    for answer in answers:
        assert answer["drivers_license"] == "D41•••27"
        assert answer["medical_card_number"] == "MED•••73"
        assert answer["birthday"] is None
        assert answer["phone"] == "5551234567"  # contact details are not masked


def test_without_pii_a_key_may_still_look_up_by_licence(store, customer):
    client = client_with(ApiScope.CUSTOMERS_READ, store=store)
    found = client.get("/api/v1/customers?driver_license=d416-1227").json()["customers"]
    assert [c["id"] for c in found] == [customer.pk]
    assert found[0]["drivers_license"] == "D41•••27"
    body = client.post("/api/v1/customers/search", {"driver_license": "D4161227"}, format="json").json()
    assert [c["id"] for c in body["customers"]] == [customer.pk]


def test_with_pii_the_answer_is_whole(store, customer):
    client = client_with(ApiScope.CUSTOMERS_READ, ApiScope.PII, store=store)
    answer = client.get(f"/api/v1/customers/{customer.pk}").json()["customer"]
    assert answer == customer.to_peak_customer() | {"birthday": "1988-09-12"} | {
        k: answer[k] for k in ("synced_at", "pos_created_at", "pos_updated_at")
    }
    assert answer["drivers_license"] == "D4161227"
    assert answer["medical_card_number"] == "MED42216773"


def test_a_create_answer_is_masked_too(store, pos):
    client = client_with(ApiScope.CUSTOMERS_WRITE, store=store)
    response = client.post(
        "/api/v1/customers",
        {
            "catalog_id": store.catalog_id,
            "customer": {
                "first_name": "Ann",
                "last_name": "Lee",
                "drivers_license": "Q99887766",
                "birthday": "1990-01-02",
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["customer"]["drivers_license"] == "Q99•••66"
    assert response.json()["customer"]["birthday"] is None


@pytest.mark.parametrize(
    ("value", "masked"), [("D4161227", "D41•••27"), ("AB123", "•••"), ("", ""), ("123456", "123•••56")]
)
def test_mask_number(value, masked):
    assert mask_number(value) == masked


def test_create_api_key_takes_scopes_and_defaults_to_no_pii(capsys):
    call_command("create_api_key", "menu")
    assert ApiKey.objects.get(name="menu").scopes == ["customers:read", "customers:write", "syncs"]
    call_command("create_api_key", "checkout", "--scope", "customers:read,pii", "--scope", "syncs")
    assert ApiKey.objects.get(name="checkout").scopes == ["customers:read", "syncs", "pii"]
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", "oops", "--scope", "customers:delete")
    capsys.readouterr()
    call_command("list_api_keys")
    out = capsys.readouterr().out
    assert "scopes: customers:read, syncs, pii" in out
    assert "scopes: customers:read, customers:write, syncs" in out


def test_the_admin_sets_scopes(admin_client):
    key, _ = api_key_create(name="menu", scopes=[ApiScope.CUSTOMERS_READ])
    url = f"/admin/stores/apikey/{key.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'type="checkbox" name="scopes" value="pii"' in page
    response = admin_client.post(
        url,
        {
            "name": "menu",
            "all_stores": "on",
            "scopes": ["customers:read", "pii"],
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    key.refresh_from_db()
    assert key.scopes == ["customers:read", "pii"]


@pytest.mark.django_db(transaction=True)
def test_keys_made_before_scopes_keep_every_scope():
    executor = MigrationExecutor(connection)
    executor.migrate([("stores", "0002_store_time_zone")])
    old_apps = executor.loader.project_state([("stores", "0002_store_time_zone")]).apps
    old_apps.get_model("stores", "ApiKey").objects.create(name="old", prefix="abc123", hashed_key="0" * 64)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert ApiKey.objects.get(name="old").scopes == ["customers:read", "customers:write", "syncs", "pii"]
