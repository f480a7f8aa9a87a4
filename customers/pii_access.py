"""The access log of personal data: who saw which customers' licence and medical card numbers, birthdays or vendor
JSON unmasked, when, through which request. Values are never recorded. One row per request (one INSERT),
however many customers it shows; pruned after PII_ACCESS_RETENTION_DAYS by a scheduled task (customers.tasks)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from customers.models import AccessChannel, AccessEvent, licence_key
from stores.models import ApiKey

# The personal fields of the canonical customer an answer may reveal (masked without the `pii` scope).
PII_ANSWER_FIELDS = ("drivers_license", "medical_card_number", "birthday")
PRUNE_BATCH = 5_000
logger = logging.getLogger("customers.pii_access")
MASK = "•••"
# A number this short shows nothing of itself: "•••".
SHORTEST_SHOWN = 6


def mask_number(value: str) -> str:
    """`D4161227` → `D41•••27` (enough to check a card in hand, not to copy it); a short one, `•••`; an empty one
    stays empty."""
    if not value:
        return value
    if len(value) < SHORTEST_SHOWN:
        return MASK
    return f"{value[:3]}{MASK}{value[-2:]}"


def mask_copies(value: Any, numbers: Iterable[str]) -> Any:
    """A JSON value (the vendor's `raw`) with the copies of `numbers` masked: a string that is one of them (as the
    lookups compare licences: any case, without spaces and dashes), and each one written inside a longer text."""
    wanted = [n for n in numbers if licence_key(n)]
    if not wanted:
        return value
    keys = {licence_key(n) for n in wanted}
    inside = re.compile("|".join(re.escape(n) for n in sorted(wanted, key=len, reverse=True)), re.IGNORECASE)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            if licence_key(item) in keys:
                return mask_number(item)
            return inside.sub(lambda m: mask_number(m.group(0)), item)
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        return item

    return walk(value)


def request_path(request: HttpRequest) -> str:
    return request.path[:200]


def request_id(request: HttpRequest) -> str:
    return str(getattr(request, "request_id", ""))[:64]


def answer_access_event(customers: Iterable[Mapping[str, Any]]) -> tuple[list[int], str]:
    """The ids of an answer's customers showing any personal field, and which fields any of them shows."""
    licence, card, birthday = PII_ANSWER_FIELDS
    shown = [c for c in customers if (c.get(licence) or c.get(card) or c.get(birthday)) and type(c.get("id")) is int]
    fields = ",".join(name for name in PII_ANSWER_FIELDS if any(c.get(name) for c in shown))
    return [c["id"] for c in shown], fields


@functools.cache
def _insert_sql(vendor: str) -> str:
    # One statement text per database, so PostgreSQL prepares it once (DB_PREPARE_THRESHOLD). Only our own
    # constants and the quoted table name are formatted in; every value is a parameter.
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    ids = "%s::jsonb" if vendor == "postgresql" else "%s"
    return (
        f"INSERT INTO {table} (customer_ids, channel, api_key_id, user_id, fields, request_id, path, at) "  # noqa: S608
        f"VALUES ({ids}, '{AccessChannel.API.value}', %s, NULL, %s, %s, %s, %s)"
    )


def access_events_write(
    *, api_key_id: int, request_id: str, path: str, at: dt.datetime, ids: list[int], fields: str
) -> None:
    """One row, one INSERT: the customers' ids as one JSON text (psycopg dumps a list's elements one by one in
    Python; ints joined by commas cost microseconds), through the model-free cursor (no instance, no signals)."""
    params: list[Any] = ["[" + ",".join(map(str, ids)) + "]", api_key_id, fields, request_id, path, at]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor), params)


def access_events_record_answer(
    *, request: HttpRequest, response: HttpResponseBase, api_key: ApiKey, customers: Iterable[Mapping[str, Any]]
) -> int:
    """Record an API answer's unmasked customers (those showing any personal field) as one access event; how many
    customers. Written once the answer has been sent: the INSERT runs when the server closes the response (after
    its last byte went out, before the worker takes its next request), so the caller does not wait for it.

    The price of not waiting: the answer is out before its event is stored. If the INSERT fails, the event is
    logged instead (at ERROR, reaching Sentry: key, request id, customer ids and field names, never values); a
    worker killed in the moment between sending and writing (SIGKILL, out of memory) loses that request's event.
    A worker stopped the usual way (SIGTERM, a restart, max_requests) finishes the request, INSERT included."""
    ids, fields = answer_access_event(customers)
    if not ids:
        return 0
    key_id, rid, path, at = api_key.pk, request_id(request), request_path(request), timezone.now()

    def write() -> None:
        try:
            access_events_write(api_key_id=key_id, request_id=rid, path=path, at=at, ids=ids, fields=fields)
        except Exception:
            # Django swallows a closer's exception: this is the only trace.
            logger.exception(
                "Access events not recorded: API key %s saw customers %s (fields %s) in request %s at %s",
                key_id,
                ids,
                sorted(fields.split(",")),
                rid,
                at.isoformat(),
            )

    # Run by HttpResponseBase.close(), which the WSGI server calls once it has sent the answer (Django has no
    # public hook per response; request_finished runs after close_old_connections, which may close ours).
    response._resource_closers.append(write)  # type: ignore[attr-defined]
    return len(ids)


def access_event_record_admin(
    *, request: HttpRequest, user: AbstractBaseUser | AnonymousUser, customer_id: int, fields: Iterable[str]
) -> AccessEvent | None:
    """Record a staff member seeing a customer's personal fields on an admin page; None when it showed none."""
    shown = ",".join(fields)
    if not shown or not user.is_authenticated:
        return None
    return AccessEvent.objects.create(
        customer_ids=[customer_id],
        channel=AccessChannel.ADMIN,
        user_id=user.pk,
        fields=shown,
        request_id=request_id(request),
        path=request_path(request),
    )


def access_events_unlink(customer_id: int) -> int:
    """Cut one customer out of the access log (erasure, in its transaction): their id becomes a null in every
    event's list, so the events stay (who saw personal data, when, how many people) without naming them; how many
    events."""
    events = list(
        AccessEvent.objects.select_for_update().filter(customer_ids__includes=customer_id).only("id", "customer_ids")
    )
    for event in events:
        event.customer_ids = [None if pk == customer_id else pk for pk in event.customer_ids]
    AccessEvent.objects.bulk_update(events, ["customer_ids"], batch_size=500)
    return len(events)


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
