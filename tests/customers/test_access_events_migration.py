"""Migration 0013 merges the access log's rows of one request into one event listing its customers, and backwards
expands them again: nothing lost either way."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from customers.models import AccessEvent
from customers.models import Customer as CurrentCustomer

BEFORE = [("customers", "0012_erasure")]
AFTER = [("customers", "0013_access_events_one_row_per_request")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


def _old_rows(apps):
    fields = ("customer_id", "channel", "api_key_id", "user_id", "fields", "request_id", "path", "at")
    return sorted(apps.get_model("customers", "AccessEvent").objects.values_list(*fields), key=repr)


@pytest.mark.django_db(transaction=True)
def test_one_requests_rows_become_one_event_and_come_back_backwards():
    executor = _migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    store = old.get_model("stores", "Store").objects.create(
        name="Old", catalog_id="old-1", pos_vendor="treez", pos_credentials={}
    )
    Customer = old.get_model("customers", "Customer")
    c1, c2, c3, c4 = (Customer.objects.create(store_id=store.pk, customer_id=f"c{n}") for n in range(1, 5))
    key = old.get_model("stores", "ApiKey").objects.create(name="k", prefix="abc123", hashed_key="0" * 64)
    staff = old.get_model("auth", "User").objects.create(username="clerk")
    Event = old.get_model("customers", "AccessEvent")
    at = dt.datetime(2026, 11, 30, 9, 15, 0, 123456, tzinfo=dt.UTC)
    api = {"channel": "api", "api_key_id": key.pk, "path": "/api/v1/customers", "at": at}
    # One list answer (what one INSERT wrote): three customers with a licence, one with only a birthday.
    for customer in (c1, c2, c3):
        Event.objects.create(customer_id=customer.pk, fields="drivers_license,birthday", request_id="req-a", **api)
    Event.objects.create(customer_id=c4.pk, fields="birthday", request_id="req-a", **api)
    # An answer one of whose customers was erased since (the foreign key SET_NULL).
    Event.objects.create(customer_id=c1.pk, fields="birthday", request_id="req-b", **api)
    Event.objects.create(customer_id=None, fields="birthday", request_id="req-b", **api)
    # A staff member's view of a customer's page; and the same page an hour later.
    admin = {"channel": "admin", "user_id": staff.pk, "fields": "birthday", "path": f"/admin/customers/{c2.pk}/"}
    Event.objects.create(customer_id=c2.pk, request_id="req-c", at=at, **admin)
    Event.objects.create(customer_id=c2.pk, request_id="req-d", at=at + dt.timedelta(hours=1), **admin)
    before = _old_rows(old)

    _migrate(AFTER)

    events = {(e.request_id, e.fields): e for e in AccessEvent.objects.all()}
    assert AccessEvent.objects.count() == len(events) == 5
    listed = events["req-a", "drivers_license,birthday"]
    assert listed.customer_ids == [c1.pk, c2.pk, c3.pk]
    assert (listed.channel, listed.api_key_id, listed.user_id, listed.path, listed.at) == (
        "api",
        key.pk,
        None,
        "/api/v1/customers",
        at,
    )
    assert events["req-a", "birthday"].customer_ids == [c4.pk]
    assert events["req-b", "birthday"].customer_ids == [c1.pk, None]
    assert events["req-c", "birthday"].customer_ids == [c2.pk]
    assert events["req-c", "birthday"].user_id == staff.pk
    _migrate(None)  # "who saw" on PostgreSQL asks for migration 0015's index function
    assert sorted(e.request_id for e in AccessEvent.objects.filter(customer_ids__includes=c2.pk)) == [
        "req-a",
        "req-c",
        "req-d",
    ]
    # A customer deleted after the migration (with its store, say): no foreign key holds it any more.
    AccessEvent.objects.create(customer_ids=[c3.pk, c4.pk], channel="api", api_key_id=key.pk, fields="birthday")
    CurrentCustomer.objects.filter(pk=c3.pk).delete()

    executor = _migrate(BEFORE)
    expanded = _old_rows(executor.loader.project_state(BEFORE).apps)
    # What was there, back; c3 (gone) as NULL, as the foreign key's SET_NULL would have made it.
    gone = [r for r in expanded if r[0] is None and r[5] == "" and r[4] == "birthday"]
    assert [(r[0], r[1]) for r in gone] == [(None, "api")]
    assert [r for r in expanded if r[5] == "" and r not in gone] == [
        (c4.pk, "api", key.pk, None, "birthday", "", "", gone[0][7])
    ]
    was = [(None if r[0] == c3.pk else r[0], *r[1:]) for r in before]
    assert sorted([r for r in expanded if r[5] != ""], key=repr) == sorted(was, key=repr)

    _migrate(None)


def _indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [AccessEvent._meta.db_table])
        return dict(cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_the_index_of_the_ids_blocks_replaces_the_index_of_the_ids_and_back():
    """Migration 0015 builds the index of the ids' blocks and drops the index of the ids (both CONCURRENTLY: not in
    a transaction); backwards the other way round. Events written before are found after, either way."""
    _migrate([("customers", "0014_partial_blind_indexes")])
    assert "access_customers" in _indexes()
    AccessEvent.objects.bulk_create(
        AccessEvent(customer_ids=ids, channel="api", fields="birthday")
        for ids in ([5, 6, 7], [64, None, 65], [6], [], [130])
    )

    _migrate(None)
    indexes = _indexes()
    assert "access_customers" not in indexes
    assert "gin (access_id_blocks(customer_ids) jsonb_path_ops)" in indexes["access_customer_blocks"]

    def including(pk):
        return sorted(e.customer_ids for e in AccessEvent.objects.filter(customer_ids__includes=pk))

    assert including(6) == [[5, 6, 7], [6]]
    assert including(65) == [[64, None, 65]]
    assert including(66) == []  # the same block as 64 and 65
    assert including(130) == [[130]]

    _migrate([("customers", "0014_partial_blind_indexes")])
    indexes = _indexes()
    assert "access_customer_blocks" not in indexes
    assert "gin (customer_ids jsonb_path_ops)" in indexes["access_customers"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = 'access_id_blocks'")
        assert cursor.fetchone()[0] == 0
    _migrate(None)
