"""The access log of personal data: who saw which customers' licence and medical card numbers, birthdays or vendor
JSON unmasked, when, through which request. Values are never recorded. One row per request, however many
customers it shows (an API answer's written by the process's AccessEventWriter, with others in one INSERT);
pruned after PII_ACCESS_RETENTION_DAYS by a scheduled task (customers.tasks)."""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import functools
import logging
import os
import re
import threading
import time
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


@dataclasses.dataclass(frozen=True, slots=True)
class PendingEvent:
    """An API answer's access event, not yet written: what its row will hold."""

    api_key_id: int
    request_id: str
    path: str
    at: dt.datetime
    ids: list[int]
    fields: str

    def described(self) -> str:
        """For the log, should it not be written: who saw whom and which fields, never values."""
        return (
            f"API key {self.api_key_id} saw customers {self.ids} (fields {sorted(self.fields.split(','))}) "
            f"in request {self.request_id} at {self.at.isoformat()}"
        )


# Rows per INSERT (SQLite): 6 parameters each, far below its limit of 32,766.
WRITE_CHUNK = 500
# The writer thread's shortest interval (should PII_ACCESS_WRITE_SECONDS drop to 0 while it runs: no busy loop).
MIN_WRITE_SECONDS = 0.05


API_CHANNEL = AccessChannel.API.value


@functools.cache
def _insert_sql(rows: int) -> str:
    # One statement text per row count (SQLite; PostgreSQL has COPY). Only our own constants and the quoted table
    # name are formatted in; every value is a parameter.
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    row = f"(%s, '{API_CHANNEL}', %s, NULL, %s, %s, %s, %s)"
    return (
        f"INSERT INTO {table} (customer_ids, channel, api_key_id, user_id, fields, request_id, path, at) "  # noqa: S608
        f"VALUES {', '.join([row] * rows)}"
    )


@functools.cache
def _copy_sql() -> str:
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    return f"COPY {table} (customer_ids, channel, api_key_id, fields, request_id, path, at) FROM STDIN"


def _ids_json(ids: list[int]) -> str:
    return "[" + ",".join(map(str, ids)) + "]"


def access_events_write(events: list[PendingEvent]) -> None:
    """The events in one statement, through the model-free cursor (no instance, no signals): on PostgreSQL one COPY
    (a third less CPU than the same rows as INSERT parameters, in psycopg and in the server: bench/README.md,
    "Access events and masking"), elsewhere one INSERT per WRITE_CHUNK rows. The customers' ids go as one JSON text
    each (psycopg dumps a list's elements one by one in Python; ints joined by commas cost microseconds)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            started = time.monotonic()
            with cursor.cursor.copy(_copy_sql()) as copy:
                for e in events:
                    copy.write_row((_ids_json(e.ids), API_CHANNEL, e.api_key_id, e.fields, e.request_id, e.path, e.at))
            if connection.queries_logged:  # in Django's log of statements (DEBUG, tests) like any other
                connection.queries_log.append({"sql": _copy_sql(), "time": f"{time.monotonic() - started:.3f}"})
            return
        for start in range(0, len(events), WRITE_CHUNK):
            chunk = events[start : start + WRITE_CHUNK]
            params: list[Any] = []
            for e in chunk:
                params += [_ids_json(e.ids), e.api_key_id, e.fields, e.request_id, e.path, e.at]
            cursor.execute(_insert_sql(len(chunk)), params)


def _write_or_log(events: list[PendingEvent]) -> None:
    try:
        access_events_write(events)
    except Exception:
        # The only trace of these events (Django swallows a response closer's exception; the writer thread has
        # no caller): one record for the lot, at ERROR, so it reaches Sentry.
        logger.exception("Access events not recorded: %s", "; ".join(e.described() for e in events))


class AccessEventWriter:
    """How this process writes its API answers' access events, after each answer is sent.

    With PII_ACCESS_WRITE_SECONDS at 0, each answer's event is one INSERT run when the server closes the
    response: before the worker takes its next request. Above 0 (the default, 0.2), the events wait here and a
    thread of this process writes what has gathered as one INSERT, every PII_ACCESS_WRITE_SECONDS or as soon as
    PII_ACCESS_WRITE_EVENTS are waiting, on a database connection of its own; at exit (SIGTERM, a restart,
    gunicorn's max_requests) what is left is written. One write transaction for many answers: a lookup's event
    costs the servers 0.44 ms of CPU written alone and 0.085 ms gathered, a 50-row page's 0.68 and 0.12-0.18 ms
    (bench/README.md, "Access events and masking").

    The price: an event is in the log up to PII_ACCESS_WRITE_SECONDS after its answer, and a process killed
    without warning (SIGKILL, out of memory) loses the events of its last PII_ACCESS_WRITE_SECONDS, where
    writing per answer loses at most the one being written. An event keeps the time of its answer (`at`). A
    write that fails is logged at ERROR (reaching Sentry) with each event's key, request id, customer ids and
    field names, never values."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a child writes its own events, not its parent's
        atexit.register(self.close)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[PendingEvent] = []
        self._due = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, event: PendingEvent) -> None:
        if settings.PII_ACCESS_WRITE_SECONDS <= 0 or self._closed:
            _write_or_log([event])
            return
        with self._lock:
            self._waiting.append(event)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="access-event-writer", daemon=True)
                self._thread.start()
            full = len(self._waiting) >= settings.PII_ACCESS_WRITE_EVENTS
        if full:
            self._due.set()

    def flush(self) -> int:
        """Write the events waiting in this process now; how many."""
        with self._lock:
            events, self._waiting = self._waiting, []
        if events:
            _write_or_log(events)
        return len(events)

    def close(self, timeout: float = 10) -> None:
        """Stop the thread (it writes what waits and closes its connection) and write anything left; at exit. Events
        added later are written each on its own."""
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._due.set()
            thread.join(timeout)
        self.flush()

    def _run(self) -> None:
        try:
            while not self._closed:
                self._due.wait(max(settings.PII_ACCESS_WRITE_SECONDS, MIN_WRITE_SECONDS))
                self._due.clear()
                self.flush()
                # Its own connection, as a request's after each request: closed once broken or past CONN_MAX_AGE.
                connection.close_if_unusable_or_obsolete()
        finally:
            self.flush()  # an event added while close() ran
            connection.close()


access_event_writer = AccessEventWriter()


def access_events_record_answer(
    *, request: HttpRequest, response: HttpResponseBase, api_key: ApiKey, customers: Iterable[Mapping[str, Any]]
) -> int:
    """Record an API answer's unmasked customers (those showing any personal field) as one access event; how many
    customers. Handed to the writer (AccessEventWriter: when and how it is written, what a crash loses) once the
    answer has been sent: when the server closes the response, after its last byte went out."""
    ids, fields = answer_access_event(customers)
    if not ids:
        return 0
    event = PendingEvent(
        api_key_id=api_key.pk,
        request_id=request_id(request),
        path=request_path(request),
        at=timezone.now(),
        ids=ids,
        fields=fields,
    )
    # Run by HttpResponseBase.close(), which the WSGI server calls once it has sent the answer (Django has no
    # public hook per response; request_finished runs after close_old_connections, which may close ours).
    response._resource_closers.append(functools.partial(access_event_writer.add, event))  # type: ignore[attr-defined]
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
