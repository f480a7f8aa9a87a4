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
    assert "API key, Partner key" in page.inner_text(".field-credential_keys")

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


# --- every admin page, as a person sees it ----------------------------------------------------------------

VIEWPORTS = {"1366x768": (1366, 768), "1920x1080": (1920, 1080)}


def back_office_data(staff: Any) -> None:
    """A back office with something on every page, and the long values that break layouts."""
    from decimal import Decimal

    from django.contrib.auth.models import Group
    from django_q.models import Task
    from django_q.tasks import async_task

    from stores.models import SYNC_CLUSTER, SYNC_TASK
    from stores.services import api_key_create

    now = timezone.now()
    oakland = StoreFactory(name="Green Leaf Oakland", catalog_id="greenleaf-oakland", sync_enabled=True)
    bloom = StoreFactory(
        name="LA Bloom Downtown Los Angeles Flagship", catalog_id="la-bloom-downtown-flagship", pos_vendor="blaze"
    )
    StoreFactory(name="Seattle Canopy", catalog_id="seattle-canopy", pos_vendor="covasoft", sync_enabled=False)
    oakland.schedule_customer_sync()
    CustomerFactory(
        store=oakland,
        first_name="Sean",
        last_name="Odegaard",
        phone="5551234567",
        drivers_license="D4161227",
        loyalty_points=Decimal(27),
        raw={"customer_id": "5027"},
    )
    CustomerFactory(
        store=bloom,
        customer_id="68145d6aabbc73ace2096eb6",
        first_name="Christopher",
        last_name="Vanderbilt-Montgomery",
        email="christopher.vanderbilt-montgomery1994@protonmail.com",
        customer_type="medical",
        medical_card_number="MED42216773",
        medical_card_expiration=dt.date(2024, 3, 11),
        active=False,
    )
    CustomerFactory.create_batch(8, store=oakland)
    CustomerSyncFactory(
        store=oakland,
        status=SyncStatus.FINISHED,
        started_at=now - dt.timedelta(hours=2, seconds=5),
        finished_at=now - dt.timedelta(hours=2),
        fetched=2000,
        created=2000,
        cursor_to=now - dt.timedelta(hours=2),
    )
    failed = CustomerSyncFactory(
        store=bloom,
        status=SyncStatus.FAILED,
        trigger="demo",
        started_at=now - dt.timedelta(minutes=3),
        finished_at=now - dt.timedelta(minutes=2),
        fetched=500,
        invalid=2,
        error_type="PosUnavailable",
        error_message="Blaze kept answering 503 Service Unavailable after 5 attempts over 120 s; the sync stopped "
        "at its checkpoint and the next one carries on from there",
        checkpoint={"position": {"start": 1546300800000, "end": 1546905600000, "skip": 500}},
    )
    failed.record_errors.create(
        store=failed.store,
        source="sync",
        customer_id="77",
        reason="birthday: not a date: '13/45/1988'",
        payload={"id": "77", "birthdate": "13/45/1988"},
    )
    failed.record_errors.create(
        store=failed.store, source="sync", customer_id="", reason="the record has no id", payload={"firstName": "Ann"}
    )
    CustomerSyncFactory(store=oakland, status=SyncStatus.IN_PROGRESS, trigger="admin", started_at=now)
    api_key_create(name="online menu", stores=[oakland])
    Group.objects.create(name="Support")
    async_task(SYNC_TASK, oakland.pk, trigger="schedule", cluster=SYNC_CLUSTER)  # a queued task
    for success in (True, False):
        Task.objects.create(
            id=f"{int(success):032d}",
            name=f"task-{success}",
            func=SYNC_TASK,
            args=(oakland.pk,),
            kwargs={},
            started=now,
            stopped=now,
            success=success,
            result="done" if success else "boom",
            cluster=SYNC_CLUSTER,
        )


def admin_pages(live_server_url: str) -> dict[str, str]:
    """Every page of the back office: index, dashboard, app indexes, each changelist and one change (or view)
    page per model that has rows, the store form, and the API docs."""
    from django.contrib import admin
    from django.urls import reverse

    pages = {
        "index": reverse("admin:index"),
        "dashboard": reverse("admin:syncs_dashboard"),
        "failed-syncs": reverse("admin:syncs_customersync_changelist") + "?status__exact=failed",
        "store-add": reverse("admin:stores_store_add"),
        "api-docs": "/api/docs/",
        "api-redoc": "/api/redoc/",
    }
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        pages[f"{opts.app_label}-index"] = reverse("admin:app_list", args=[opts.app_label])
        pages[f"{opts.model_name}-list"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        obj = model_admin.get_queryset(_request(staff_user=True)).order_by("pk").last()
        if obj is not None:
            pages[f"{opts.model_name}-page"] = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
            )
    return {name: live_server_url + url for name, url in sorted(pages.items())}


def _request(*, staff_user: bool) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.filter(is_superuser=staff_user).first()
    return request


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_admin_page_looks_right(live_server, browser, staff, viewport):
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip(
            "pages look the same on either database: the walk runs on the SQLite pass (query counts run on both)"
        )
    from axe_playwright_python.sync_playwright import Axe

    from tests.admin.conftest import ARTIFACTS
    from tests.admin.pagecheck import PageWatcher, block_outside_requests, check_page

    back_office_data(staff)
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(20_000)
    block_outside_requests(context)
    page = context.new_page()
    watcher = PageWatcher(page)
    shots = ARTIFACTS / "admin-pages" / viewport
    shots.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    try:
        log_in(page, live_server)
        reports = [
            check_page(page, watcher, url, screenshot=str(shots / f"{name}.png"), axe=axe)
            for name, url in admin_pages(live_server.url).items()
        ]
    finally:
        context.close()
    assert len(reports) > 25
    problems = [f"{r.url}: {p}" for r in reports for p in r.problems]
    assert not problems, f"{len(problems)} problems at {viewport} (screenshots in {shots}):\n" + "\n".join(problems)


def test_the_store_form_shows_the_chosen_vendors_credential_fields(live_server, page, staff):
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/stores/store/add/")

    def shown() -> set[str]:
        rows = page.locator("fieldset .form-row[class*='field-cred_']")
        return {row.get_attribute("class").split("field-cred_")[1].split()[0] for row in rows.all() if row.is_visible()}

    every = shown()
    assert {"api_key", "partner_key", "private_key", "company_id"} <= every  # no vendor chosen yet: all
    page.select_option("#id_pos_vendor", "blaze")
    assert shown() == {"partner_key", "api_key"}
    page.select_option("#id_pos_vendor", "treez")
    assert shown() == {"dispensary", "client_id", "api_key", "certificate_id", "organization_id", "private_key"}
    page.select_option("#id_pos_vendor", "covasoft")
    assert shown() == {"company_id", "username", "password", "client_id", "client_secret", "token_url"}


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_nothing_from_the_internet(live_server, browser, path):
    from tests.admin.pagecheck import PageWatcher

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    watcher = PageWatcher(page)
    try:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        # The docs rendered the schema: an operation of the API is on the page.
        page.get_by_text("List and search customers").first.wait_for(state="attached")
        assert watcher.outside_requests == []
        assert watcher.console_errors == []
    finally:
        context.close()
