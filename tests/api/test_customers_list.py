"""GET /api/v1/customers: filters, pagination, parameter errors, live POS lookups, query counts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.utils.urls import replace_query_param

from api.pagination import encode_cursor, next_link
from customers.models import Customer
from pos_integrations.errors import PosUnavailable
from pos_integrations.records import Capabilities, CustomerRecord
from tests.factories import CustomerFactory, StoreFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("list_sql_cache")]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["customers"]]


def test_answers_customers_in_the_canonical_shape(api, store):
    customer = CustomerFactory(store=store)
    body = api.get("/api/v1/customers").json()
    assert body == {
        "customers": [Customer.objects.get(pk=customer.pk).to_peak_customer()],
        "next": None,
        "source": "mirror",
    }


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ("first_name=sEAN", "first_name", "Sean"),
        ("last_name=ODEGAARD", "last_name", "Odegaard"),
        ("phone=(555) 123-4567", "phone", "5551234567"),
        ("phone=%2B1 555.123.4567", "phone", "5551234567"),
        ("email=Sean@Example.COM", "email", "sean@example.com"),
        ("driver_license=d416-1227", "drivers_license", "D4161227"),
        ("medical_card_number=mmj 55-0912", "medical_card_number", "MMJ-55-0912"),
        ("birthday=1988-09-12", "birthday", dt.date(1988, 9, 12)),
        ("search=sea", "first_name", "Sean"),
        ("search=odeg", "last_name", "Odegaard"),
        ("search=sean@example.com", "email", "sean@example.com"),
        ("search=555-123-4567", "phone", "5551234567"),
    ],
)
def test_each_filter_finds_its_customer(api, store, query, field, value):
    match = CustomerFactory(store=store, **{field: value})
    CustomerFactory(
        store=store,
        first_name="Jane",
        last_name="Doe",
        email="jane@example.com",
        phone="5550000000",
        drivers_license="X1234567",
        birthday=dt.date(1990, 1, 1),
    )
    assert ids(api.get(f"/api/v1/customers?{query}")) == [match.pk]


def test_filters_combine(api, store, other_store, make_key):
    both = CustomerFactory(store=store, first_name="Sean", last_name="Odegaard")
    CustomerFactory(store=store, first_name="Sean", last_name="Penn")
    CustomerFactory(store=other_store, first_name="Sean", last_name="Odegaard")
    client = make_key().client()
    assert ids(client.get(f"/api/v1/customers?catalog_id={store.catalog_id}&first_name=sean&last_name=odegaard")) == [
        both.pk
    ]


def test_modified_after_and_active(api, store):
    now = timezone.now()
    recent = CustomerFactory(store=store, pos_updated_at=now)
    CustomerFactory(store=store, pos_updated_at=now - dt.timedelta(days=3))
    inactive = CustomerFactory(store=store, active=False, pos_updated_at=now - dt.timedelta(days=3))
    since = (now - dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(api.get("/api/v1/customers", {"modified_after": since})) == [recent.pk]
    assert ids(api.get("/api/v1/customers?active=false")) == [inactive.pk]
    assert inactive.pk not in ids(api.get("/api/v1/customers?active=true"))


def test_banned_filters_and_shows_the_pos_ban_and_the_merge(api, store):
    banned = CustomerFactory(store=store, banned=True, active=False, merged_into_customer_id="5027")
    allowed = CustomerFactory(store=store)

    answer = api.get("/api/v1/customers?banned=true").json()["customers"]
    assert [c["id"] for c in answer] == [banned.pk]
    assert (answer[0]["banned"], answer[0]["active"], answer[0]["merged_into_customer_id"]) == (True, False, "5027")
    assert ids(api.get("/api/v1/customers?banned=false")) == [allowed.pk]
    assert ids(api.get("/api/v1/customers?banned=false&active=false")) == []
    shown = api.get(f"/api/v1/customers/{allowed.pk}").json()["customer"]
    assert (shown["banned"], shown["merged_into_customer_id"]) == (False, None)


def test_cursor_pages_cover_everything_once_in_a_stable_order(api, store):
    made = [CustomerFactory(store=store).pk for _ in range(7)]
    seen, url, pages = [], "/api/v1/customers?page_size=3", 0
    while url:
        body = api.get(url).json()
        seen += [c["id"] for c in body["customers"]]
        url, pages = body["next"], pages + 1
    assert seen == sorted(made)
    assert pages == 3


def test_a_page_stays_put_when_customers_are_added_before_it(api, store):
    first = [CustomerFactory(store=store).pk for _ in range(4)]
    body = api.get("/api/v1/customers?page_size=2").json()
    CustomerFactory(store=store)
    assert ids(api.get(body["next"]))[:2] == first[2:4]


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ("colour=blue", "colour"),
        ("birthday=1988-13-45", "birthday"),
        ("birthday=yesterday", "birthday"),
        ("modified_after=soon", "modified_after"),
        ("active=maybe", "active"),
        ("banned=yes", "banned"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=ten", "page_size"),
        ("cursor=nonsense", "cursor"),
        ("phone=no-digits", "phone"),
        ("email=" + "x" * 300, "email"),
        ("driver_license=%20%20" + "D" * 63, "driver_license"),  # over 64 with its spaces, as the schema counts
        ("first_name=a%00b", "first_name"),
        ("first_name=a&first_name=b", "first_name"),
    ],
)
def test_unknown_or_malformed_parameters_get_400_naming_them(api, query, bad):
    response = api.get(f"/api/v1/customers?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert list(error["fields"]) == [bad]
    assert bad in error["message"]


@pytest.mark.parametrize("name", ["phone", "email", "driver_license", "medical_card_number"])
@pytest.mark.parametrize("value", ["", "%20%20"])
def test_an_empty_identity_lookup_is_a_400_naming_it_not_every_customer(api, store, name, value):
    CustomerFactory(store=store, last_name="Odegaard")
    # An empty name is no filter (a form's blank box); an empty licence is a client's value gone missing.
    response = api.get(f"/api/v1/customers?last_name=&{name}={value}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert error["fields"] == {name: ["Must not be empty: give a value, or leave it out."]}
    assert name in error["message"]
    assert len(ids(api.get("/api/v1/customers?last_name="))) == 1


def test_modified_after_takes_any_offset(api, store):
    customer = CustomerFactory(store=store, pos_updated_at=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC))
    assert ids(api.get("/api/v1/customers", {"modified_after": "2026-01-01T20:00:00+16:00"})) == [customer.pk]
    assert ids(api.get("/api/v1/customers", {"modified_after": "2026-01-01T12:00:00"})) == []


def test_modified_after_beyond_the_years_1_to_9999_in_utc_is_the_earliest_or_latest_time(api, store):
    # Valid ISO 8601 (as the schema's date-time says), only its UTC is out of range: every change, or none.
    customer = CustomerFactory(store=store, pos_updated_at=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC))
    assert ids(api.get("/api/v1/customers", {"modified_after": "0001-01-01T00:00:00+05:00"})) == [customer.pk]
    assert ids(api.get("/api/v1/customers", {"modified_after": "9999-12-31T23:00:00-05:00"})) == []


def test_page_size_has_a_maximum(api, store):
    Customer.objects.bulk_create([Customer(store=store, customer_id=str(n), phone=f"555{n:07d}") for n in range(205)])
    assert len(ids(api.get("/api/v1/customers?page_size=200"))) == 200
    assert len(ids(api.get("/api/v1/customers"))) == 50


# ---- live lookups at the POS -----------------------------------------------------------------------


def record(**values) -> CustomerRecord:
    defaults = {
        "customer_id": "T-77",
        "first_name": "Sean",
        "last_name": "Odegaard",
        "phone": "5551234567",
        "email": "sean@example.com",
        "raw": {"id": "T-77"},
    }
    return CustomerRecord(**{**defaults, **values})


def test_identity_lookup_missing_locally_asks_the_pos_and_keeps_what_it_finds(api, store, pos):
    pos.search_results = [record()]
    response = api.get(f"/api/v1/customers?catalog_id={store.catalog_id}&phone=(555) 123-4567")
    body = response.json()
    assert response.status_code == 200
    assert body["source"] == "pos"
    assert [c["customer_id"] for c in body["customers"]] == ["T-77"]
    assert pos.searches == [{"phone": "(555) 123-4567"}]
    stored = Customer.objects.get(store=store, customer_id="T-77")
    assert stored.raw == {"id": "T-77"}
    assert stored.synced_at is not None
    # The next identical lookup is served by the mirror.
    again = api.get(f"/api/v1/customers?catalog_id={store.catalog_id}&phone=5551234567").json()
    assert again["source"] == "mirror"
    assert len(pos.searches) == 1


def test_key_with_one_store_needs_no_catalog_id_for_a_live_lookup(api, pos):
    pos.search_results = [record()]
    body = api.get("/api/v1/customers?email=SEAN@example.com").json()
    assert body["source"] == "pos"
    assert pos.searches == [{"email": "SEAN@example.com"}]


def test_live_results_must_match_every_filter(api, store, pos):
    pos.search_results = [record(first_name="Other")]
    body = api.get(f"/api/v1/customers?catalog_id={store.catalog_id}&phone=5551234567&first_name=sean").json()
    assert body["customers"] == []
    assert Customer.objects.filter(customer_id="T-77").exists()


def test_pos_that_cannot_search_is_not_asked(api, store, pos):
    pos.capabilities = Capabilities(can_create=False, search_fields=frozenset({"phone"}), incremental=True)
    body = api.get(f"/api/v1/customers?catalog_id={store.catalog_id}&email=sean@example.com").json()
    assert body == {"customers": [], "next": None, "source": "mirror"}
    assert pos.searches == []


def test_local_match_means_no_live_lookup(api, store, pos):
    CustomerFactory(store=store, phone="5551234567")
    assert api.get("/api/v1/customers?phone=5551234567").json()["source"] == "mirror"
    assert pos.searches == []


def test_name_search_is_never_sent_to_the_pos(api, store, pos):
    assert api.get("/api/v1/customers?first_name=sean").json()["customers"] == []
    assert pos.searches == []


def test_failed_live_lookup_still_answers_from_the_mirror_with_a_warning(api, store, pos):
    pos.search_error = PosUnavailable("Treez is down", vendor="treez")
    response = api.get("/api/v1/customers?phone=5551234567")
    assert response.status_code == 200
    body = response.json()
    assert body["customers"] == []
    assert body["source"] == "mirror"
    assert "PosUnavailable" in body["warning"]


def test_key_with_many_stores_needs_catalog_id_for_a_live_lookup(make_key, store, other_store, pos):
    client = make_key(store, other_store).client()
    assert client.get("/api/v1/customers?phone=5551234567").json()["source"] == "mirror"
    assert pos.searches == []


# ---- queries do not grow with results ----------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/customers",
        "/api/v1/customers?last_name=odegaard",
        "/api/v1/customers?catalog_id={catalog_id}&active=true",
        "/customers/search?customer_id=5027",
        "/api/v1/syncs",
    ],
)
def test_queries_per_request_do_not_grow_with_results(make_key, url):
    stores = [StoreFactory(), StoreFactory()]
    client = make_key(*stores).client()
    url = url.format(catalog_id=stores[0].catalog_id)
    for s in stores:
        CustomerFactory(store=s, last_name="Odegaard", customer_id="5027")
    client.get(url)  # the key's first use is recorded once; count the steady state
    few = count_queries(client, url)
    for s in stores:
        for _ in range(10):
            CustomerFactory(store=s, last_name="Odegaard")
    assert count_queries(client, url) == few
    assert few <= 4


# ---- the answer is the canonical representation, whatever the values -------------------------------


def test_lists_and_fetch_answer_exactly_the_canonical_shape_of_every_value(api, store):
    # Lists read plain rows (timestamps as text on PostgreSQL), not model instances: the answer must not change.
    full = CustomerFactory(
        store=store,
        email="",
        phone="",
        gender="X",
        birthday=dt.date(1, 1, 1),
        drivers_license_expiration=dt.date(9999, 12, 31),
        medical_card_number="MC-1",
        medical_card_expiration=dt.date(2027, 2, 28),
        customer_type="medical",
        active=False,
        notes='Line\u2028separator, "quotes", émoji 🌿',
        loyalty_points=Decimal("1234567890.05"),
        pos_created_at=dt.datetime(2024, 2, 24, 12, 0, 0, 120000, tzinfo=dt.UTC),
        pos_updated_at=dt.datetime(2026, 3, 27, 3, 36, 4, 999999, tzinfo=dt.UTC),
        synced_at=None,
    )
    whole = CustomerFactory(
        store=store,
        loyalty_points=Decimal("27.00"),
        pos_updated_at=None,
        birthday=None,
        pos_created_at=dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        synced_at=dt.datetime(2026, 1, 1, 5, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=5))),  # shown in UTC
    )
    expected = {c.pk: Customer.objects.get(pk=c.pk).to_peak_customer() for c in (full, whole)}
    # One format for every time: UTC, to the second (truncated, never later than the time itself), "Z".
    assert expected[full.pk]["pos_created_at"] == "2024-02-24T12:00:00Z"
    assert expected[full.pk]["pos_updated_at"] == "2026-03-27T03:36:04Z"
    assert expected[whole.pk]["pos_created_at"] == "2020-01-02T03:04:05Z"
    assert expected[whole.pk]["synced_at"] == "2026-01-01T00:00:00Z"
    assert expected[whole.pk]["loyalty_points"] == 27
    assert api.get("/api/v1/customers").json()["customers"] == [expected[full.pk], expected[whole.pk]]
    for pk, customer in expected.items():
        assert api.get(f"/api/v1/customers/{pk}").json() == {"customer": customer}
    assert api.get(f"/customers/search?customer_id={full.customer_id}").json() == {"customers": [expected[full.pk]]}


def test_json_is_escaped_like_drfs_renderer(api, store):
    CustomerFactory(store=store, notes="a\u2028b\u2029c")
    content = api.get("/api/v1/customers").content
    assert b"\\u2028" in content
    assert b"\\u2029" in content
    assert "\u2028".encode() not in content


@pytest.mark.parametrize(
    ("accept", "status", "indented"),
    [
        (None, 200, False),
        ("*/*", 200, False),
        ("application/json", 200, False),
        ("application/json; indent=2", 200, True),
        ("text/html, application/json;q=0.9", 200, False),
        ("text/html", 406, False),
    ],
)
def test_content_negotiation(api, store, accept, status, indented):
    CustomerFactory(store=store)
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = api.get("/api/v1/customers", **headers)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert (b'\n  "customers"' in response.content) is indented


def test_api_requests_set_no_session_cookie(api, store):
    response = api.get("/api/v1/customers")
    assert response.status_code == 200
    assert not response.cookies


@pytest.mark.parametrize(
    "query",
    ["", "page_size=2", "last_name=O%27Brien&page_size=2&cursor=abc", "search=ana+mar%C3%ADa&active=true&x=&x=2"],
)
def test_the_next_link_is_drfs_replace_query_param_of_the_request_url(query):
    request = Request(APIRequestFactory().get(f"/api/v1/customers?{query}"))
    expected = replace_query_param(request.build_absolute_uri(), "cursor", encode_cursor(42))
    assert next_link(request, 42) == expected
