"""A hung POS (accepts connections, never answers) holds an API request no longer than the call's deadline:
a live lookup answers from the mirror with its warning, a create answers 503 in the one error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from customers.models import Customer
from stores.models import PosVendor, Store
from tests.factories import StoreFactory
from tests.hanging_pos import HangingServer, Stopwatch

pytestmark = pytest.mark.django_db

SLACK = 1.5  # seconds an answer may come after the deadline (the request's own work on a busy machine)


@pytest.fixture
def hung_store(db: Any) -> Iterator[Store]:
    with HangingServer() as server:
        yield StoreFactory(catalog_id="hung", pos_vendor=PosVendor.LEAFLOGIX, pos_base_url=server.url)


def test_a_live_lookup_answers_from_the_mirror_with_its_warning_by_the_deadline(settings, make_key, hung_store):
    settings.POS_LOOKUP_DEADLINE_SECONDS = 1.0
    api = make_key(hung_store).client()
    with Stopwatch() as watch:
        response = api.get("/api/v1/customers", {"catalog_id": "hung", "phone": "5551234567"})
    assert response.status_code == 200
    body = response.json()
    assert (body["customers"], body["source"]) == ([], "mirror")
    assert body["warning"] == "The store's POS could not be asked live (PosUnavailable)."
    assert 1.0 <= watch.seconds < 1.0 + SLACK


@pytest.mark.slow
def test_with_the_default_deadline_a_live_lookup_answers_within_5_seconds(make_key, hung_store):
    api = make_key(hung_store).client()
    with Stopwatch() as watch:
        response = api.get("/api/v1/customers", {"catalog_id": "hung", "email": "ann@example.com"})
    assert response.status_code == 200
    assert "warning" in response.json()
    assert 4.5 <= watch.seconds < 5.0 + SLACK


def test_a_create_answers_503_by_the_deadline(settings, make_key, hung_store):
    settings.POS_CREATE_DEADLINE_SECONDS = 1.5
    api = make_key(hung_store).client()
    body = {
        "catalog_id": "hung",
        "customer": {"first_name": "Ann", "last_name": "Lee", "birthday": "1990-02-03", "phone": "5551234567"},
    }
    with Stopwatch() as watch:
        response = api.post("/api/v1/customers", body, format="json")
    assert response.status_code == 503
    error = {"code": "pos_unavailable", "message": "The store's POS is unavailable; retry later.", "retry_after": 30}
    assert response.json() == {"error": error}
    assert 1.5 <= watch.seconds < 1.5 + SLACK
    assert not Customer.objects.filter(store=hung_store).exists()


@pytest.mark.parametrize("head_at_once", [False, True], ids=["all-trickles", "body-trickles"])
def test_a_live_lookup_at_a_trickling_pos_answers_from_the_mirror_by_the_deadline(settings, make_key, head_at_once):
    # A byte every 0.3 s: every read gets one well within its timeout, so only the call's total deadline can stop it.
    settings.POS_LOOKUP_DEADLINE_SECONDS = 1.0
    with HangingServer(trickle=0.3, head_at_once=head_at_once) as server:
        store = StoreFactory(catalog_id="trickle", pos_vendor=PosVendor.LEAFLOGIX, pos_base_url=server.url)
        api = make_key(store).client()
        with Stopwatch() as watch:
            response = api.get("/api/v1/customers", {"catalog_id": "trickle", "phone": "5551234567"})
    assert response.status_code == 200
    body = response.json()
    assert (body["customers"], body["source"]) == ([], "mirror")
    assert body["warning"] == "The store's POS could not be asked live (PosUnavailable)."
    assert 1.0 <= watch.seconds < 1.0 + SLACK
