"""Who saw personal data: access events from API answers to `pii` keys and from the admin's customer page."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Permission
from django.db import DatabaseError, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule
from rest_framework.test import APIClient

from customers.models import AccessChannel, AccessEvent
from customers.pii_access import access_events_prune
from customers.tasks import PRUNE_SCHEDULE_NAME, PRUNE_TASK
from stores.models import ApiScope
from stores.services import api_key_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def key_client(store, *scopes):
    key, raw = api_key_create(name="checkout", stores=[store], scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return key, client


@pytest.fixture
def people(store):
    return [
        CustomerFactory(store=store, drivers_license=f"D41612{n:02d}", birthday=dt.date(1980, 1, n + 1))
        for n in range(3)
    ]


def test_a_pii_answer_records_each_customer_in_one_insert(store, people):
    key, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/customers", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 200
    inserts = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT") and "accessevent" in q["sql"]
    ]
    assert len(inserts) == 1
    events = list(AccessEvent.objects.order_by("customer_id"))
    assert [e.customer_id for e in events] == [p.pk for p in people]
    for event in events:
        assert event.channel == AccessChannel.API
        assert event.api_key == key
        assert event.user is None
        assert event.fields == "drivers_license,birthday"
        assert event.request_id == "req-42"
        assert event.path == "/api/v1/customers"
    assert response["X-Request-ID"] == "req-42"


def test_the_events_are_written_once_the_answer_is_sent(store, people):
    """Through the WSGI protocol, as gunicorn serves it: the whole body is out before the INSERT, which runs when
    the server closes the response."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    # As Django's test client does: the test's transaction keeps the connection, which a server would recycle.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        served_through_wsgi(store, people)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def served_through_wsgi(store, people):
    from django.core.handlers.wsgi import WSGIHandler

    _, raw = api_key_create(name="checkout", stores=[store], scopes=[ApiScope.CUSTOMERS_READ, ApiScope.PII])
    environ = RequestFactory().get("/api/v1/customers", HTTP_AUTHORIZATION=f"Api-Key {raw}").environ
    statuses: list[str] = []
    answer = WSGIHandler()(environ, lambda status, headers, *_: statuses.append(status))
    body = json.loads(b"".join(answer))
    assert statuses == ["200 OK"]
    assert [c["id"] for c in body["customers"]] == [p.pk for p in people]
    assert not AccessEvent.objects.exists()
    answer.close()
    assert sorted(AccessEvent.objects.values_list("customer_id", flat=True)) == [p.pk for p in people]


def test_events_that_cannot_be_written_are_logged_without_values(store, people, monkeypatch, caplog):
    def refused(**_: object) -> None:
        raise DatabaseError("could not extend file: No space left on device")

    monkeypatch.setattr("customers.pii_access.access_events_write", refused)
    key, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    response = client.get("/api/v1/customers", HTTP_X_REQUEST_ID="req-lost")
    assert response.status_code == 200  # sent before the write was tried
    assert not AccessEvent.objects.exists()
    [record] = [r for r in caplog.records if r.name == "customers.pii_access"]
    assert record.levelname == "ERROR"
    message = record.getMessage()
    assert f"API key {key.pk} saw customers {[p.pk for p in people]}" in message
    assert "['birthday', 'drivers_license']" in message
    assert "req-lost" in message
    for person in people:
        assert person.drivers_license not in caplog.text
        assert person.birthday.isoformat() not in caplog.text


def test_no_value_is_recorded(store, people):
    _, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    client.get(f"/api/v1/customers?driver_license={people[0].drivers_license}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM customers_accessevent")
        rows = " ".join(str(v) for row in cursor.fetchall() for v in row)
    assert rows
    assert people[0].drivers_license not in rows
    assert "1980" not in rows


def test_masked_answers_record_nothing(store, people):
    _, client = key_client(store, ApiScope.CUSTOMERS_READ)
    assert client.get("/api/v1/customers").status_code == 200
    assert not AccessEvent.objects.exists()


def test_a_request_id_is_made_when_none_or_a_strange_one_is_sent(store, people):
    _, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    for sent in ({}, {"HTTP_X_REQUEST_ID": "no spaces allowed"}):
        response = client.get(f"/api/v1/customers/{people[0].pk}", **sent)
        assert len(response["X-Request-ID"]) == 32
    assert AccessEvent.objects.count() == 2
    assert {e.request_id for e in AccessEvent.objects.all()} == {
        r for r in AccessEvent.objects.values_list("request_id", flat=True) if len(r) == 32
    }


def test_the_customer_page_records_its_view_and_lists_who_saw_it(admin_client, admin_user, store, people):
    customer = people[0]
    customer.raw = {"id": customer.customer_id, "drivers_license": customer.drivers_license}
    customer.save()
    key, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    client.get(f"/api/v1/customers/{customer.pk}")
    url = f"/admin/customers/customer/{customer.pk}/change/"
    admin_client.get(url)
    page = admin_client.get(url).content.decode()
    staff_events = AccessEvent.objects.filter(channel=AccessChannel.ADMIN)
    assert staff_events.count() == 2
    assert {e.user for e in staff_events} == {admin_user}
    assert staff_events.first().fields == "birthday"  # the numbers and the vendor JSON are masked until revealed
    assert "Who saw personal data" in page
    assert f"staff {admin_user}" in page  # the first view, listed on the second
    assert f"API key {key}" in page


@pytest.mark.parametrize("term", ["customer", "prefix", "username", "request"])
def test_staff_search_events_by_customer_key_user_or_request(admin_client, admin_user, store, people, term):
    key, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    client.get(f"/api/v1/customers/{people[1].pk}", HTTP_X_REQUEST_ID="req-api")
    admin_client.get(f"/admin/customers/customer/{people[2].pk}/change/", HTTP_X_REQUEST_ID="req-admin")
    query, expected = {
        "customer": (str(people[1].pk), [people[1].pk]),
        "prefix": (key.prefix, [people[1].pk]),
        "username": (admin_user.username, [people[2].pk]),
        "request": ("req-admin", [people[2].pk]),
    }[term]
    response = admin_client.get("/admin/customers/accessevent/", {"q": query})
    assert response.status_code == 200
    assert [e.customer_id for e in response.context["cl"].result_list] == expected


def test_searching_events_needs_its_permission(client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)
    assert client.get("/admin/customers/accessevent/").status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_accessevent"))
    assert client.get("/admin/customers/accessevent/").status_code == 200


def test_old_events_are_pruned_by_a_daily_schedule(settings, store, people):
    settings.PII_ACCESS_RETENTION_DAYS = 30
    now = timezone.now()
    for days in (31, 29):
        AccessEvent.objects.create(
            customer=people[0], channel=AccessChannel.API, fields="birthday", at=now - dt.timedelta(days=days)
        )
    assert access_events_prune(now=now) == 1
    assert [round((now - e.at).days) for e in AccessEvent.objects.all()] == [29]
    schedule = Schedule.objects.get(name=PRUNE_SCHEDULE_NAME)
    assert schedule.func == PRUNE_TASK
    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.next_run > timezone.now()  # not at a cluster's first start


def test_the_customer_page_masks_numbers_until_reveal_which_is_audited(admin_client, store):
    customer = CustomerFactory(
        store=store,
        drivers_license="D4161227",
        medical_card_number="MED42216773",
        raw={"id": "5027", "license": {"number": "d416-1227"}, "card": "MED42216773", "note": "D4161227 in text"},
    )
    url = f"/admin/customers/customer/{customer.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "D4161227" not in page
    assert "d416-1227" not in page
    assert "MED42216773" not in page
    assert "D41•••27" in page
    assert "MED•••73" in page
    assert "D41•••27 in text" in page  # a copy inside a text too
    assert "Reveal licence and card numbers" in page

    revealed = admin_client.post(f"/admin/customers/customer/{customer.pk}/reveal/")
    assert revealed.status_code == 200
    html = revealed.content.decode()
    assert "D4161227" in html
    assert "MED42216773" in html
    assert "d416-1227" in html
    assert "Mask again" in html
    event = AccessEvent.objects.filter(channel=AccessChannel.ADMIN).order_by("id").last()
    assert event.fields == "drivers_license,medical_card_number,birthday,raw"
    assert event.path == f"/admin/customers/customer/{customer.pk}/reveal/"
    # A GET to the reveal address reveals nothing: it goes back to the page.
    assert admin_client.get(f"/admin/customers/customer/{customer.pk}/reveal/").status_code == 302


def test_revealing_needs_its_permission(client, django_user_model, store):
    customer = CustomerFactory(store=store, drivers_license="D4161227")
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(clerk)
    page = client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "D41•••27" in page
    assert "Reveal" not in page
    assert client.post(f"/admin/customers/customer/{customer.pk}/reveal/").status_code == 403
    assert not AccessEvent.objects.filter(fields__contains="drivers_license").exists()
    clerk.user_permissions.add(Permission.objects.get(codename="reveal_customer_pii"))
    clerk = django_user_model.objects.get(pk=clerk.pk)  # permissions are cached per user object
    client.force_login(clerk)
    assert "D4161227" in client.post(f"/admin/customers/customer/{customer.pk}/reveal/").content.decode()
