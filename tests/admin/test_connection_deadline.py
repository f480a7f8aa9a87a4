"""The admin's "Test POS connection" against a hung POS (accepts connections, never answers) says so by the
connection test's deadline, from the store's button and from the list's action."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from stores.models import PosVendor, Store
from tests.factories import StoreFactory
from tests.hanging_pos import HangingServer, Stopwatch

pytestmark = pytest.mark.django_db

SLACK = 1.5


@pytest.fixture
def hung_store(db: Any, settings: Any) -> Iterator[Store]:
    settings.POS_CONNECTION_TEST_DEADLINE_SECONDS = 1.5
    with HangingServer() as server:
        # Treez: the token request is what hangs, inside the connection test's deadline.
        yield StoreFactory(pos_vendor=PosVendor.TREEZ, pos_base_url=server.url)


@pytest.mark.parametrize("via", ["button", "action"])
def test_connection_test_reports_a_hung_pos_by_its_deadline(admin_client, hung_store, via):
    # Timed: the POST that tests the connection (not the page it redirects to, which asks no POS).
    with Stopwatch() as watch:
        if via == "button":
            url = reverse("admin:stores_store_test_connection", args=[hung_store.pk])
            response = admin_client.post(url)
        else:
            data = {"action": "test_connection", "_selected_action": [hung_store.pk]}
            response = admin_client.post(reverse("admin:stores_store_changelist"), data)
    assert response.status_code == 302
    page = admin_client.get(response.url)
    [message] = [str(m) for m in get_messages(page.wsgi_request)]
    assert message.startswith(f"{hung_store}: connection failed — Treez did not answer POST ")
    assert message.endswith("within 1.5 s (1 try)")
    assert 1.5 <= watch.seconds < 1.5 + SLACK
