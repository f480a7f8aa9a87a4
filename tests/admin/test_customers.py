"""Customer admin: search the way staff ask, filters, read-only POS fields, masked numbers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from tests.factories import CustomerFactory, StoreFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_customer_changelist")


def found(client, **params) -> set[str]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {c.customer_id for c in response.context["cl"].result_list}


@pytest.fixture
def sean():
    return CustomerFactory(
        customer_id="5027",
        first_name="Sean",
        last_name="Odegaard",
        email="Sean.O@Example.com",
        phone="5551234567",
        drivers_license="D4161227",
        medical_card_number="MED-778899",
        raw={"customerId": 5027, "firstName": "Sean", "phone": "(555) 123-4567"},
    )


@pytest.fixture
def others():
    return CustomerFactory.create_batch(3, phone="4155550000", drivers_license="X1", first_name="Ann", last_name="Lee")


@pytest.mark.parametrize(
    "term",
    ["(555) 123-4567", "555-123-4567", "+1 555 123 4567", "555.123.4567", "5551234567", "1-555-123-4567", "123-4567"],
)
def test_phone_search_matches_any_format(admin_client, sean, others, term):
    assert found(admin_client, q=term) == {"5027"}


@pytest.mark.parametrize(
    "term", ["Sean", "odegaard", "sean odegaard", "sean.o@example.com", "5027", "d4161227", "D-4161227", "MED-778899"]
)
def test_search_by_name_email_pos_id_and_licence(admin_client, sean, others, term):
    assert found(admin_client, q=term) == {"5027"}


def test_short_numbers_do_not_match_phones(admin_client, sean, others):
    assert found(admin_client, q="555") == set()


def test_search_keeps_the_other_filters(admin_client, sean):
    other_store = StoreFactory()
    CustomerFactory(store=other_store, customer_id="9", phone="5551234567")
    assert found(admin_client, q="(555) 123-4567", store__id__exact=sean.store_id) == {"5027"}


def test_filters(admin_client, sean):
    today = timezone.localdate()
    expired = CustomerFactory(
        customer_type="medical", medical_card_number="M1", medical_card_expiration=today - dt.timedelta(days=1)
    )
    valid = CustomerFactory(
        customer_type="medical", medical_card_number="M2", medical_card_expiration=today + dt.timedelta(days=30)
    )
    inactive = CustomerFactory(active=False)
    banned = CustomerFactory(banned=True)
    flowhub = CustomerFactory(store=StoreFactory(pos_vendor="flowhub"))
    assert found(admin_client, medical_card="expired") == {expired.customer_id}
    assert found(admin_client, medical_card="valid") == {valid.customer_id}
    assert found(admin_client, customer_type__exact="medical") == {expired.customer_id, valid.customer_id}
    assert found(admin_client, active__exact="0") == {inactive.customer_id}
    assert found(admin_client, banned__exact="1") == {banned.customer_id}
    assert banned.customer_id not in found(admin_client, banned__exact="0")
    assert found(admin_client, store__pos_vendor__exact="flowhub") == {flowhub.customer_id}
    assert found(admin_client, store__id__exact=sean.store_id) == {"5027"}


def test_list_shows_no_licence_or_medical_numbers(admin_client, sean):
    html = admin_client.get(CHANGELIST).content.decode()
    assert "D4161227" not in html
    assert "1227" not in html
    assert "MED-778899" not in html
    assert "(555) 123-4567" in html
    assert "POS id 5027" in html


def test_list_says_whether_a_medical_card_is_valid(admin_client):
    today = timezone.localdate()
    CustomerFactory(customer_type="medical", medical_card_number="M1", medical_card_expiration=dt.date(2024, 3, 11))
    CustomerFactory(
        customer_type="medical", medical_card_number="M2", medical_card_expiration=today.replace(year=today.year + 1)
    )
    html = admin_client.get(CHANGELIST).content.decode()
    assert "card expired 2024-03-11" in html
    assert f"card to {today.year + 1}-" in html


def test_change_page_in_plain_words_with_whole_points_and_times_to_the_second(admin_client, sean):
    sean.loyalty_points = 27
    sean.pos_updated_at = dt.datetime(2026, 3, 27, 3, 36, 4, tzinfo=dt.UTC)
    sean.save()
    html = admin_client.get(reverse("admin:customers_customer_change", args=[sean.pk])).content.decode()
    for label in ("Driver&#x27;s licence", "Medical card expires", "Updated at the POS", "POS customer id"):
        assert label in html
    assert "Drivers license" not in html
    assert "Pos updated" not in html
    assert '<div class="readonly">27</div>' in html
    assert "27.00" not in html
    assert "2026-03-27 03:36:04 UTC" in html


def test_change_page_shows_the_ban_and_the_survivor_of_a_merge(admin_client, sean):
    sean.banned, sean.active, sean.merged_into_customer_id = True, False, "6001"
    sean.save()
    html = admin_client.get(reverse("admin:customers_customer_change", args=[sean.pk])).content.decode()
    assert "Merged into (POS id)" in html
    assert '<div class="readonly">6001</div>' in html
    assert "Banned" in html


def test_customers_cannot_be_deleted_here(admin_client, sean):
    change = reverse("admin:customers_customer_change", args=[sean.pk])
    assert "deletelink" not in admin_client.get(change).content.decode()
    assert (
        admin_client.post(reverse("admin:customers_customer_delete", args=[sean.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Customer.objects.filter(pk=sean.pk).exists()


def test_change_page_is_read_only_with_pretty_raw_json(admin_client, sean):
    response = admin_client.get(reverse("admin:customers_customer_change", args=[sean.pk]))
    html = response.content.decode()
    assert "The POS is the source of truth" in html
    assert 'name="first_name"' not in html
    assert "Sean" in html
    pretty = "{\n  &quot;customerId&quot;: 5027,\n  &quot;firstName&quot;: &quot;Sean&quot;"
    assert f'<pre class="cf-json" tabindex="0">{pretty}' in html
    assert reverse("admin:stores_store_change", args=[sean.store_id]) in html
    # No edits: a POST is refused.
    assert (
        admin_client.post(reverse("admin:customers_customer_change", args=[sean.pk]), {"first_name": "X"}).status_code
        == 403
    )
    assert Customer.objects.get(pk=sean.pk).first_name == "Sean"


def test_changelist_query_count_does_not_grow_with_customers(admin_client, count_queries):
    store = StoreFactory()
    CustomerFactory.create_batch(3, store=store)
    small = count_queries(admin_client, CHANGELIST)
    small_search = count_queries(admin_client, CHANGELIST + "?q=555")
    for _ in range(4):
        CustomerFactory.create_batch(10, store=StoreFactory())
    assert count_queries(admin_client, CHANGELIST) == small
    assert count_queries(admin_client, CHANGELIST + "?q=555") == small_search
