"""When a store's POS rate budget cannot be had within a call's deadline, the API answers at once as for a POS
that did not answer in time: a live lookup from the mirror with its warning, a create 503; nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest

from customers.models import Customer
from pos_integrations.deadlines import Deadline
from pos_integrations.ratelimit import MemoryBucketStore, RateLimit
from stores.models import PosVendor, Store
from tests.factories import StoreFactory
from tests.hanging_pos import HangingServer, Stopwatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def spent_store(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A LeafLogix store (at a POS that would never answer) whose budget of two a minute is used up."""
    settings.POS_RATE_LIMIT_ENABLED = True
    settings.POS_RATE_LIMITS = {"leaflogix": RateLimit(2, 60.0)}
    budgets = MemoryBucketStore()  # the budgets every client of this test shares (the database's in production)
    monkeypatch.setattr("stores.ratelimit.bucket_store", lambda: budgets)
    with HangingServer() as server:
        store: Store = StoreFactory(catalog_id="spent", pos_vendor=PosVendor.LEAFLOGIX, pos_base_url=server.url)
        limiter = store.pos_client().http.limiter
        assert limiter is not None
        for _ in range(2):
            limiter.acquire(Deadline(5.0, interactive=True), interactive=True)
        yield store


def test_a_live_lookup_without_budget_answers_from_the_mirror_at_once(make_key, spent_store):
    api = make_key(spent_store).client()
    assert api.get("/api/v1/customers", {"catalog_id": "spent"}).status_code == 200  # the first request's imports
    with Stopwatch() as watch:
        response = api.get("/api/v1/customers", {"catalog_id": "spent", "phone": "5551234567"})
    assert response.status_code == 200
    body = response.json()
    assert (body["customers"], body["source"]) == ([], "mirror")
    assert body["warning"] == "The store's POS could not be asked live (PosUnavailable)."
    assert watch.seconds < 1.0  # not the 5 s deadline of a POS that does not answer: nothing was sent


def test_a_create_without_budget_answers_503_at_once(make_key, spent_store):
    api = make_key(spent_store).client()
    assert api.get("/api/v1/customers", {"catalog_id": "spent"}).status_code == 200  # the first request's imports
    body = {
        "catalog_id": "spent",
        "customer": {"first_name": "Ann", "last_name": "Lee", "birthday": "1990-02-03", "phone": "5551234567"},
    }
    with Stopwatch() as watch:
        response = api.post("/api/v1/customers", body, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "pos_unavailable"
    assert watch.seconds < 1.0
    assert not Customer.objects.filter(store=spent_store).exists()
