"""The access log of personal data: who saw which customers' licence and medical card numbers, birthdays or vendor
JSON unmasked, when, through which request. Values are never recorded. One INSERT per request, however many
customers it shows; pruned after PII_ACCESS_RETENTION_DAYS by a scheduled task (customers.tasks)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
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


# Which of PII_ANSWER_FIELDS a customer shows, by whether each is set: looked up, not joined, for each customer.
_SHOWN = {
    flags: ",".join(name for name, flag in zip(PII_ANSWER_FIELDS, flags, strict=True) if flag)
    for flags in itertools.product((False, True), repeat=len(PII_ANSWER_FIELDS))
}


def answer_access_events(customers: Iterable[Mapping[str, Any]]) -> tuple[list[int], list[str]]:
    """The ids of an answer's customers showing any personal field, and which fields each shows."""
    ids: list[int] = []
    shown: list[str] = []
    licence, card, birthday = PII_ANSWER_FIELDS
    for customer in customers:
        fields = _SHOWN[bool(customer.get(licence)), bool(customer.get(card)), bool(customer.get(birthday))]
        pk = customer.get("id")
        if fields and type(pk) is int:
            ids.append(pk)
            shown.append(fields)
    return ids, shown


def access_events_write(
    *, api_key_id: int, request_id: str, path: str, at: dt.datetime, ids: list[int], fields: list[str]
) -> None:
    """One INSERT of one row per customer, expanded by the database from one JSON parameter (`jsonb_array_elements`
    on PostgreSQL, `json_each` on SQLite): a list answer of 50 customers costs one statement, not 50 model
    instances. (Two array parameters through `unnest` cost several times more to send: psycopg dumps each element
    in Python.)"""
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    if connection.vendor == "postgresql":
        source = "jsonb_array_elements(%s::jsonb) AS e(value)"
        pk_sql, fields_sql = "(e.value->>0)::bigint", "e.value->>1"
    else:
        source = "json_each(%s) AS e"
        pk_sql, fields_sql = "json_extract(e.value, '$[0]')", "json_extract(e.value, '$[1]')"
    params: list[Any] = [AccessChannel.API.value, api_key_id, request_id, path, at]
    params.append(json.dumps(list(zip(ids, fields, strict=True))))
    # Only our own constants and the quoted table name are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {table} (customer_id, channel, api_key_id, user_id, fields, request_id, path, at) "  # noqa: S608
        f"SELECT {pk_sql}, %s, %s, NULL, {fields_sql}, %s, %s, %s FROM {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def access_events_record_answer(
    *, request: HttpRequest, response: HttpResponseBase, api_key: ApiKey, customers: Iterable[Mapping[str, Any]]
) -> int:
    """Record an API answer's unmasked customers (those showing any personal field), how many, once the answer
    has been sent: the INSERT runs when the server closes the response (after its last byte went out, before the
    worker takes its next request), so the caller does not wait for it.

    The price of not waiting: the answer is out before its events are stored. If the INSERT fails, the events are
    logged instead (at ERROR, reaching Sentry: key, request id, customer ids and field names, never values); a
    worker killed in the moment between sending and writing (SIGKILL, out of memory) loses that request's events.
    A worker stopped the usual way (SIGTERM, a restart, max_requests) finishes the request, INSERT included."""
    ids, fields = answer_access_events(customers)
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
                sorted(set(",".join(fields).split(","))),
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
