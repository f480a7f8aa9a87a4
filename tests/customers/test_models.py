import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from customers.models import PEAK_KEYS, Customer, peak_customer, phone_digits
from tests.factories import CustomerFactory, StoreFactory

pytestmark = pytest.mark.django_db


def test_same_pos_id_twice_in_one_store_is_rejected(store):
    CustomerFactory(store=store, customer_id="5027")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFactory(store=store, customer_id="5027")
    assert Customer.objects.filter(store=store, customer_id="5027").count() == 1


def test_same_pos_id_in_two_stores_is_allowed():
    CustomerFactory(customer_id="5027")
    CustomerFactory(customer_id="5027")
    assert Customer.objects.filter(customer_id="5027").count() == 2


def test_active_scope_leaves_out_inactive(store):
    kept = CustomerFactory(store=store, active=True)
    CustomerFactory(store=store, active=False)
    assert list(Customer.objects.active()) == [kept]


def test_email_equal_ignores_case_and_spaces(store):
    sean = CustomerFactory(store=store, email="Sean.Odegaard@Example.com")
    CustomerFactory(store=store, email="someone@example.com")
    assert list(Customer.objects.email_equal("  sean.odegaard@EXAMPLE.COM ")) == [sean]


@pytest.mark.parametrize("query", ["(555) 123-4567", "555.123.4567", "+1 555 123 4567", "5551234567"])
def test_phone_equal_matches_on_digits_in_any_format(store, query):
    match = CustomerFactory(store=store, phone="5551234567")
    CustomerFactory(store=store, phone="5551234568")
    assert list(Customer.objects.phone_equal(query)) == [match]


def test_phone_equal_with_no_digits_matches_nothing(store):
    CustomerFactory(store=store, phone="")
    assert not Customer.objects.phone_equal("n/a").exists()


def test_phone_digits_drops_us_country_code():
    assert phone_digits("+1 (555) 123-4567") == "5551234567"
    assert phone_digits("") == ""


def test_name_like_matches_name_starts_ignoring_case(store):
    sean = CustomerFactory(store=store, first_name="Sean", last_name="Odegaard")
    CustomerFactory(store=store, first_name="Jane", last_name="Doe")
    assert list(Customer.objects.name_like("sea")) == [sean]
    assert list(Customer.objects.name_like("ODE")) == [sean]
    assert list(Customer.objects.name_like("sean odeg")) == [sean]
    assert not Customer.objects.name_like("sean doe").exists()


def test_birthday_and_licence_lookups(store):
    match = CustomerFactory(store=store, birthday=dt.date(1988, 9, 12), drivers_license="D4161227")
    CustomerFactory(store=store, birthday=dt.date(1990, 1, 1), drivers_license="X0000000")
    assert list(Customer.objects.birthday_on(dt.date(1988, 9, 12))) == [match]
    assert list(Customer.objects.licence_equal("d416-1227")) == [match]
    assert not Customer.objects.licence_equal("").exists()


def test_to_peak_customer_is_the_canonical_shape():
    store = StoreFactory(catalog_id="greenleaf-oakland", pos_vendor="treez")
    customer = CustomerFactory(
        store=store,
        customer_id="5027",
        first_name="Sean",
        last_name="Odegaard",
        email="sean@example.com",
        phone="5551234567",
        birthday=dt.date(1988, 9, 12),
        gender="M",
        drivers_license="D4161227",
        drivers_license_expiration=dt.date(2029, 5, 12),
        street="18 Elm St",
        city="Oakland",
        state="CA",
        postal_code="94601",
        loyalty_points=Decimal("27"),
        pos_created_at=dt.datetime(2024, 2, 24, 12, tzinfo=dt.UTC),
        pos_updated_at=dt.datetime(2026, 3, 27, 3, 36, 4, tzinfo=dt.UTC),
        synced_at=dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC),
    )
    assert customer.to_peak_customer() == {
        "id": customer.pk,
        "customer_id": "5027",
        "catalog_id": "greenleaf-oakland",
        "pos_vendor": "treez",
        "first_name": "Sean",
        "last_name": "Odegaard",
        "email": "sean@example.com",
        "phone": "5551234567",
        "birthday": "1988-09-12",
        "gender": "M",
        "drivers_license": "D4161227",
        "drivers_license_expiration": "2029-05-12",
        "medical_card_number": None,
        "medical_card_expiration": None,
        "customer_type": "recreational",
        "active": True,
        "banned": False,
        "merged_into_customer_id": None,
        "address": {"street": "18 Elm St", "city": "Oakland", "state": "CA", "postal_code": "94601"},
        "loyalty_points": 27,
        "notes": "",
        "pos_created_at": "2024-02-24T12:00:00Z",
        "pos_updated_at": "2026-03-27T03:36:04Z",
        "synced_at": "2026-11-24T10:00:00Z",
    }


def test_peak_customer_reads_each_value_of_a_row_under_its_own_name():
    # peak_customer unpacks rows by position (PEAK_KEYS order): a value under another field's name is caught here.
    row = {name: f"<{name}>" for name in PEAK_KEYS}
    row["loyalty_points"] = 12
    answer = peak_customer(tuple(row.values()))
    address = answer.pop("address")
    assert {**answer, **address} == row


def test_to_peak_customer_keeps_fractional_points(store):
    customer = CustomerFactory(store=store, loyalty_points=Decimal("10.98"))
    assert customer.to_peak_customer()["loyalty_points"] == 10.98
