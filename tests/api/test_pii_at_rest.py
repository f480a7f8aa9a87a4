"""Through the API, licence and card numbers encrypted at rest are found as before and answered in clear (to a key
with the `pii` scope); what the API keeps of a create (the idempotency record's answer) is encrypted too."""

from __future__ import annotations

import pytest
from django.db import connection

from customers.models import Customer, IdempotencyRecord
from pos_integrations.records import CustomerRecord
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("list_sql_cache")]

LICENCE = "D4161227"
CARD = "MMJ-55-0912"


def table_text(model) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{model._meta.db_table}"')
        return repr(cursor.fetchall())


def test_the_filters_and_the_search_body_find_by_licence_and_card_and_answer_in_clear(api, store):
    sean = CustomerFactory(store=store, drivers_license=LICENCE, medical_card_number=CARD)
    CustomerFactory(store=store, drivers_license="X1234567", medical_card_number="M1")
    for answer in (
        api.get("/api/v1/customers", {"driver_license": "d416 1227"}),
        api.get("/api/v1/customers", {"medical_card_number": "mmj550912"}),
        api.get("/api/v1/customers", {"driver_license": "d416 1227", "medical_card_number": "MMJ-550912"}),
        api.post("/api/v1/customers/search", {"medical_card_number": "MMJ 55 0912"}, format="json"),
        api.post("/api/v1/customers/search", {"driver_license": "d-4161227"}, format="json"),
    ):
        assert answer.status_code == 200, answer.content
        [found] = answer.json()["customers"]
        assert found == sean.to_peak_customer()
        assert (found["drivers_license"], found["medical_card_number"]) == (LICENCE, CARD)
    assert api.get("/api/v1/customers", {"medical_card_number": LICENCE}).json()["customers"] == []


def test_a_licence_held_in_the_mirror_is_found_there_without_asking_the_pos(api, store, pos):
    CustomerFactory(store=store, drivers_license=LICENCE)
    body = api.get("/api/v1/customers", {"driver_license": "d416-1227"}).json()
    assert body["source"] == "mirror"
    assert len(body["customers"]) == 1
    assert pos.searches == []


def test_a_live_lookup_by_licence_stores_it_encrypted_and_finds_it_next_time_in_the_mirror(api, store, pos):
    pos.search_results = [
        CustomerRecord(customer_id="T-77", first_name="Sean", drivers_license=LICENCE, raw={"dl": LICENCE})
    ]
    body = api.get("/api/v1/customers", {"driver_license": "d416-1227"}).json()
    assert body["source"] == "pos"
    assert [(c["customer_id"], c["drivers_license"]) for c in body["customers"]] == [("T-77", LICENCE)]
    assert LICENCE not in table_text(Customer)
    again = api.get("/api/v1/customers", {"driver_license": LICENCE}).json()
    assert again["source"] == "mirror"
    assert [c["customer_id"] for c in again["customers"]] == ["T-77"]
    assert len(pos.searches) == 1


def test_an_idempotency_records_stored_answer_is_encrypted(api, store, pos):
    body = {
        "catalog_id": store.catalog_id,
        "customer": {"first_name": "Sean", "last_name": "Odegaard", "drivers_license": "d416-1227"},
    }
    first = api.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201, first.content
    assert "4161227" not in table_text(IdempotencyRecord)
    assert "4161227" not in table_text(Customer)
    replay = api.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 201
    assert replay.json()["customer"] == first.json()["customer"]
    assert first.json()["customer"]["drivers_license"] == "D4161227"
    assert IdempotencyRecord.objects.get().response is not None
