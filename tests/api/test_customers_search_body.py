"""POST /api/v1/customers/search: the list's lookups with their values in a JSON body, out of URLs and logs."""

from __future__ import annotations

import pytest

from customers.models import Customer
from pos_integrations.records import CustomerRecord
from tests.factories import CustomerFactory, StoreFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("list_sql_cache")]
URL = "/api/v1/customers/search"


def search(api, body):
    return api.post(URL, body, format="json")


def test_a_body_search_answers_what_the_list_answers(api, store):
    match = CustomerFactory(
        store=store,
        phone="5551234567",
        email="sean@example.com",
        drivers_license="D4161227",
        medical_card_number="MMJ-55-0912",
    )
    CustomerFactory(
        store=store, phone="5559876543", email="jane@example.com", drivers_license="X1", medical_card_number="M2"
    )
    for field, query, value in [
        ("phone", "phone=(555) 123-4567", "(555) 123-4567"),
        ("email", "email=SEAN@example.com", "SEAN@example.com"),
        ("driver_license", "driver_license=d416-1227", "d416-1227"),
        ("medical_card_number", "medical_card_number=mmj550912", "mmj 55 0912"),
    ]:
        listed = api.get(f"/api/v1/customers?{query}").json()
        found = search(api, {field: value})
        assert found.status_code == 200, found.content
        body = found.json()
        assert body == {"customers": listed["customers"], "next_cursor": None, "source": "mirror"}
        assert [c["id"] for c in body["customers"]] == [match.pk]


def test_pages_follow_next_cursor(api, store):
    made = [CustomerFactory(store=store, last_name="Odegaard").pk for _ in range(5)]
    seen: list[int] = []
    body: dict = {"last_name": "odegaard", "page_size": 2}
    while True:
        answer = search(api, body).json()
        seen += [c["id"] for c in answer["customers"]]
        if answer["next_cursor"] is None:
            break
        body = {**body, "cursor": answer["next_cursor"]}
    assert seen == made


def test_a_live_lookup_runs_as_for_the_list(api, store, pos):
    pos.search_results = [
        CustomerRecord(customer_id="T-77", first_name="Sean", last_name="Odegaard", phone="5551234567", raw={})
    ]
    body = search(api, {"catalog_id": store.catalog_id, "phone": "555-123-4567"}).json()
    assert body["source"] == "pos"
    assert [c["customer_id"] for c in body["customers"]] == ["T-77"]
    assert Customer.objects.filter(store=store, customer_id="T-77").exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"telephone": "5551234567", "colour": "red"}, {"telephone", "colour"}),
        ({"phone": 5551234567}, {"phone"}),
        ({"phone": None}, {"phone"}),
        ({"page_size": "20"}, {"page_size"}),
        ({"page_size": True}, {"page_size"}),
        ({"page_size": 0}, {"page_size"}),
        ({"birthday": "1988-13-45", "cursor": "nope"}, {"birthday", "cursor"}),
        ({"colour": "red", "driver_license": "", "page_size": "20"}, {"colour", "driver_license", "page_size"}),
    ],
)
def test_bad_fields_are_all_named_in_the_error_shape(api, store, body, fields):
    response = search(api, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert set(error["fields"]) == fields
    for name in fields:
        assert name in error["message"]


@pytest.mark.parametrize("field", ["driver_license", "medical_card_number", "phone", "email"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_identity_field_is_a_400_naming_it_not_every_customer(api, store, field, value):
    CustomerFactory(store=store, drivers_license="D4161227")
    response = search(api, {"catalog_id": store.catalog_id, field: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["fields"] == {field: ["Must not be empty: give a value, or leave it out."]}
    assert field in error["message"]


@pytest.mark.parametrize("body", [[{"phone": "5551234567"}], "phone", 3])
def test_a_body_that_is_not_an_object_is_refused(api, body):
    response = search(api, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_the_key_reaches_only_its_stores(api, store):
    other = StoreFactory(catalog_id="elsewhere")
    CustomerFactory(store=other, phone="5551234567")
    assert search(api, {"phone": "5551234567"}).json()["customers"] == []
    response = search(api, {"catalog_id": "elsewhere", "phone": "5551234567"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "store_not_found"


def test_without_a_key_401(client):
    response = client.post(URL, {"phone": "5551234567"}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_get_is_not_the_search(api):
    response = api.get(URL)
    assert response.status_code == 405
    assert "error" in response.json()
