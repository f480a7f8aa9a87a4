"""Lists reuse the SQL of their shape on PostgreSQL (customers.list_sql): the answers stay exactly those of the
ORM, for any values; with CUSTOMER_LIST_SQL_CACHE off, nothing is kept."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest

from customers import list_sql, selectors
from customers.filters import FILTERS, CustomerFilters
from customers.models import Customer
from customers.selectors import customer_filter
from tests.factories import CustomerFactory, StoreFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]


@pytest.fixture(autouse=True)
def empty_cache(settings):
    settings.CUSTOMER_LIST_SQL_CACHE = True
    list_sql.clear()
    yield
    list_sql.clear()


def ids(body) -> list[int]:
    return [c["id"] for c in body["customers"]]


def orm_ids(store, **filters) -> list[int]:
    """What the ORM answers for these filters within one store (ids in order)."""
    queryset = customer_filter(queryset=Customer.objects.filter(store=store), filters=CustomerFilters(**filters))
    return list(queryset.values_list("id", flat=True))


def without_the_orm():
    """Fails the test if a list is built through the ORM (it must come from the kept SQL)."""
    return mock.patch.object(selectors, "customer_list", side_effect=AssertionError("built through the ORM"))


def test_a_shape_seen_once_answers_any_values_from_its_sql(make_key):
    north, south = StoreFactory(catalog_id="north"), StoreFactory(catalog_id="south")
    for store in (north, south):
        for last in ("Ng", "Ortiz", "Ng"):
            CustomerFactory(store=store, last_name=last, first_name="Ana", phone="5551230000")
    api = make_key().client()  # every store

    first = api.get("/api/v1/customers", {"catalog_id": "north", "last_name": "ng", "page_size": 5}).json()
    assert ids(first) == orm_ids(north, last_name="ng")
    assert len(ids(first)) == 2
    assert list_sql.kept_count() == 1

    with without_the_orm():
        other = api.get("/api/v1/customers", {"catalog_id": "south", "last_name": " ORTIZ ", "page_size": 5}).json()
    assert ids(other) == orm_ids(south, last_name="ortiz")
    assert len(ids(other)) == 1
    assert other["customers"][0]["catalog_id"] == "south"
    # A new page size is a new shape (the limit is in the SQL), and so is the next page (a cursor).
    page = api.get("/api/v1/customers", {"catalog_id": "north", "last_name": "Ng", "page_size": 1}).json()
    api.get(page["next"])
    with without_the_orm():
        page = api.get("/api/v1/customers", {"catalog_id": "south", "last_name": "Ng", "page_size": 1}).json()
        assert len(ids(page)) == 1
        assert page["next"]
    with without_the_orm():
        second = api.get(page["next"]).json()
    assert ids(page) + ids(second) == orm_ids(south, last_name="ng")


def test_keys_of_different_stores_share_a_shape_but_never_their_customers(make_key):
    north, south = StoreFactory(catalog_id="north"), StoreFactory(catalog_id="south")
    mine = CustomerFactory(store=north, email="sam@example.com")
    theirs = CustomerFactory(store=south, email="sam@example.org")
    north_key, south_key = make_key(north).client(), make_key(south).client()

    assert ids(north_key.get("/api/v1/customers", {"email": "SAM@example.com"}).json()) == [mine.pk]
    with without_the_orm():
        assert ids(south_key.get("/api/v1/customers", {"email": "sam@example.com"}).json()) == []
        assert ids(south_key.get("/api/v1/customers", {"email": "sam@example.org"}).json()) == [theirs.pk]


def test_each_filter_answers_through_its_sql_as_through_the_orm(make_key):
    store = StoreFactory(catalog_id="north")
    kept = CustomerFactory(
        store=store,
        first_name="Lee",
        last_name="Park",
        email="lee.park@example.com",
        phone="5559870000",
        drivers_license="D1234567",
        medical_card_number="MMJ-55-0912",
        birthday=dt.date(1990, 5, 17),
        customer_id="POS-77",
        active=False,
        banned=True,
    )
    CustomerFactory.create_batch(3, store=store, birthday=dt.date(1990, 5, 18))
    api = make_key().client()
    requests = {
        "first_name": ("lee", "LEE "),
        "last_name": ("park", " PARK"),
        "phone": ("(555) 987-0000", "+1 555 987 0000"),
        "email": ("Lee.Park@example.com", "lee.park@EXAMPLE.com"),
        "driver_license": ("d-123 4567", "D1234567"),
        "medical_card_number": ("mmj 55 0912", "MMJ550912"),
        "birthday": ("1990-05-17", "1990-05-17"),
        "modified_after": ("2000-01-01T00:00:00Z", "2001-01-01T00:00:00Z"),
        "active": ("false", "false"),
        "banned": ("true", "true"),
    }
    # Every filter of the table whose lists can be kept (a new one gets its values here).
    keepable = {n for n, spec in FILTERS.items() if spec.query and spec.apply and spec.sql != "patterns"}
    assert set(requests) == keepable
    for name, (learn, reuse) in requests.items():
        assert kept.pk in ids(api.get("/api/v1/customers", {name: learn}).json()), name
        with without_the_orm():
            assert kept.pk in ids(api.get("/api/v1/customers", {name: reuse}).json()), name
    with without_the_orm():
        assert ids(api.get("/api/v1/customers", {"birthday": "1990-05-18"}).json()) == orm_ids(
            store, birthday=dt.date(1990, 5, 18)
        )
        assert api.get("/api/v1/customers", {"first_name": "nobody"}).json()["customers"] == []


def test_a_list_whose_values_could_stand_for_each_other_is_not_kept(make_key):
    store = StoreFactory(catalog_id="north")
    same = CustomerFactory(store=store, first_name="Lee", last_name="Lee")
    other = CustomerFactory(store=store, first_name="Lee", last_name="Park")
    api = make_key().client()

    assert ids(api.get("/api/v1/customers", {"first_name": "lee", "last_name": "lee"}).json()) == [same.pk]
    assert list_sql.kept_count() == 0  # which parameter is which cannot be told apart
    assert ids(api.get("/api/v1/customers", {"first_name": "lee", "last_name": "park"}).json()) == [other.pk]
    assert list_sql.kept_count() == 1


def test_the_page_is_the_same_whether_the_sql_is_kept_or_not(make_key):
    store = StoreFactory(catalog_id="north")
    CustomerFactory.create_batch(7, store=store, last_name="Ng", drivers_license="D1234567", medical_card_number="M1")
    api = make_key(store).client()
    learnt = api.get("/api/v1/customers", {"last_name": "ng", "page_size": 3}).json()
    with without_the_orm():
        kept = api.get("/api/v1/customers", {"last_name": "ng", "page_size": 3}).json()
    assert kept == learnt
    # The encrypted columns come back decrypted from the kept SQL too.
    assert {(c["drivers_license"], c["medical_card_number"]) for c in kept["customers"]} == {("D1234567", "M1")}


def test_a_free_text_search_is_never_kept(make_key):
    store = StoreFactory(catalog_id="north")
    sean = CustomerFactory(store=store, first_name="Sean", last_name="Odegaard")
    api = make_key(store).client()
    for text in ("sea", "ode"):
        assert ids(api.get("/api/v1/customers", {"search": text}).json()) == [sean.pk]
    assert list_sql.kept_count() == 0


def test_with_the_setting_off_every_list_is_built_by_the_orm(make_key, settings):
    settings.CUSTOMER_LIST_SQL_CACHE = False
    store = StoreFactory(catalog_id="north")
    ng = CustomerFactory(store=store, last_name="Ng")
    api = make_key(store).client()
    with mock.patch.object(selectors, "customer_list", wraps=selectors.customer_list) as built:
        for last_name in ("ng", "NG"):
            assert ids(api.get("/api/v1/customers", {"last_name": last_name}).json()) == [ng.pk]
    assert built.call_count == 2
    assert list_sql.kept_count() == 0
