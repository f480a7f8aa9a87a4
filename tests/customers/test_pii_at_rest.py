"""Licence and medical card numbers and the vendor JSON are encrypted in the database (issue 18), yet every lookup
by them still finds the customer, through a blind index."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import FieldError
from django.db import connection
from django.urls import reverse

from customers import crypto
from customers.models import Customer, RecordSource, RejectedRecord
from customers.writer import CustomerWriter
from pos_integrations.records import CustomerRecord, RecordError
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LICENCE = "D4161227"
CARD = "MMJ-55-0912"
# What must not appear anywhere in a table, in any form the comparisons accept.
SECRETS = ("D4161227", "4161227", "MMJ-55-0912", "550912", "MMJ55")
NEW_KEY = "new:" + "C" * 43 + "="  # not the test key (t1: "A" * 43)


def table_text(model) -> str:
    """Every row of the model's table as the database holds it, as one text."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{model._meta.db_table}"')
        return repr(cursor.fetchall())


def assert_nothing_in_clear(model) -> None:
    text = table_text(model)
    assert text != "[]"
    for secret in SECRETS:
        assert secret not in text, (model.__name__, secret)


def record(customer_id: str = "T-1", **values) -> CustomerRecord:
    values = {
        "first_name": "Sean",
        "last_name": "Odegaard",
        "drivers_license": LICENCE,
        "medical_card_number": CARD,
        "pos_updated_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        **values,
    }
    raw = {"id": customer_id, "driversLicense": values["drivers_license"], "medicalCard": values["medical_card_number"]}
    return CustomerRecord(customer_id=customer_id, raw=raw, **values)


def write(store, *records: CustomerRecord, errors=()):
    return CustomerWriter.for_store(store, source=RecordSource.SYNC).write(list(records), errors=list(errors)).result()


def test_a_hand_made_customer_is_stored_encrypted_and_read_in_clear(store):
    made = CustomerFactory(store=store, drivers_license=LICENCE, medical_card_number=CARD, raw={"dl": LICENCE})
    assert_nothing_in_clear(Customer)
    with connection.cursor() as cursor:
        cursor.execute('SELECT "drivers_license", "raw" FROM "customers_customer"')
        [(licence, raw)] = cursor.fetchall()
    assert licence.startswith(f"cf1.{crypto.encryption_keys().current_id}.")
    assert raw.startswith("cf1.")
    again = Customer.objects.get(pk=made.pk)
    assert (again.drivers_license, again.medical_card_number, again.raw) == (LICENCE, CARD, {"dl": LICENCE})
    assert again.to_peak_customer()["drivers_license"] == LICENCE
    assert again.to_peak_customer()["medical_card_number"] == CARD


def test_what_the_writer_stores_and_quarantines_is_encrypted(store):
    too_long = record("T-2", first_name="x" * 500)
    unparsable = RecordError(customer_id="T-3", reason="bad date", payload={"driversLicense": LICENCE, "card": CARD})
    result = write(store, record(), too_long, errors=[unparsable])
    assert (result.created, len(result.rejected)) == (1, 2)
    assert_nothing_in_clear(Customer)
    assert_nothing_in_clear(RejectedRecord)
    customer = Customer.objects.get(customer_id="T-1")
    assert (customer.drivers_license, customer.medical_card_number) == (LICENCE, CARD)
    assert customer.raw == {"id": "T-1", "driversLicense": LICENCE, "medicalCard": CARD}
    payloads = {r.customer_id: r.payload for r in RejectedRecord.objects.all()}
    assert payloads["T-3"] == {"driversLicense": LICENCE, "card": CARD}
    assert payloads["T-2"]["driversLicense"] == LICENCE


def test_a_second_identical_write_changes_nothing_and_a_new_licence_is_written_and_found(store):
    assert write(store, record()).created == 1
    assert write(store, record()).unchanged == 1  # fresh ciphertexts, same digest: not "changed"
    changed = write(store, record(drivers_license="N9990001", pos_updated_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)))
    assert changed.updated == 1
    assert list(Customer.objects.licence_equal("n999-0001").values_list("customer_id", flat=True)) == ["T-1"]
    assert not Customer.objects.licence_equal(LICENCE).exists()
    assert Customer.objects.get().raw["driversLicense"] == "N9990001"


def test_lookups_match_the_number_as_compared_through_the_blind_index(store):
    sean = CustomerFactory(store=store, drivers_license=LICENCE, medical_card_number=CARD)
    CustomerFactory(store=store, drivers_license="X1234567", medical_card_number="")
    assert list(Customer.objects.licence_equal(" d416-1227 ")) == [sean]
    assert list(Customer.objects.card_number_equal("mmj 55 0912")) == [sean]
    assert not Customer.objects.licence_equal(CARD).exists()  # a card number is no licence (its own index)
    assert not Customer.objects.card_number_equal("").exists()
    assert list(Customer.objects.filter(medical_card_number="").values_list("drivers_license", flat=True)) == [
        "X1234567"
    ]


@pytest.mark.parametrize(
    "lookup",
    [{"drivers_license": LICENCE}, {"drivers_license__iexact": LICENCE}, {"medical_card_number__in": [CARD]}],
)
def test_a_filter_on_a_ciphertext_is_refused_loudly(lookup):
    with pytest.raises(FieldError, match="encrypted"):
        Customer.objects.filter(**lookup)


def test_during_a_rotation_lookups_find_rows_indexed_under_either_key_and_old_ciphertexts_decrypt(store, settings):
    old = CustomerFactory(store=store, drivers_license=LICENCE, medical_card_number=CARD)
    settings.PII_ENCRYPTION_KEYS = [NEW_KEY, *settings.PII_ENCRYPTION_KEYS]
    settings.PII_BLIND_INDEX_KEYS = [NEW_KEY, *settings.PII_BLIND_INDEX_KEYS]
    new = CustomerFactory(store=store, drivers_license="D-416-1227")
    assert new.pii_index_key == "new"
    assert old.pii_index_key != "new"
    assert set(Customer.objects.licence_equal("d4161227")) == {old, new}
    assert list(Customer.objects.card_number_equal(CARD)) == [old]
    assert Customer.objects.get(pk=old.pk).drivers_license == LICENCE


def test_the_sealer_makes_what_the_functions_make():
    sealer = crypto.Sealer()
    for i in range(300):  # more than one batch of nonces
        token = sealer.encrypt(f"D{i}", purpose=b"customers.drivers_license")
        assert crypto.decrypt(token, purpose="customers.drivers_license") == f"D{i}"
    assert sealer.blind_index("D4161227", purpose="p") == crypto.blind_index("D4161227", purpose="p")
    # Each index of a purpose, the same again, other purposes, other values, a long one: what the function makes.
    for purpose in ("customers.drivers_license", "customers.pii_digest", "p", "p"):
        for value in ("D4161227", "MMJ550912", "Ødegård", "x" * 5000):
            assert sealer.blind_index(value, purpose=purpose) == crypto.blind_index(value, purpose=purpose)
    assert sealer.encrypt("", purpose=b"p") == ""
    assert sealer.blind_index("", purpose="p") == ""
    tokens = {sealer.encrypt(LICENCE, purpose=b"p") for _ in range(50)}
    assert len(tokens) == 50  # a fresh nonce every time


def test_the_admin_finds_by_licence_and_card_number(admin_client, store):
    CustomerFactory(store=store, customer_id="5027", drivers_license=LICENCE, medical_card_number=CARD)
    CustomerFactory(store=store, customer_id="6000", drivers_license="X1", medical_card_number="")
    changelist = reverse("admin:customers_customer_changelist")
    for term, expected in [("d416-1227", {"5027"}), ("mmj 55 0912", {"5027"}), ("x1", {"6000"})]:
        response = admin_client.get(changelist, {"q": term})
        assert {c.customer_id for c in response.context["cl"].result_list} == expected, term
    response = admin_client.get(changelist, {"medical_card": "none"})
    assert {c.customer_id for c in response.context["cl"].result_list} == {"6000"}


@pytest.mark.parametrize("keys", [1, 2], ids=["one index key", "rotating"])
def test_the_licence_lookup_uses_its_btree_index(store, settings, keys):
    if keys == 2:
        settings.PII_BLIND_INDEX_KEYS = [NEW_KEY, *settings.PII_BLIND_INDEX_KEYS]
    Customer.objects.bulk_create(
        Customer(store=store, customer_id=str(i), drivers_license=f"D{i:07d}", medical_card_number=f"M{i}")
        for i in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer" if connection.vendor == "postgresql" else "ANALYZE")
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a small table: does an index serve at all?
    assert "customer_licence_held" in Customer.objects.licence_equal("d0000042").explain()
    assert "customer_card_held" in Customer.objects.card_number_equal("m42").explain()


def test_saving_only_a_number_updates_its_index_and_dumpdata_round_trips_without_clear_text(store):
    from django.core import serializers

    sean = CustomerFactory(store=store, drivers_license=LICENCE, raw={"dl": LICENCE})
    sean.drivers_license = "N9990001"
    sean.save(update_fields=["drivers_license"])
    assert list(Customer.objects.licence_equal("n9990001")) == [sean]
    assert not Customer.objects.licence_equal(LICENCE).exists()

    dumped = serializers.serialize("json", Customer.objects.filter(pk=sean.pk))
    assert "N9990001" not in dumped
    assert LICENCE not in dumped
    [loaded] = serializers.deserialize("json", dumped)
    assert (loaded.object.drivers_license, loaded.object.raw) == ("N9990001", {"dl": LICENCE})
