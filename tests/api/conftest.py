"""Fixtures for the REST API: keys, authenticated clients and a fake POS client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from customers import list_sql
from pos_integrations.errors import PosError
from pos_integrations.records import Capabilities, CustomerInput, CustomerRecord
from stores.models import ApiKey, Store
from stores.services import api_key_create
from tests.factories import StoreFactory


@pytest.fixture(autouse=True)
def _fresh_throttle_counts() -> None:
    # Throttle counts live in the (local-memory) cache, which outlives a test's database.
    cache.clear()


@pytest.fixture(params=[True, False], ids=["kept-sql", "orm-only"])
def list_sql_cache(request: pytest.FixtureRequest, settings: Any) -> bool:
    """Runs a test with CUSTOMER_LIST_SQL_CACHE on and off (customers.list_sql; PostgreSQL only either way),
    starting with no SQL kept."""
    settings.CUSTOMER_LIST_SQL_CACHE = request.param
    list_sql.clear()
    return bool(request.param)


@dataclass
class Key:
    key: ApiKey
    raw: str

    def client(self, *, header: str = "authorization") -> APIClient:
        client = APIClient()
        if header == "authorization":
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {self.raw}")
        else:
            client.credentials(HTTP_X_API_KEY=self.raw)
        return client


@pytest.fixture
def make_key(db: Any) -> Callable[..., Key]:
    def make(*stores: Store, name: str = "test client") -> Key:
        key, raw = api_key_create(name=name, stores=list(stores) if stores else None)
        return Key(key, raw)

    return make


@pytest.fixture
def other_store(db: Any) -> Store:
    return StoreFactory(catalog_id="elsewhere")


@pytest.fixture
def key(make_key: Callable[..., Key], store: Store) -> Key:
    """A key reaching only `store`."""
    return make_key(store)


@pytest.fixture
def api(key: Key) -> APIClient:
    return key.client()


@dataclass
class FakePosClient:
    """Stands in for store.pos_client(): records what it was asked and answers what the test set up."""

    label: str = "Treez"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(
            can_create=True, search_fields=frozenset({"phone", "email", "drivers_license"}), incremental=True
        )
    )
    search_results: list[CustomerRecord] = field(default_factory=list)
    create_result: CustomerRecord | None = None
    create_error: PosError | None = None
    search_error: PosError | None = None
    existing: dict[str, CustomerRecord] = field(default_factory=dict)
    searches: list[dict[str, Any]] = field(default_factory=list)
    creates: list[CustomerInput] = field(default_factory=list)
    on_create: Callable[[], None] | None = None

    def search_customers(self, **filters: Any) -> list[CustomerRecord]:
        self.searches.append(filters)
        if self.search_error:
            raise self.search_error
        return list(self.search_results)

    def create_customer(self, data: CustomerInput) -> CustomerRecord:
        self.creates.append(data)
        if self.on_create:
            self.on_create()
        if self.create_error:
            raise self.create_error
        if self.create_result is not None:
            return self.create_result
        customer_id = f"POS-{len(self.creates)}"
        return data.as_record(customer_id, raw={"id": customer_id})

    def get_customer(self, customer_id: str) -> CustomerRecord | None:
        return self.existing.get(customer_id)


@pytest.fixture
def pos(monkeypatch: pytest.MonkeyPatch) -> FakePosClient:
    """Every store's POS client is this fake."""
    fake = FakePosClient()
    monkeypatch.setattr(Store, "pos_client", lambda self, **kwargs: fake)
    return fake
