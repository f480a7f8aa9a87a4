"""A POS answer the mirror cannot hold (live lookups, creates): never stored, never a 500; a live lookup leaves it
out, a create the POS accepted answers it as the POS has it; the answer says so in a warning and staff find the
record among the rejected POS records."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer, IdempotencyRecord, RecordSource, RejectedRecord
from pos_integrations.errors import PosDuplicate, PosUnreadableCustomer
from pos_integrations.records import CustomerRecord
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers"
# What a POS may answer that the mirror's columns cannot take (the two cases, and a bad enum).
UNSTORABLE = [
    pytest.param({"email": "x" * 290 + "@example.com"}, "email is longer than 254", id="300-character-email"),
    pytest.param({"first_name": "S" * 300}, "first_name is longer than 150", id="300-letter-first-name"),
    pytest.param({"first_name": "Se\x00an", "raw": {"id": "T-66", "FirstName": "Se\x00an"}}, "NUL", id="nul-in-name"),
    pytest.param({"gender": "unknown-code"}, "gender", id="unknown-gender"),
]


def record(**values) -> CustomerRecord:
    defaults = {
        "customer_id": "T-77",
        "first_name": "Sean",
        "last_name": "Odegaard",
        "phone": "5551234567",
        "email": "sean@example.com",
        "raw": {"id": "T-77"},
    }
    return CustomerRecord(**{**defaults, **values})


@pytest.fixture
def body(store):
    return {"catalog_id": store.catalog_id, "customer": {"first_name": "Sean", "last_name": "Odegaard"}}


@pytest.mark.parametrize(("change", "reason"), UNSTORABLE)
def test_a_live_lookup_answers_without_what_the_mirror_cannot_store_and_says_so(api, store, pos, change, reason):
    pos.search_results = [record(), record(customer_id="T-66", **change)]

    response = api.get(f"{URL}?catalog_id={store.catalog_id}&phone=5551234567")

    assert response.status_code == 200
    body = response.json()
    assert [c["customer_id"] for c in body["customers"]] == ["T-77"]
    assert body["source"] == "pos"
    assert "cannot store" in body["warning"]
    assert "rejected POS records" in body["warning"]
    assert list(Customer.objects.filter(store=store).values_list("customer_id", flat=True)) == ["T-77"]
    [kept] = RejectedRecord.objects.filter(store=store)
    assert (kept.source, kept.customer_id, kept.origin) == (RecordSource.LOOKUP, "T-66", None)
    assert reason in kept.reason


def test_a_live_lookup_whose_only_answer_cannot_be_stored_answers_nothing_with_the_warning(api, store, pos):
    pos.search_results = [record(email="x" * 300)]

    body = api.get(f"{URL}?phone=5551234567").json()

    assert body["customers"] == []
    assert "warning" in body
    assert not Customer.objects.exists()
    assert RejectedRecord.objects.filter(store=store, source=RecordSource.LOOKUP).count() == 1


def test_a_live_lookup_never_overwrites_a_newer_version_with_an_older_one(api, store, pos):
    newer = timezone.now()
    CustomerFactory(store=store, customer_id="T-77", email="new@example.com", phone="5550000000", pos_updated_at=newer)
    pos.search_results = [record(email="old@example.com", pos_updated_at=newer - dt.timedelta(days=1))]

    response = api.get(f"{URL}?phone=5551234567")

    assert response.status_code == 200
    customer = Customer.objects.get(store=store, customer_id="T-77")
    assert (customer.email, customer.phone, customer.pos_updated_at) == ("new@example.com", "5550000000", newer)


@pytest.mark.parametrize(("change", "reason"), UNSTORABLE)
def test_a_create_whose_answer_cannot_be_stored_answers_201_with_the_customer_as_the_pos_has_it_and_says_why(
    api, store, pos, body, change, reason
):
    pos.create_result = record(customer_id="T-66", **change)

    response = api.post(URL, body, format="json")

    assert response.status_code == 201, response.content
    answer = response.json()
    customer = answer["customer"]
    assert (customer["id"], customer["synced_at"]) == (None, None)  # not in the mirror
    assert (customer["customer_id"], customer["catalog_id"], customer["last_name"]) == (
        "T-66",
        store.catalog_id,
        "Odegaard",
    )
    for field, value in change.items():
        if field != "raw":
            assert customer[field] == value.replace("\x00", "\\u0000")  # NUL shown as a visible escape
    assert reason in answer["warning"]
    assert "rejected POS records" in answer["warning"]
    assert not Customer.objects.exists()
    [kept] = RejectedRecord.objects.filter(store=store)
    assert (kept.source, kept.customer_id) == (RecordSource.CREATE, "T-66")
    assert reason in kept.reason


def test_a_create_whose_answer_cannot_be_stored_completes_its_idempotency_key_and_a_retry_replays_it(
    api, store, pos, body
):
    pos.create_result = record(customer_id="T-66", first_name="S" * 300, raw={"id": "T-66", "name": "S\x00"})
    headers = {"HTTP_IDEMPOTENCY_KEY": "create-once"}

    first = api.post(URL, body, format="json", **headers)
    again = api.post(URL, body, format="json", **headers)

    assert first.status_code == again.status_code == 201
    assert first.json()["customer"]["first_name"] == "S" * 300
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(pos.creates) == 1
    assert IdempotencyRecord.objects.get(key="create-once").status == "completed"


def test_a_retry_with_a_new_key_gets_409_with_the_customer_as_the_pos_has_it(api, store, pos, body):
    pos.existing["T-66"] = record(customer_id="T-66", first_name="S" * 300)
    pos.create_result = pos.existing["T-66"]
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="first").status_code == 201
    pos.create_result = None
    pos.create_error = PosDuplicate("already there", vendor="treez", existing_customer_id="T-66")

    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="second")

    assert response.status_code == 409
    assert response.json()["customer"]["customer_id"] == "T-66"
    assert response.json()["customer"]["first_name"] == "S" * 300
    assert RejectedRecord.objects.filter(store=store, customer_id="T-66").count() == 2


def test_a_pos_answer_of_the_wrong_types_is_answered_with_those_values_null(api, store, pos, body):
    pos.create_result = record(customer_id="T-66", birthday="1988-09-12", loyalty_points=float("nan"))

    response = api.post(URL, body, format="json")

    assert response.status_code == 201
    customer = response.json()["customer"]
    assert (customer["birthday"], customer["loyalty_points"], customer["first_name"]) == (None, None, "Sean")
    assert "birthday is not a date" in response.json()["warning"]


def test_a_duplicate_the_mirror_cannot_store_gets_409_with_it_as_the_pos_has_it_and_is_kept_for_staff(
    api, store, pos, body
):
    pos.existing["T-9"] = record(customer_id="T-9", first_name="x" * 151)
    pos.create_error = PosDuplicate("already there", vendor="treez", existing_customer_id="T-9")

    response = api.post(URL, body, format="json")

    assert response.status_code == 409
    assert response.json()["customer"]["first_name"] == "x" * 151
    assert response.json()["customer"]["id"] is None
    assert not Customer.objects.exists()
    assert RejectedRecord.objects.get(store=store).customer_id == "T-9"


def test_a_create_the_pos_answered_with_a_record_we_cannot_read_answers_201_as_sent_and_keeps_the_answer(
    api, store, pos, body
):
    answer = {"customer_id": "T-88", "birthday": "31/02/1990\x00"}
    pos.create_error = PosUnreadableCustomer(
        "Treez sent a customer we cannot read",
        vendor="treez",
        reason="birthday: not a date",
        customer_id="T-88",
        payload=answer,
    )

    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="unreadable")

    assert response.status_code == 201, response.content
    customer = response.json()["customer"]
    assert (customer["id"], customer["customer_id"], customer["first_name"]) == (None, "T-88", "Sean")
    assert "birthday: not a date" in response.json()["warning"]
    [kept] = RejectedRecord.objects.filter(store=store)
    assert (kept.source, kept.customer_id, kept.payload) == (
        RecordSource.CREATE,
        "T-88",
        {"customer_id": "T-88", "birthday": "31/02/1990\\u0000"},
    )
    again = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="unreadable")
    assert again.json() == response.json()
    assert len(pos.creates) == 1
