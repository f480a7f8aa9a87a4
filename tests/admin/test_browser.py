"""End to end in headless Chromium: what staff do in the back office, against a live test server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from pos_integrations.records import CustomerPage, CustomerRecord
from stores.models import Store
from syncs.models import CustomerSync, SyncStatus
from tests.factories import CustomerFactory, CustomerSyncFactory, StoreFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


class FakePos:
    """A POS with two customers on one page: what the retried sync will fetch."""

    overlap = dt.timedelta(0)

    def __init__(self, **kwargs: Any) -> None:
        pass

    def iter_customers(self, modified_since: Any = None, start: Any = None, **kwargs: Any) -> Iterator[CustomerPage]:
        now = timezone.now()
        records = [
            CustomerRecord(
                customer_id="c-1", first_name="Ada", last_name="Byron", phone="5550001111", pos_updated_at=now
            ),
            CustomerRecord(
                customer_id="c-2", first_name="Alan", last_name="Turing", phone="5550002222", pos_updated_at=now
            ),
        ]
        yield CustomerPage(records=records, errors=[], position={"done": True})

    def check_connection(self) -> str:
        return "fake POS reachable"


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)


def log_in(page: Any, live_server: Any) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def test_find_a_failed_sync_from_the_dashboard_and_retry_it(live_server, page, staff, monkeypatch):
    store = StoreFactory(name="Mission Buds")
    monkeypatch.setattr(Store, "pos_client", lambda self, **kwargs: FakePos(**kwargs))
    CustomerSyncFactory(store=store, status=SyncStatus.FINISHED, finished_at=timezone.now() - dt.timedelta(days=1))
    failed = CustomerSyncFactory(
        store=store,
        status=SyncStatus.FAILED,
        started_at=timezone.now() - dt.timedelta(minutes=3),
        finished_at=timezone.now() - dt.timedelta(minutes=2),
        error_type="PosUnavailable",
        error_message="Treez kept answering 503 after 5 attempts",
        invalid=1,
    )
    failed.record_errors.create(
        store=failed.store, source="sync", customer_id="77", reason="birthday: not a date", payload={"id": 77}
    )

    log_in(page, live_server)
    page.click("text=Sync health")
    row = page.locator("#cf-health tr", has_text="Mission Buds")
    assert row.locator(".cf-failures").inner_text() == "1"
    assert row.locator("svg.cf-chart").count() == 1

    row.locator(".cf-failures").click()
    page.click(f"text=#{failed.pk}")
    assert "Treez kept answering 503 after 5 attempts" in page.inner_text("#content-main")
    assert "birthday: not a date" in page.inner_text("#content-main")

    page.click("button:has-text('Retry')")
    page.wait_for_selector(".messagelist .success")
    retried = CustomerSync.objects.exclude(pk=failed.pk).filter(status=SyncStatus.PENDING).get()
    assert f"Retrying sync #{failed.pk}" in page.inner_text(".messagelist")
    # The test server runs no task queue: run the queued sync here, as a worker would.
    retried.do_process()
    page.reload()
    assert page.inner_text(".field-status_display .readonly") == "Finished"
    assert "2" in page.inner_text(".field-fetched .readonly")


def test_add_a_store_and_its_secrets_are_not_rendered_back(live_server, page, staff):
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/stores/store/add/")
    page.fill("#id_name", "LA Bloom")
    page.fill("#id_catalog_id", "la-bloom")
    page.select_option("#id_pos_vendor", "blaze")
    page.fill("#id_cred_partner_key", "partner-SECRET-123")
    page.fill("#id_cred_api_key", "dispensary-SECRET-456")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    store = Store.objects.get(catalog_id="la-bloom")
    assert store.pos_credentials == {"partner_key": "partner-SECRET-123", "api_key": "dispensary-SECRET-456"}
    assert "SECRET" not in page.content()
    assert page.input_value("#id_cred_api_key") == ""
    assert "api_key, partner_key" in page.inner_text(".field-credential_keys")

    # Saving again with the secret fields left blank keeps them.
    page.fill("#id_name", "LA Bloom West")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    store.refresh_from_db()
    assert store.name == "LA Bloom West"
    assert store.pos_credentials["api_key"] == "dispensary-SECRET-456"


def test_find_a_customer_by_phone(live_server, page, staff):
    CustomerFactory.create_batch(3)
    CustomerFactory(first_name="Sean", last_name="Odegaard", phone="5551234567")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/customers/customer/")
    page.fill("#searchbar", "+1 (555) 123-4567")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=*")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Sean Odegaard" in rows.first.inner_text()
