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
from customers.pii_access import access_events_prune, access_events_unlink
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


def test_a_pii_answer_records_its_customers_in_one_row(store, people):
    key, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/customers", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 200
    writes = ("INSERT", "COPY")  # COPY on PostgreSQL
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(writes) and "accessevent" in q["sql"]]
    assert len(inserts) == 1
    [event] = AccessEvent.objects.all()
    assert event.customer_ids == [c["id"] for c in response.json()["customers"]]
    assert sorted(event.customer_ids) == [p.pk for p in people]
    assert event.channel == AccessChannel.API
    assert event.api_key == key
    assert event.user is None
    assert event.fields == "drivers_license,birthday"
    assert event.request_id == "req-42"
    assert event.path == "/api/v1/customers"
    assert response["X-Request-ID"] == "req-42"


def test_an_event_lists_the_customers_showing_personal_data_and_the_fields_any_of_them_shows(store, people):
    bare = CustomerFactory(store=store, birthday=None)
    carded = CustomerFactory(store=store, medical_card_number="MED42216773", birthday=None)
    _, client = key_client(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    assert client.get("/api/v1/customers").status_code == 200
    [event] = AccessEvent.objects.all()
    assert sorted(event.customer_ids) == sorted([p.pk for p in people] + [carded.pk])
    assert bare.pk not in event.customer_ids  # showed nothing personal
    assert event.fields == "drivers_license,medical_card_number,birthday"


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
    [event] = AccessEvent.objects.all()
    assert event.customer_ids == [p.pk for p in people]


def test_events_that_cannot_be_written_are_logged_without_values(store, people, monkeypatch, caplog):
    def refused(*_: object) -> None:
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
    assert [e.customer_ids for e in response.context["cl"].result_list] == [expected]


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
            customer_ids=[people[0].pk], channel=AccessChannel.API, fields="birthday", at=now - dt.timedelta(days=days)
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


def api_event(*customer_ids, **fields):
    return AccessEvent.objects.create(
        customer_ids=list(customer_ids), channel=AccessChannel.API, fields="birthday", **fields
    )


def test_events_that_include_a_customer(store):
    """The lookup "who saw this customer" uses, on both databases: an id anywhere in a list, not a null, not a
    string."""
    first = api_event(7, 8, 9)
    second = api_event(None, 8, request_id="r2")
    api_event(78, 97, None)
    api_event()

    def including(value):
        return sorted(e.pk for e in AccessEvent.objects.filter(customer_ids__includes=value))

    assert including(8) == [first.pk, second.pk]
    assert including(9) == [first.pk]
    assert including("7") == [first.pk]  # as an admin URL sends it
    assert including(1) == []
    assert including(10) == []  # on PostgreSQL the index finds 7, 8, 9's event (the same block of 64): not listed
    assert including(64) == []
    others = AccessEvent.objects.exclude(customer_ids__includes=8).values_list("customer_ids", flat=True)
    assert sorted(others, key=len) == [[], [78, 97, None]]
    with pytest.raises(ValueError, match="invalid literal"):
        AccessEvent.objects.filter(customer_ids__includes="8 OR 1=1")
    with pytest.raises(ValueError, match="Not a customer id"):
        AccessEvent.objects.filter(customer_ids__includes=2**63)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index is PostgreSQL's")
def test_who_saw_a_customer_is_served_by_an_index_on_postgresql(store):
    """A customer's page asks for its latest events among many: the GIN index finds them, not a walk back through
    every event in time order (which a table of a few rows makes as cheap, hence the thousands, analyzed)."""
    AccessEvent.objects.bulk_create(
        AccessEvent(customer_ids=[1000 + i, 2000 + i], channel=AccessChannel.API, fields="birthday")
        for i in range(3000)
    )
    api_event(7, 8, 9)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {AccessEvent._meta.db_table}")
    query = AccessEvent.objects.filter(customer_ids__includes=8).order_by("-at")[:20]
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "access_customer_blocks" in plan, plan


def test_erasure_cuts_the_customer_out_of_every_event_and_keeps_the_events(store, people):
    erased, kept = people[0].pk, people[1].pk
    both = api_event(erased, kept)
    alone = api_event(erased)
    other = api_event(kept)
    assert access_events_unlink(erased) == 2
    both.refresh_from_db()
    alone.refresh_from_db()
    other.refresh_from_db()
    assert both.customer_ids == [None, kept]
    assert alone.customer_ids == [None]
    assert other.customer_ids == [kept]
    assert not AccessEvent.objects.filter(customer_ids__includes=erased).exists()


def test_the_log_names_each_events_customers_in_one_query(admin_client, store, people, django_assert_max_num_queries):
    gone = CustomerFactory(store=store)
    gone_pk = gone.pk
    gone.delete()  # with its store, say: an id that names no row
    many = [CustomerFactory(store=store) for _ in range(4)]
    api_event(people[0].pk, None, gone_pk, request_id="req-3")
    api_event(*[p.pk for p in people], *[c.pk for c in many], request_id="req-7")
    page = admin_client.get("/admin/customers/accessevent/").content.decode()
    assert f"{people[0].pk} (POS id {people[0].customer_id})</a>, (removed), (removed)" in page
    assert f"(POS id {many[1].customer_id})</a> and 2 more" in page
    assert f"(POS id {many[2].customer_id})" not in page
    for n in range(20):
        api_event(people[n % 3].pk, many[n % 4].pk)
    with django_assert_max_num_queries(8):
        assert admin_client.get("/admin/customers/accessevent/").status_code == 200


def test_the_customer_pages_link_lists_every_access_to_that_customer(admin_client, store, people):
    mine = api_event(people[0].pk, people[1].pk)
    api_event(people[1].pk)
    response = admin_client.get("/admin/customers/accessevent/", {"customer_ids__includes": str(people[0].pk)})
    assert [e.pk for e in response.context["cl"].result_list] == [mine.pk]
    # A customer searched by POS id: every store's customer with it.
    here = CustomerFactory(store=store, customer_id="pos-77")
    there = CustomerFactory(customer_id="pos-77")
    seen = [api_event(here.pk).pk, api_event(people[2].pk, there.pk).pk]
    response = admin_client.get("/admin/customers/accessevent/", {"q": "pos-77"})
    assert sorted(e.pk for e in response.context["cl"].result_list) == seen
    # Not an id: the admin's "invalid lookup" page, not an error.
    assert admin_client.get("/admin/customers/accessevent/", {"customer_ids__includes": "x"}).status_code == 302
