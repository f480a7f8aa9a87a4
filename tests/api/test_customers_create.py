"""POST /api/v1/customers: validation, POS outcomes, nothing half-written, idempotency."""

from __future__ import annotations

import datetime as dt

import pytest
import responses
from django.utils import timezone

from customers.models import Customer, IdempotencyRecord
from pos_integrations.errors import (
    PosAuthError,
    PosBadResponse,
    PosDuplicate,
    PosRateLimited,
    PosUnavailable,
    PosValidationError,
)
from pos_integrations.records import Capabilities, CustomerRecord
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers"


@pytest.fixture
def body(store):
    return {
        "catalog_id": store.catalog_id,
        "customer": {
            "first_name": "Sean",
            "last_name": "O'Degaard",
            "gender": "M",
            "birthday": "1988-09-12",
            "email": "Sean@Example.com",
            "phone": "(555) 123-4567",
            "drivers_license": "d416-1227",
            "notes": "Prefers text",
        },
    }


def test_creates_at_the_pos_then_locally(api, store, pos, body):
    response = api.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    customer = response.json()["customer"]
    assert customer["customer_id"] == "POS-1"
    assert customer["catalog_id"] == store.catalog_id
    sent = pos.creates[0]
    assert (sent.first_name, sent.last_name, sent.phone, sent.email, sent.drivers_license) == (
        "Sean",
        "O'Degaard",
        "5551234567",
        "sean@example.com",
        "D4161227",
    )
    assert sent.birthday == dt.date(1988, 9, 12)
    stored = Customer.objects.get(pk=customer["id"])
    assert stored.to_peak_customer() == customer


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", ""),
        ("first_name", "R2D2"),
        ("last_name", "x" * 151),
        ("email", "not-an-email"),
        ("phone", "555-1234"),
        ("birthday", "2999-01-01"),
        ("birthday", "1988-02-30"),
        ("birthday", "1850-01-01"),
        ("gender", "male"),
        ("drivers_license", "D!"),
        ("nickname", "Seanie"),
    ],
)
def test_invalid_customer_fields_get_400_with_field_errors(api, pos, body, field, value):
    body["customer"][field] = value
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert list(error["fields"]) == [f"customer.{field}"]
    assert pos.creates == []
    assert not Customer.objects.exists()


def test_missing_names_and_store_are_reported_together(api, pos):
    response = api.post(URL, {"customer": {"email": "x@example.com"}}, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"catalog_id", "customer.first_name", "customer.last_name"}


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", "null"])
def test_malformed_bodies_get_400(api, pos, payload):
    response = api.generic("POST", URL, payload, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_unknown_store_gets_404(api, pos, body):
    body["catalog_id"] = "nowhere"
    assert api.post(URL, body, format="json").status_code == 404


def test_pos_that_cannot_create_gets_405(api, pos, body):
    pos.capabilities = Capabilities(can_create=False, search_fields=frozenset(), incremental=True)
    response = api.post(URL, body, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "pos_not_supported"
    assert pos.creates == []


def test_pos_rejecting_the_data_gets_400_with_its_field_errors(api, pos, body):
    pos.create_error = PosValidationError(
        "email is not allowed", vendor="treez", field_errors={"email": ["Domain not allowed."]}
    )
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "pos_rejected",
            "message": "The store's POS rejected the customer: email is not allowed",
            "fields": {"email": ["Domain not allowed."]},
        }
    }
    assert "Retry-After" not in response
    assert not Customer.objects.exists()


def test_a_field_the_pos_requires_gets_400_naming_it_before_the_pos_is_asked(api, pos, body):
    pos.capabilities = Capabilities(
        can_create=True, search_fields=frozenset(), incremental=True, create_requires=frozenset({"birthday"})
    )
    del body["customer"]["birthday"]
    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-needs-birthday")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_request",
            "message": "The request has invalid fields.",
            "fields": {"customer.birthday": ["Treez requires this field."]},
        }
    }
    assert pos.creates == []
    assert not IdempotencyRecord.objects.exists()

    body["customer"]["birthday"] = "1988-09-12"
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-needs-birthday").status_code == 201


def test_a_treez_store_without_a_birthday_never_reaches_treez(key, store, body):
    """The real Treez client, with no HTTP answer registered: any call to Treez would fail the test."""
    del body["customer"]["birthday"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        response = key.client().post(URL, body, format="json")
        assert len(rsps.calls) == 0
    assert store.pos_vendor == "treez"
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"customer.birthday": ["Treez requires this field."]}


def test_pos_duplicate_gets_409_with_the_existing_customer(api, store, pos, body):
    existing = CustomerFactory(store=store, customer_id="T-9")
    pos.create_error = PosDuplicate("already there", vendor="treez", existing_customer_id="T-9")
    response = api.post(URL, body, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_customer"
    assert response.json()["customer"]["id"] == existing.pk


def test_pos_duplicate_not_yet_mirrored_is_read_from_the_pos_and_kept(api, store, pos, body):
    pos.existing["T-9"] = CustomerRecord(customer_id="T-9", first_name="Sean", last_name="Odegaard")
    pos.create_error = PosDuplicate("already there", vendor="treez", existing_customer_id="T-9")
    response = api.post(URL, body, format="json")
    assert response.status_code == 409
    assert response.json()["customer"]["customer_id"] == "T-9"
    assert Customer.objects.filter(store=store, customer_id="T-9").exists()


def test_pos_duplicate_without_an_id_is_found_by_searching(api, store, pos, body):
    pos.search_results = [CustomerRecord(customer_id="T-10", phone="5551234567")]
    pos.create_error = PosDuplicate("already there", vendor="treez")
    response = api.post(URL, body, format="json")
    assert response.status_code == 409
    assert response.json()["customer"]["customer_id"] == "T-10"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (PosUnavailable("down", vendor="treez"), 503, "pos_unavailable"),
        (PosRateLimited("slow down", vendor="treez", retry_after=17), 503, "pos_rate_limited"),
        (PosBadResponse("garbage", vendor="treez"), 502, "pos_error"),
        (PosAuthError("bad credentials", vendor="treez"), 502, "pos_auth_failed"),
    ],
)
def test_pos_failures_get_502_or_503_with_a_retry_hint_and_write_nothing(api, pos, body, error, status, code):
    pos.create_error = error
    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert int(response["Retry-After"]) == response.json()["error"]["retry_after"] > 0
    assert not Customer.objects.exists()
    pos.create_error = None
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code == 201  # the key is free
    assert len(pos.creates) == 2


def test_rate_limited_pos_passes_its_retry_after_on(api, pos, body):
    pos.create_error = PosRateLimited("slow down", vendor="treez", retry_after=17)
    assert api.post(URL, body, format="json")["Retry-After"] == "17"


def test_pos_validation_error_gets_400_with_its_fields(api, pos, body):
    pos.create_error = PosValidationError("rejected", vendor="treez", field_errors={"email": ["taken"]})
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"email": ["taken"]}
    assert not Customer.objects.exists()


# ---- Idempotency-Key ----------------------------------------------------------------------------


def test_retry_with_the_same_key_and_body_replays_without_a_second_pos_call(api, pos, body):
    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    again = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert len(pos.creates) == 1
    assert Customer.objects.count() == 1


def test_replay_ignores_key_order_and_formatting(api, pos, body):
    api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    reordered = {"customer": dict(reversed(list(body["customer"].items()))), "catalog_id": body["catalog_id"]}
    assert api.post(URL, reordered, format="json", HTTP_IDEMPOTENCY_KEY="order-42").status_code == 201
    assert len(pos.creates) == 1


def test_same_key_with_another_body_gets_422(api, pos, body):
    api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    body["customer"]["first_name"] = "Jane"
    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert len(pos.creates) == 1


def test_concurrent_request_with_the_same_key_gets_409(api, pos, body):
    seen = {}

    def second_request_arrives() -> None:
        # While the POS is creating, the same request comes in again.
        seen["response"] = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")

    pos.on_create = second_request_arrives
    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == 201
    assert seen["response"].status_code == 409
    assert seen["response"].json()["error"]["code"] == "idempotency_in_progress"
    assert len(pos.creates) == 1


def test_keys_belong_to_their_api_key(make_key, store, pos, body):
    first, second = make_key(store).client(), make_key(store).client()
    assert first.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert second.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert len(pos.creates) == 2


def test_a_failed_attempt_can_be_retried_with_the_same_key(api, pos, body):
    pos.create_error = PosUnavailable("down", vendor="treez")
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42").status_code == 503
    pos.create_error = None
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42").status_code == 201
    assert len(pos.creates) == 2


def test_duplicate_answer_is_replayed_too(api, store, pos, body):
    CustomerFactory(store=store, customer_id="T-9")
    pos.create_error = PosDuplicate("already there", vendor="treez", existing_customer_id="T-9")
    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    again = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 409
    assert again.json() == first.json()
    assert len(pos.creates) == 1


def test_keys_expire_after_a_day(api, pos, body):
    api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42").status_code == 201
    assert len(pos.creates) == 2


def test_blank_or_huge_idempotency_key_gets_400(api, pos, body):
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=" ").status_code == 400
    assert api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256).status_code == 400
    assert pos.creates == []
