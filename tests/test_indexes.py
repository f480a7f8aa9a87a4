"""Every customer lookup the API offers is served by an index (checked in the database's query plans)."""

import datetime as dt

import pytest
from django.db import connection

from customers.models import Customer
from customers.selectors import CustomerFilters, customer_list
from stores.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _never_analyzed_customers(db):
    """Plans for a table the planner has never analyzed, whatever ran before: autovacuum may have analyzed
    customers_customer while it was empty (after another test's committed writes), and then a scan of the primary
    key costs as little as the index under test. TRUNCATE, inside this test's transaction, resets its statistics
    (CASCADE: the access log's rows point at customers, and go with them, rolled back with the test)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'TRUNCATE "{Customer._meta.db_table}" CASCADE')


LOOKUPS = {
    "customer_email_ci": lambda qs: qs.email_equal("Sean@Example.com"),
    "customer_phone": lambda qs: qs.phone_equal("(555) 123-4567"),
    "customer_last_first_ci": lambda qs: qs.last_name_equal("Odegaard"),
    "customer_first_ci": lambda qs: qs.first_name_equal("Sean"),
    "customer_birthday_id": lambda qs: qs.birthday_on(dt.date(1988, 9, 12)),
    "customer_licence_held": lambda qs: qs.licence_equal("d4161227"),
    "customer_card_held": lambda qs: qs.card_number_equal("mmj-0000042"),
    "customer_store_updated": lambda qs: qs.filter(store_id=1).modified_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    "customer_banned": lambda qs: qs.banned_equal(True),
}
# Indexes that may serve a lookup as well as the one named for it (an empty table gives the planner no reason
# to prefer one): the store's cursor index also leads with the store, and on PostgreSQL the name-prefix
# (text_pattern_ops) indexes serve equality too.
ALTERNATIVES = {
    "customer_store_updated": {"customer_store_id"},
    "customer_last_first_ci": {"customer_last_prefix", "customer_store_last_first_ci"},
    "customer_first_ci": {"customer_first_prefix"},
}


@pytest.fixture
def many_customers(db):  # type: ignore[no-untyped-def]
    """A table of a few thousand varied customers, analysed: on an empty (or emptied) table every index costs the
    same to PostgreSQL's planner, and which one it takes depends on what earlier tests left behind."""
    from tests.factories import StoreFactory

    stores = StoreFactory.create_batch(3)
    day = dt.date(1940, 1, 1)
    Customer.objects.bulk_create(
        Customer(
            store=stores[i % 3],
            customer_id=str(i),
            first_name=f"First{i % 97}",
            last_name=f"Last{i % 89}",
            email=f"person{i}@example.com",
            phone=f"{5550000000 + i}",
            birthday=day + dt.timedelta(days=i * 7),
            drivers_license=f"D{i:07d}",
            medical_card_number=f"MMJ{i:07d}" if i % 2 else "",
            pos_updated_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=30 * i),
        )
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer" if connection.vendor == "postgresql" else "ANALYZE")


@pytest.mark.parametrize("index", list(LOOKUPS))
def test_lookup_uses_its_index(index, many_customers):
    queryset = LOOKUPS[index](Customer.objects.all())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A small table still favours a sequential scan; forbid it to see whether an index can serve.
            cursor.execute("SET LOCAL enable_seqscan = off")
    plan = queryset.explain()
    assert any(name in plan for name in {index, *ALTERNATIVES.get(index, ())}), plan


# Filtered lists, ordered by id and cut to a page: the index gives the rows in id order, so PostgreSQL reads one
# page of them rather than every match (then a sort).
ORDERED_LISTS = {
    "customer_store_last_prefix": lambda qs: qs.filter(store_id=1).last_name_equal("Odegaard"),
    "customer_store_first_prefix": lambda qs: qs.filter(store_id=1).first_name_equal("Sean"),
    "customer_last_prefix": lambda qs: qs.first_name_equal("Sean").last_name_equal("Odegaard"),
    "customer_birthday_id": lambda qs: qs.birthday_on(dt.date(1988, 9, 12)),
}


@pytest.mark.postgres_only
@pytest.mark.parametrize("index", list(ORDERED_LISTS))
def test_a_filtered_page_comes_in_id_order_from_its_index(index, many_customers):
    queryset = ORDERED_LISTS[index](Customer.objects.all()).order_by("id")[:21]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")  # a plan that must sort the matches is ruled out if it can be
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    plan = queryset.explain()
    assert index in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.postgres_only
def test_a_store_filtered_api_list_reads_the_store_indexes_in_id_order(store):
    """The API names the store by catalog_id; it must not become a join that hides the store's id from the plan."""
    api_key, _ = api_key_create(name="all stores")
    filters = CustomerFilters(catalog_id=store.catalog_id, last_name="Odegaard")
    queryset = customer_list(api_key=api_key, filters=filters, check_store=False)[:21]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    plan = queryset.explain()
    assert "customer_store_last_prefix" in plan, plan
    assert "Sort Key: customers_customer.id" not in plan, plan
