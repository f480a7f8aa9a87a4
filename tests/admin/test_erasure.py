"""Erasing customers in the admin: a dedicated permission, a confirmation page that names nobody, the staff user
recorded."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.erasure import suppressed_ids
from customers.models import Customer, CustomerErasure
from tests.factories import CustomerFactory, StoreFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_customer_changelist")


@pytest.fixture
def people() -> list[Customer]:
    store = StoreFactory(name="Mission Buds")
    return [
        CustomerFactory(store=store, customer_id="77", first_name="Sean", last_name="Odegaard", phone="5551234567"),
        CustomerFactory(store=store, customer_id="78", first_name="Ann", last_name="Lee", phone="5559876543"),
        CustomerFactory(store=store, customer_id="79", first_name="Keep", last_name="Me"),
    ]


@pytest.fixture
def clerk(client: Any, django_user_model: Any) -> Any:
    """Staff who may see customers, and nothing more until a test grants it."""
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)
    return user


def grant_erase(client: Any, user: Any) -> None:
    user.user_permissions.add(Permission.objects.get(codename="erase_customer"))
    client.force_login(type(user).objects.get(pk=user.pk))  # a fresh permission cache


def select(*customers: Customer, **extra: str) -> dict[str, Any]:
    return {"action": "erase_customers", "_selected_action": [str(c.pk) for c in customers], **extra}


def test_without_the_permission_there_is_no_erase_action_and_the_page_refuses(client, clerk, people):
    changelist = client.get(CHANGELIST)
    assert changelist.status_code == 200
    assert "erase_customers" not in changelist.content.decode()
    client.post(CHANGELIST, select(people[0], confirm="yes"))
    assert client.get(reverse("admin:customers_customer_erase", args=[people[0].pk])).status_code == 403
    assert (
        client.post(reverse("admin:customers_customer_erase", args=[people[0].pk]), {"confirm": "yes"}).status_code
        == 403
    )
    assert "Erase…" not in client.get(reverse("admin:customers_customer_change", args=[people[0].pk])).content.decode()
    assert Customer.objects.count() == 3
    assert not CustomerErasure.objects.exists()


def test_the_action_asks_first_naming_nobody_then_erases_and_records_the_staff_user(client, clerk, people):
    grant_erase(client, clerk)
    sean, ann, keep = people

    confirm = client.post(CHANGELIST, select(sean, ann))

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Erase <strong>2 customers</strong> from the mirror for good?" in page
    assert "Mission Buds" in page
    assert "POS still holds them" in page
    for shown in ("Sean", "Odegaard", "Ann", "Lee", "5551234567", sean.email, ">77<", ">78<"):
        assert shown not in page, shown
    assert Customer.objects.count() == 3  # nothing erased until confirmed

    done = client.post(CHANGELIST, select(sean, ann, confirm="yes"), follow=True)

    assert done.status_code == 200
    messages = [str(m) for m in done.context["messages"]]
    assert any(m.startswith("Erased 2 customer(s) from the mirror") for m in messages)
    assert any("POS still holds" in m for m in messages)
    assert list(Customer.objects.values_list("customer_id", flat=True)) == [keep.customer_id]
    erasures = CustomerErasure.objects.all()
    assert [(e.user, e.via, e.counts["customers"]) for e in erasures] == [(clerk, "admin", 1)] * 2
    assert suppressed_ids(store_id=keep.store_id, customer_ids=["77", "78", "79"]) == {"77", "78"}


def test_the_customer_page_offers_erase_with_the_same_confirmation(client, clerk, people):
    grant_erase(client, clerk)
    sean = people[0]
    change = client.get(reverse("admin:customers_customer_change", args=[sean.pk])).content.decode()
    url = reverse("admin:customers_customer_erase", args=[sean.pk])
    assert f'href="{url}"' in change

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Erase <strong>1 customer</strong>" in confirm.content.decode()
    assert client.post(url, {}).status_code == 200  # a POST without the confirmation only asks again
    assert Customer.objects.filter(pk=sean.pk).exists()

    assert client.post(url, {"confirm": "yes"}).url == CHANGELIST
    assert not Customer.objects.filter(pk=sean.pk).exists()
    assert CustomerErasure.objects.get().user == clerk
    assert client.get(url).status_code == 404  # gone


def test_erasing_several_waits_once_for_access_events_in_flight(client, clerk, people, late_access_event):
    """With the access-event writer on, an erasure waits for events still in web processes; the action erasing
    several people waits once for all, then cuts each of them out of what was written meanwhile."""
    from customers.models import AccessEvent

    grant_erase(client, clerk)
    sean, ann, keep = people
    waits = late_access_event(sean.pk, keep.pk, ann.pk)
    client.post(CHANGELIST, select(sean, ann, confirm="yes"))
    assert len(waits) == 1
    assert AccessEvent.objects.get(request_id="late").customer_ids == [None, keep.pk, None]
    assert [e.counts["access_events_unlinked"] for e in CustomerErasure.objects.order_by("pk")] == [1, 1]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_confirmation_page_looks_right_and_erases_from_the_changelist(live_server, page, django_user_model):
    from axe_playwright_python.sync_playwright import Axe

    from tests.admin.conftest import ARTIFACTS
    from tests.admin.pagecheck import PageWatcher, block_outside_requests, check_page

    store = StoreFactory(name="Mission Buds of the Extremely Long Store Name District, Oakland")
    sean = CustomerFactory(store=store, first_name="Sean", last_name="Odegaard")
    CustomerFactory.create_batch(2, store=store)
    django_user_model.objects.create_superuser("staff", "staff@example.com", "pw-for-the-browser")
    block_outside_requests(page.context)
    watcher = PageWatcher(page)
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw-for-the-browser")
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")

    ARTIFACTS.mkdir(exist_ok=True)
    url = f"{live_server.url}{reverse('admin:customers_customer_erase', args=[sean.pk])}"
    report = check_page(page, watcher, url, screenshot=str(ARTIFACTS / "erase-confirmation.png"), axe=Axe())
    assert report.problems == []
    assert "Sean" not in page.inner_text("#content")

    # From the changelist: select two, run the action, confirm.
    page.goto(f"{live_server.url}{CHANGELIST}")
    page.locator("#result_list tbody input.action-select").nth(0).check()
    page.locator("#result_list tbody input.action-select").nth(1).check()
    page.select_option("select[name=action]", "erase_customers")
    page.click("button[name=index]")
    page.wait_for_selector("#cf-erase-count")
    assert "Erase 2 customers from the mirror for good?" in page.inner_text("#cf-erase-count")
    assert watcher.console_errors == []
    page.click("input[type=submit][value='Yes, erase 2 customers']")
    page.wait_for_selector(".messagelist .success")
    assert "Erased 2 customer(s)" in page.inner_text(".messagelist")
    assert Customer.objects.count() == 1
    assert CustomerErasure.objects.filter(user__username="staff", via="admin").count() == 2
