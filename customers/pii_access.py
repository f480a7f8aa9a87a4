"""The access log of personal data: who saw which customers' licence and medical card numbers, birthdays or vendor
JSON unmasked, when, through which request. Values are never recorded. One INSERT per request, however many
customers it shows; pruned after PII_ACCESS_RETENTION_DAYS by a scheduled task (customers.tasks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest
from django.utils import timezone

from customers.models import AccessChannel, AccessEvent
from stores.models import ApiKey

# The personal fields of the canonical customer an answer may reveal (masked without the `pii` scope).
PII_ANSWER_FIELDS = ("drivers_license", "medical_card_number", "birthday")
PRUNE_BATCH = 5_000


def request_path(request: HttpRequest) -> str:
    return request.path[:200]


def request_id(request: HttpRequest) -> str:
    return str(getattr(request, "request_id", ""))[:64]


def access_events_record_answer(
    *, request: HttpRequest, api_key: ApiKey, customers: Iterable[Mapping[str, Any]]
) -> int:
    """Record an API answer's unmasked customers (those showing any personal field): one INSERT. How many."""
    now = timezone.now()
    events = []
    for customer in customers:
        shown = [name for name in PII_ANSWER_FIELDS if customer.get(name)]
        if shown and isinstance(customer.get("id"), int):
            events.append(
                AccessEvent(
                    customer_id=customer["id"],
                    channel=AccessChannel.API,
                    api_key=api_key,
                    fields=",".join(shown),
                    request_id=request_id(request),
                    path=request_path(request),
                    at=now,
                )
            )
    if events:
        AccessEvent.objects.bulk_create(events)
    return len(events)


def access_event_record_admin(
    *, request: HttpRequest, user: AbstractBaseUser | AnonymousUser, customer_id: int, fields: Iterable[str]
) -> AccessEvent | None:
    """Record a staff member seeing a customer's personal fields on an admin page; None when it showed none."""
    shown = ",".join(fields)
    if not shown or not user.is_authenticated:
        return None
    return AccessEvent.objects.create(
        customer_id=customer_id,
        channel=AccessChannel.ADMIN,
        user_id=user.pk,
        fields=shown,
        request_id=request_id(request),
        path=request_path(request),
    )


def access_events_prune(*, now: dt.datetime | None = None) -> int:
    """Delete events older than PII_ACCESS_RETENTION_DAYS, in batches; how many."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.PII_ACCESS_RETENTION_DAYS)
    deleted = 0
    while True:
        batch = list(
            AccessEvent.objects.filter(at__lt=cutoff).order_by("at").values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not batch:
            return deleted
        deleted += AccessEvent.objects.filter(pk__in=batch).delete()[0]
