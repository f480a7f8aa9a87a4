"""The customers app's domain errors and how the API answers them (api.errors.ErrorAnswer); its views name this
table as their `domain_errors`, looked up before the API's own (stores and POS errors)."""

from __future__ import annotations

from rest_framework import status

from api.errors import DomainErrors, ErrorAnswer
from customers.models import Customer
from customers.services import CustomerDuplicate, CustomerFieldsRequired, IdempotencyInProgress, IdempotencyKeyReused

CUSTOMER_ERRORS: DomainErrors = {
    Customer.DoesNotExist: ErrorAnswer(
        status.HTTP_404_NOT_FOUND, "customer_not_found", "No such customer for this API key."
    ),
    CustomerDuplicate: ErrorAnswer(
        status.HTTP_409_CONFLICT,
        "duplicate_customer",
        "The store's POS already has this customer.",
        body=lambda exc: {"customer": exc.customer},
    ),
    # As a missing field of the body is answered (the serializer's `invalid_request`), named where it is in the body.
    CustomerFieldsRequired: ErrorAnswer(
        status.HTTP_400_BAD_REQUEST,
        "invalid_request",
        "The request has invalid fields.",
        fields=lambda exc: {f"customer.{name}": [f"{exc.label} requires this field."] for name in exc.fields},
    ),
    IdempotencyKeyReused: ErrorAnswer(
        status.HTTP_422_UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request body.",
    ),
    IdempotencyInProgress: ErrorAnswer(
        status.HTTP_409_CONFLICT,
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still in progress; retry later.",
        retry_after=lambda exc: exc.retry_after or 2,
    ),
}
