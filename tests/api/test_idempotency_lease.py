"""No stuck Idempotency-Key: a create request that died leaves its key in progress for a short lease
(IDEMPOTENCY_LEASE_SECONDS); a retry after it looks for the customer the dead request may have created, in the
mirror and at the POS, before creating one. (The same against a real worker killed mid-create: tests/live.)"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer, IdempotencyRecord
from customers.services import request_fingerprint
from pos_integrations.errors import PosUnavailable, PosValidationError
from pos_integrations.records import CustomerRecord
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers"
KEY = "order-42"


@pytest.fixture
def body(store):
    return {
        "catalog_id": store.catalog_id,
        "customer": {
            "first_name": "Sean",
            "last_name": "Odegaard",
            "birthday": "1988-09-12",
            "email": "Sean@Example.com",
            "phone": "(555) 123-4567",
        },
    }


@pytest.fixture
def dead_request(key, body):
    """What a request killed mid-create leaves: its key in progress, begun a minute and a half ago."""

    def leave(*, lease_left: float = -30) -> IdempotencyRecord:
        begun = timezone.now() - dt.timedelta(seconds=90)
        record = IdempotencyRecord.objects.create(
            api_key=key.key,
            key=KEY,
            request_hash=request_fingerprint(body),
            lease_expires_at=timezone.now() + dt.timedelta(seconds=lease_left),
        )
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=begun)
        record.refresh_from_db()
        return record

    return leave


def pos_customer(*, created: dt.datetime, **changes) -> CustomerRecord:
    values = {
        "customer_id": "T-500",
        "first_name": "SEAN",
        "last_name": "ODEGAARD",
        "email": "sean@example.com",
        "phone": "5551234567",
        "birthday": dt.date(1988, 9, 12),
        "pos_created_at": created,
        "pos_updated_at": created,
        "raw": {"customer_id": "T-500"},
    }
    return CustomerRecord(**{**values, **changes})


def post(api, body, key=KEY):
    return api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_within_the_lease_the_key_is_in_progress_and_says_when_to_retry(api, pos, body, dead_request, settings):
    settings.IDEMPOTENCY_LEASE_SECONDS = 60
    dead_request(lease_left=20)

    response = post(api, body)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_progress"
    assert 19 <= int(response["Retry-After"]) <= 20
    assert pos.creates == []
    assert pos.searches == []


def test_after_the_lease_a_retry_finds_the_customer_the_dead_request_created_at_the_pos(
    api, store, pos, body, dead_request
):
    record = dead_request()
    pos.search_results = [pos_customer(created=record.created_at + dt.timedelta(seconds=1))]

    response = post(api, body)

    assert response.status_code == 201, response.content
    assert response.json()["customer"]["customer_id"] == "T-500"
    assert pos.creates == []  # not created a second time
    assert pos.searches == [{"phone": "5551234567", "email": "sean@example.com"}]
    assert list(Customer.objects.filter(store=store).values_list("customer_id", flat=True)) == ["T-500"]
    again = post(api, body)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == response.json()


def test_after_the_lease_a_retry_finds_the_customer_in_the_mirror_without_asking_the_pos(
    api, store, pos, body, dead_request
):
    record = dead_request()
    held = CustomerFactory(
        store=store, customer_id="T-500", email="sean@example.com", phone="5551234567", pos_created_at=record.created_at
    )

    response = post(api, body)

    assert response.status_code == 201
    assert response.json()["customer"]["id"] == held.pk
    assert pos.creates == []
    assert pos.searches == []


def test_after_the_lease_a_retry_that_finds_nothing_creates_the_customer(api, store, pos, body, dead_request):
    dead_request()

    response = post(api, body)

    assert response.status_code == 201
    assert len(pos.creates) == 1
    assert len(pos.searches) == 1
    assert IdempotencyRecord.objects.get(key=KEY).status == "completed"


def test_a_customer_the_pos_had_before_the_dead_request_began_is_a_duplicate(api, pos, body, dead_request):
    record = dead_request()
    pos.search_results = [pos_customer(created=record.created_at - dt.timedelta(days=30))]

    response = post(api, body)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_customer"
    assert response.json()["customer"]["customer_id"] == "T-500"
    assert pos.creates == []


def test_a_pos_customer_with_another_identity_is_not_taken_for_the_one_created(api, pos, body, dead_request):
    record = dead_request()
    pos.search_results = [pos_customer(created=record.created_at, email="someone.else@example.com")]

    assert post(api, body).status_code == 201
    assert len(pos.creates) == 1


def test_a_create_without_email_phone_or_licence_is_looked_for_by_its_names_and_birthday(
    api, store, pos, body, dead_request
):
    pos.capabilities = type(pos.capabilities)(
        can_create=True, search_fields=frozenset({"first_name", "last_name", "birthday"}), incremental=True
    )
    for field in ("email", "phone"):
        body["customer"].pop(field)
    record = dead_request()
    pos.search_results = [pos_customer(created=record.created_at, email="", phone="")]

    response = post(api, body)

    assert response.status_code == 201
    assert pos.creates == []
    assert pos.searches == [{"first_name": "Sean", "last_name": "Odegaard", "birthday": dt.date(1988, 9, 12)}]


def test_two_retries_after_the_lease_take_the_key_over_once(api, pos, body, dead_request):
    dead_request()
    seen = {}

    def second_retry_arrives() -> None:
        seen["response"] = post(api, body)

    pos.on_create = second_retry_arrives

    assert post(api, body).status_code == 201
    assert seen["response"].status_code == 409
    assert len(pos.creates) == 1


def test_after_a_timeout_at_the_pos_a_retry_looks_for_the_customer_before_creating_again(api, store, pos, body):
    # The POS may have created the customer and timed out answering.
    pos.create_error = PosUnavailable("read timed out", vendor="treez")
    assert post(api, body).status_code == 503
    pos.create_error = None
    pos.search_results = [pos_customer(created=timezone.now())]

    response = post(api, body)

    assert response.status_code == 201
    assert response.json()["customer"]["customer_id"] == "T-500"
    assert len(pos.creates) == 1


def test_after_the_pos_refused_the_customer_a_retry_does_not_look_for_it(api, pos, body):
    pos.create_error = PosValidationError("rejected", vendor="treez", field_errors={"email": ["taken"]})
    assert post(api, body).status_code == 400
    pos.create_error = None

    assert post(api, body).status_code == 201
    assert pos.searches == []
    assert len(pos.creates) == 2
