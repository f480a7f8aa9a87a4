"""Migration 0011 encrypts what the mirror already holds, and backwards gives it back in clear."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from customers.models import Customer, IdempotencyRecord, RejectedRecord

BEFORE = [("customers", "0010_access_events_and_reveal"), ("stores", "0003_apikey_scopes")]
LICENCE = "D4161227"
CARD = "MMJ-55-0912"
RAW = {"driversLicense": LICENCE, "medicalCard": CARD, "big": 12345678901234567890123, "name": "Zoë"}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


def _table_text(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{table}"')
        return repr(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_existing_rows_are_encrypted_and_indexed_and_come_back_in_clear_backwards():
    executor = _migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    store = old.get_model("stores", "Store").objects.create(
        name="Old", catalog_id="old-1", pos_vendor="treez", pos_credentials={}
    )
    old.get_model("customers", "Customer").objects.create(
        store_id=store.pk, customer_id="c1", drivers_license=LICENCE, medical_card_number=CARD, raw=RAW
    )
    old.get_model("customers", "Customer").objects.create(store_id=store.pk, customer_id="c2")
    old.get_model("customers", "RejectedRecord").objects.create(
        store_id=store.pk, source="sync", reason="bad", payload=RAW
    )
    key = old.get_model("stores", "ApiKey").objects.create(name="k", prefix="abc123", hashed_key="0" * 64)
    old.get_model("customers", "IdempotencyRecord").objects.create(
        api_key_id=key.pk, key="k1", request_hash="0" * 64, response={"customer": {"drivers_license": LICENCE}}
    )

    _migrate(None)

    for table in ("customers_customer", "customers_rejectedrecord", "customers_idempotencyrecord"):
        text = _table_text(table)
        assert LICENCE not in text, table
        assert "MMJ" not in text, table
    c1 = Customer.objects.get(customer_id="c1")
    assert (c1.drivers_license, c1.medical_card_number, c1.raw) == (LICENCE, CARD, RAW)
    assert list(Customer.objects.licence_equal("d416 1227")) == [c1]
    assert list(Customer.objects.card_number_equal("mmj550912")) == [c1]
    c2 = Customer.objects.get(customer_id="c2")
    assert (c2.drivers_license, c2.medical_card_number, c2.raw) == ("", "", {})
    assert RejectedRecord.objects.get().payload == RAW
    assert IdempotencyRecord.objects.get().response == {"customer": {"drivers_license": LICENCE}}

    executor = _migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    back = old.get_model("customers", "Customer").objects.get(customer_id="c1")
    assert (back.drivers_license, back.medical_card_number, back.raw) == (LICENCE, CARD, RAW)
    assert old.get_model("customers", "RejectedRecord").objects.get().payload == RAW
    _migrate(None)
