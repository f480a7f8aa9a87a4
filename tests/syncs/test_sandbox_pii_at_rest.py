"""A sync of the POS sandbox's customers leaves no licence or medical card number in clear in the database, and the
mirror still finds each customer by them (issue 18)."""

from __future__ import annotations

import pytest
from django.db import connection

from customers.models import Customer
from syncs.models import SyncKind, SyncStatus
from syncs.services import sync_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.mark.parametrize("vendor", ["treez", "blaze"])  # the sandbox vendors that carry both numbers
def test_a_sandbox_sync_stores_no_number_in_clear_and_finds_each_by_it(sandbox_store, vendor):
    server, store = sandbox_store(vendor, customers=400, seed=5)
    sync = sync_create(store=store, kind=SyncKind.FULL, trigger="manual")[0].do_process()
    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)

    client = store.pos_client()
    records = [client.parse_record(raw) for raw in server.vendor_records(vendor)]
    licences = {r.customer_id: r.drivers_license for r in records if r.drivers_license}
    cards = {r.customer_id: r.medical_card_number for r in records if r.medical_card_number}
    assert len(licences) > 200
    assert len(cards) > 50
    with connection.cursor() as cursor:
        cursor.execute('SELECT * FROM "customers_customer"')
        table = repr(cursor.fetchall())
    assert [n for n in [*licences.values(), *cards.values()] if n in table] == []

    for customer_id, licence in list(licences.items())[:25]:
        found = Customer.objects.licence_equal(licence.lower()).values_list("customer_id", flat=True)
        assert customer_id in found
    for customer_id, card in list(cards.items())[:25]:
        assert customer_id in Customer.objects.card_number_equal(card).values_list("customer_id", flat=True)
    held = Customer.objects.get(store=store, customer_id=next(iter(licences)))
    assert held.drivers_license == licences[held.customer_id]


def test_dutchies_licence_hash_stays_as_the_vendor_sends_it(sandbox_store):
    server, store = sandbox_store("leaflogix", customers=50, seed=5)
    sync = sync_create(store=store, kind=SyncKind.FULL, trigger="manual")[0].do_process()
    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    sent = {str(raw["customerId"]): raw for raw in server.vendor_records("leaflogix")}
    hashed = [cid for cid, raw in sent.items() if raw.get("driversLicenseHash")]
    assert hashed
    for customer in Customer.objects.filter(store=store, customer_id__in=hashed):
        assert customer.raw["driversLicenseHash"] == sent[customer.customer_id]["driversLicenseHash"]
        assert customer.drivers_license == ""  # a hash is not a number to look up by
