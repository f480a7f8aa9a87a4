"""Request and response examples for the OpenAPI schema (the README shows the same ones)."""

from __future__ import annotations

from typing import Any

from api.examples import error, ex

CUSTOMER: dict[str, Any] = {
    "id": 123,
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


LIST_OK = ex(
    "A page of customers",
    {
        "customers": [CUSTOMER],
        "next": "https://api.example.com/api/v1/customers?catalog_id=greenleaf-oakland&cursor=aWQ6MTIz",
        "source": "mirror",
    },
    status=200,
)
LIST_LIVE = ex(
    "Found by asking the POS live",
    {"customers": [CUSTOMER], "next": None, "source": "pos"},
    status=200,
)
SEARCH_REQUEST = ex(
    "A lookup by phone",
    {"catalog_id": "greenleaf-oakland", "phone": "(555) 123-4567", "page_size": 20},
    request=True,
)
SEARCH_OK = ex(
    "The customers found",
    {"customers": [CUSTOMER], "next_cursor": None, "source": "mirror"},
    status=200,
)
SEARCH_INVALID = ex(
    "Unknown, malformed or empty fields",
    error(
        "invalid_request",
        "The request has invalid fields: colour, driver_license, page_size.",
        fields={
            "colour": ["Unknown parameter."],
            "driver_license": ["Must not be empty: give a value, or leave it out."],
            "page_size": ["Give a whole number."],
        },
    ),
    status=400,
)
CUSTOMER_OK = ex("The customer", {"customer": CUSTOMER}, status=200)
CUSTOMER_NOT_FOUND = ex(
    "No such customer", error("customer_not_found", "No such customer for this API key."), status=404
)

CREATE_REQUEST = ex(
    "A new customer",
    {
        "catalog_id": "greenleaf-oakland",
        "customer": {
            "first_name": "Sean",
            "last_name": "Odegaard",
            "gender": "M",
            "birthday": "1988-09-12",
            "email": "sean@example.com",
            "phone": "(555) 123-4567",
            "drivers_license": "D4161227",
            "notes": "Prefers text messages",
        },
    },
    request=True,
)
CREATED = ex("Created at the POS and here", {"customer": CUSTOMER}, status=201)
CREATE_INVALID = ex(
    "Invalid fields",
    error(
        "invalid_request",
        "The request has invalid fields.",
        fields={
            "customer.birthday": ["A birthday must be in the past."],
            "customer.phone": ["Enter a 10-digit phone number (any format)."],
        },
    ),
    status=400,
)
CREATE_NEEDS_MORE = ex(
    "A field the store's POS requires",
    error(
        "invalid_request",
        "The request has invalid fields.",
        fields={"customer.birthday": ["Treez requires this field."]},
    ),
    status=400,
)
CREATE_NOT_SUPPORTED = ex(
    "The store's POS cannot create customers",
    error("pos_not_supported", "Flowhub customers cannot be created through this API"),
    status=405,
)
CREATE_DUPLICATE = ex(
    "The POS already has this customer",
    {**error("duplicate_customer", "The store's POS already has this customer."), "customer": CUSTOMER},
    status=409,
)
CREATE_IN_PROGRESS = ex(
    "Same Idempotency-Key, still in progress",
    error(
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still in progress; retry later.",
        retry_after=2,
    ),
    status=409,
)
CREATE_KEY_REUSED = ex(
    "Same Idempotency-Key, another body",
    error("idempotency_key_reused", "This Idempotency-Key was used with a different request body."),
    status=422,
)
POS_BAD_GATEWAY = ex(
    "The POS failed",
    error("pos_error", "The store's POS failed: Treez sent an unexpected answer", retry_after=30),
    status=502,
)
POS_UNAVAILABLE = ex(
    "The POS is unavailable",
    error("pos_unavailable", "The store's POS is unavailable; retry later.", retry_after=30),
    status=503,
)

LEGACY_OK = ex("Customers with that POS id", {"customers": [CUSTOMER]}, status=200)
LEGACY_BAD = ex(
    "customer_id missing",
    error(
        "invalid_parameters",
        "Invalid query parameters: customer_id.",
        fields={"customer_id": ["This field is required."]},
    ),
    status=400,
)
