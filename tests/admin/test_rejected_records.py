"""Rejected POS records: what syncs, live lookups and creates could not store, in one list for staff."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import RecordSource, RejectedRecord
from tests.factories import CustomerSyncFactory, StoreFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_rejectedrecord_changelist")


@pytest.fixture
def rejected(store):
    sync = CustomerSyncFactory(store=store)
    from_sync = sync.record_errors.create(
        store=store, source=RecordSource.SYNC, customer_id="77", reason="birthday is not a date", payload={"id": 77}
    )
    from_lookup = RejectedRecord.objects.create(
        store=store,
        source=RecordSource.LOOKUP,
        customer_id="T-66",
        reason="email is longer than 254 characters",
        payload={"id": "T-66"},
    )
    return sync, from_sync, from_lookup


def test_records_from_syncs_and_live_lookups_are_listed_with_where_they_came_from(admin_client, store, rejected):
    sync, _, from_lookup = rejected

    html = admin_client.get(CHANGELIST).content.decode()

    assert "birthday is not a date" in html
    assert "email is longer than 254 characters" in html
    assert reverse("admin:syncs_customersync_change", args=[sync.pk]) in html
    assert "Live lookup" in html
    lookups = admin_client.get(f"{CHANGELIST}?source__exact=lookup").content.decode()
    assert "T-66" in lookups
    assert "birthday is not a date" not in lookups
    page = admin_client.get(reverse("admin:customers_rejectedrecord_change", args=[from_lookup.pk])).content.decode()
    assert "&quot;id&quot;: &quot;T-66&quot;" in page  # the payload, as the POS sent it


def test_the_list_is_read_only_and_its_queries_do_not_grow_with_rows(admin_client, rejected, count_queries):
    small = count_queries(admin_client, CHANGELIST)
    other = StoreFactory()
    for i in range(10):
        RejectedRecord.objects.create(store=other, source=RecordSource.CREATE, customer_id=str(i), reason="bad")
        CustomerSyncFactory(store=other).record_errors.create(store=other, source=RecordSource.SYNC, reason="bad")
    assert count_queries(admin_client, CHANGELIST) == small
    assert reverse("admin:customers_rejectedrecord_add") not in admin_client.get(CHANGELIST).content.decode()
