"""Personal data in answers to keys without the `pii` scope: licence and medical card numbers masked (`D41•••27`:
enough for a clerk to check a card in hand, not to copy it), the birthday null. The key may still look customers up
by them (checkout scans an ID): filters are unchanged, only answers are masked. Answers to a key with `pii` leave
access events (customers.pii_access)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from customers.pii_access import access_events_record_answer, mask_number
from stores.models import ApiKey, ApiScope

MASKED_NUMBERS = ("drivers_license", "medical_card_number")
HIDDEN_DATES = ("birthday",)


def masked_customer(customer: dict[str, Any]) -> dict[str, Any]:
    masked = dict(customer)
    for name in MASKED_NUMBERS:
        if isinstance(masked.get(name), str):
            masked[name] = mask_number(masked[name])
    for name in HIDDEN_DATES:
        if name in masked:
            masked[name] = None
    return masked


def masked_answer(body: dict[str, Any]) -> dict[str, Any]:
    """An answer's `customer` and `customers` masked (a 409's existing customer among them)."""
    body = dict(body)
    if isinstance(body.get("customer"), dict):
        body["customer"] = masked_customer(body["customer"])
    if isinstance(body.get("customers"), list):
        body["customers"] = [masked_customer(c) if isinstance(c, dict) else c for c in body["customers"]]
    return body


def sees_pii(request: Request) -> bool:
    key = request.auth
    return isinstance(key, ApiKey) and key.has_scope(ApiScope.PII)


def answered_customers(body: dict[str, Any]) -> list[dict[str, Any]]:
    customers = [body["customer"]] if isinstance(body.get("customer"), dict) else []
    if isinstance(body.get("customers"), list):
        customers += [c for c in body["customers"] if isinstance(c, dict)]
    return customers


class PiiMaskingMixin:
    """For the views that answer customers: every answer (errors too) masked for a key without `pii`; for a key
    with it, the unmasked customers recorded as one access event (customers.pii_access: written after the answer)."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        key = request.auth
        if not isinstance(key, ApiKey) or not isinstance(response.data, dict):
            return response
        if key.has_scope(ApiScope.PII):
            access_events_record_answer(
                request=request, response=response, api_key=key, customers=answered_customers(response.data)
            )
        else:
            response.data = masked_answer(response.data)
        return response
