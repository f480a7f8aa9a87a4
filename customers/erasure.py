"""Erasure: a person removed from the mirror and from everything else that keeps their data, recorded without it,
and suppressed so that later syncs, live lookups and creates do not bring them back.

What goes: the Customer row (its vendor JSON with it); the quarantine's records with their POS id, and in the
store's other quarantined payloads whatever names them (see `_Scrubber`); the customer in idempotency records'
stored answers (the answer replays without them); the admin's log entries for the row. What stays: access events
(who saw personal data, when: the log of access outlives the data), with their customer reference cut (the id
a null in their lists) and no values in them to begin with. What records it: a CustomerErasure (store, when, by
whom, counts; no name or id) and an ErasureSuppression (a keyed blind index of the store and POS id, and the same
text encrypted for re-indexing).

The POS still holds the person: erasing them there is the dispensary's job. A create at the POS after an erasure
makes a new POS record with a new POS id, a new customer to the mirror; a POS that answers a create or a lookup
with the erased POS id (an upsert by identity) is suppressed like a sync.

Concurrency: on PostgreSQL each page of the writer takes a shared advisory lock on its store before reading the
suppressions, and an erasure takes it exclusively while it adds the suppression and deletes; so a page in flight
finishes before the erasure deletes, and a page after it sees the suppression. SQLite serialises writers anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from customers import crypto
from customers.models import (
    Customer,
    CustomerErasure,
    ErasureSuppression,
    IdempotencyRecord,
    RejectedRecord,
    licence_key,
    phone_digits,
    text_key,
)
from customers.pii_access import access_events_unlink
from stores.models import Store

logger = logging.getLogger("customers.erasure")

PURPOSE = "customers.erasure"
ERASED = "[erased]"
# The advisory-lock class of suppression checks (the second key is the store's id); any constant unique here.
_LOCK_CLASS = 0x43_46_45  # "CFE"
POS_CAVEAT = (
    "The store's POS still holds them: erasing them there is the dispensary's job. The mirror will not "
    "bring them back (syncs and live lookups skip their POS id)."
)
ERASED_WARNING = "The customer was erased from the mirror; the store's POS still holds them."
# Blind indexes per lookup statement (well under SQLite's 32,766 bound parameters; 999 on old builds).
_ID_CHUNK = 900
# A phone number this many digits long or more is matched in other quarantined payloads.
MIN_PHONE_DIGITS = 7


class CustomerNotHeld(Exception):
    """The mirror holds no customer with this POS id in this store (and suppressing one absent was not asked)."""


def _suppression_text(store_id: int, customer_id: str) -> str:
    return f"{store_id}:{customer_id.strip()}"


def suppressed_ids(*, store_id: int, customer_ids: Iterable[str]) -> set[str]:
    """Which of these POS ids of the store are erased; on PostgreSQL after the store's shared lock (see the
    module's note). Indexes under every configured index key match, so suppressions survive a rotation.

    A page of a store with no erasure costs one indexed query and no hashing; otherwise a second query looks up
    the page's blind indexes."""
    wanted = {i for i in customer_ids if i.strip() and _is_text(i)}  # a POS id is real text (see the writer)
    if not wanted:
        return set()
    _lock_store(store_id, shared=True)
    table = ErasureSuppression._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM "{table}" WHERE "store_id" = %s LIMIT 1', [store_id])  # noqa: S608
        if cursor.fetchone() is None:
            return set()
        by_index = {
            index: customer_id
            for customer_id in wanted
            for index in crypto.blind_indexes(_suppression_text(store_id, customer_id), purpose=PURPOSE)
        }
        indexes = list(by_index)
        chunks: list[tuple[str, list[Any]]]
        if connection.vendor == "postgresql":  # one array parameter, whatever the page size
            sql = f'SELECT "index" FROM "{table}" WHERE "store_id" = %s AND "index" = ANY(%s)'  # noqa: S608
            chunks = [(sql, [store_id, indexes])]
        else:  # chunked for SQLite's bound-parameter limit (a page of 500 ids under two keys is one statement)
            chunks = [
                (
                    f'SELECT "index" FROM "{table}" WHERE "store_id" = %s '  # noqa: S608
                    f'AND "index" IN ({", ".join(["%s"] * len(chunk))})',
                    [store_id, *chunk],
                )
                for chunk in (indexes[i : i + _ID_CHUNK] for i in range(0, len(indexes), _ID_CHUNK))
            ]
        found: set[str] = set()
        for sql, params in chunks:
            cursor.execute(sql, params)
            found.update(by_index[index] for (index,) in cursor.fetchall())
    return found


def _is_text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate (invalid UTF-8 from the POS)
        return False
    return True


def _lock_store(store_id: int, *, shared: bool) -> None:
    """PostgreSQL: the store's erasure lock, until the transaction ends (a no-op elsewhere)."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [_LOCK_CLASS, store_id])


def _suppression_get_or_add(*, store: Store, customer_id: str) -> tuple[ErasureSuppression, bool]:
    text = _suppression_text(store.pk, customer_id)
    held = ErasureSuppression.objects.filter(store=store, index__in=crypto.blind_indexes(text, purpose=PURPOSE)).first()
    if held is not None:
        return held, False
    added = ErasureSuppression.objects.create(
        store=store,
        index=crypto.blind_index(text, purpose=PURPOSE),
        sealed_ref=crypto.encrypt(text, purpose=PURPOSE),
    )
    return added, True


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    """What one erasure removed or scrubbed."""

    customers: int = 0
    quarantined_removed: int = 0
    quarantined_scrubbed: int = 0
    idempotency_answers_scrubbed: int = 0
    admin_log_entries_removed: int = 0
    access_events_unlinked: int = 0
    suppression_added: bool = False

    def as_dict(self) -> dict[str, int]:
        return {
            "customers": self.customers,
            "quarantined_removed": self.quarantined_removed,
            "quarantined_scrubbed": self.quarantined_scrubbed,
            "idempotency_answers_scrubbed": self.idempotency_answers_scrubbed,
            "admin_log_entries_removed": self.admin_log_entries_removed,
            "access_events_unlinked": self.access_events_unlinked,
            "suppression_added": int(self.suppression_added),
        }


def customer_erase(
    *,
    store: Store,
    customer_id: str,
    user_id: int | None = None,
    via: str,
    allow_absent: bool = False,
    unlink_late: bool = True,
) -> CustomerErasure:
    """Erase the store's customer with this POS id from the mirror and everything that keeps their data, record
    the erasure (no PII) and suppress the POS id. `user_id`: the staff user (admin); `via`: "admin" or "command
    (OS user …)". CustomerNotHeld when the mirror does not hold them, unless `allow_absent` (then the id is
    suppressed and anything else scrubbed). Erasing an id already suppressed adds no second suppression.
    `unlink_late=False` leaves the wait for access events still in flight to the caller (erasures_unlink_late,
    once for several erasures)."""
    customer_id = customer_id.strip()
    if not customer_id:
        raise CustomerNotHeld("No POS customer id given.")
    with transaction.atomic():
        _lock_store(store.pk, shared=False)
        customer = Customer.objects.select_for_update().filter(store=store, customer_id=customer_id).first()
        if customer is None and not allow_absent:
            raise CustomerNotHeld("The mirror holds no customer with this POS id in this store.")
        suppression, added = _suppression_get_or_add(store=store, customer_id=customer_id)
        customer_pk = customer.pk if customer is not None else None
        counts = replace(_remove(store=store, customer_id=customer_id, customer=customer), suppression_added=added)
        erasure = CustomerErasure.objects.create(
            store=store,
            user_id=user_id,
            via=via[:200],
            suppression=suppression,
            counts=counts.as_dict(),
        )
    if unlink_late and customer_pk is not None:
        erasures_unlink_late([(erasure, customer_pk)])
    # No name or id: the erasure's number says which (its record holds none either).
    logger.info("Erased a customer of store %s (erasure #%s)", store.catalog_id, erasure.pk)
    return erasure


def erasures_unlink_late(erased: list[tuple[CustomerErasure, int]]) -> None:
    """The events of answers sent just before these erasures may still wait in a web process's writer
    (customers.pii_access.AccessEventWriter, up to PII_ACCESS_WRITE_SECONDS): wait until they are written (once
    for all), then cut each erased customer (our id) out of them too."""
    if not erased or settings.PII_ACCESS_WRITE_SECONDS <= 0:
        return
    time.sleep(settings.PII_ACCESS_WRITE_SECONDS * 2 + 0.5)
    for erasure, customer_pk in erased:
        with transaction.atomic():
            late = access_events_unlink(customer_pk)
            if late:
                erasure.counts["access_events_unlinked"] = erasure.counts.get("access_events_unlinked", 0) + late
                erasure.save(update_fields=["counts"])


def _remove(*, store: Store, customer_id: str, customer: Customer | None) -> ErasureCounts:
    """Delete and scrub what the mirror keeps of the person (inside the erasure's transaction)."""
    unlinked = 0
    log_entries = 0
    customers = 0
    identifiers: list[str] = []
    if customer is not None:
        identifiers = [customer.email, customer.phone, customer.drivers_license, customer.medical_card_number]
        unlinked = access_events_unlink(customer.pk)
        log_entries, _ = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
        ).delete()
        customer.delete()
        customers = 1
    quarantined_removed, _ = RejectedRecord.objects.filter(store=store, customer_id=customer_id).delete()
    scrubbed = _scrub_quarantine(store=store, scrubber=_Scrubber(customer_id=customer_id, identifiers=identifiers))
    # The stored answers are encrypted (customers.fields): read and matched here, not in SQL. They are kept a day
    # (customers.services), so these are few.
    idempotency = 0
    for record in IdempotencyRecord.objects.filter(response__isnull=False).only("id", "response").iterator():
        answer = record.response if isinstance(record.response, dict) else {}
        shown = answer.get("customer")
        if not (
            isinstance(shown, dict)
            and shown.get("customer_id") == customer_id
            and shown.get("catalog_id") == store.catalog_id
        ):
            continue
        outcome = answer.get("outcome", "created")
        record.response = {"outcome": outcome, "customer": None, "warning": ERASED_WARNING}
        record.save(update_fields=["response"])
        idempotency += 1
    return ErasureCounts(
        customers=customers,
        quarantined_removed=quarantined_removed,
        quarantined_scrubbed=scrubbed,
        idempotency_answers_scrubbed=idempotency,
        admin_log_entries_removed=log_entries,
        access_events_unlinked=unlinked,
    )


def _scrub_quarantine(*, store: Store, scrubber: _Scrubber) -> int:
    """Scrub the person out of the store's other quarantined payloads; how many changed. Reads the store's
    quarantine once (an erasure is rare; a payload's phone may be formatted any way, so SQL cannot pick them)."""
    changed = 0
    for record in RejectedRecord.objects.filter(store=store).only("id", "payload").iterator(chunk_size=500):
        scrubbed, hit = scrubber.scrub(record.payload)
        if hit:
            RejectedRecord.objects.filter(pk=record.pk).update(payload=scrubbed)
            changed += 1
    return changed


class _Scrubber:
    """A JSON value without the person: an object holding one of their personal identifiers (email, phone,
    licence or card number, compared as the mirror compares them) is erased whole, keys kept (it is their
    record, or their part of another's); a value that is their POS id is erased alone (a reference to them in
    someone else's record, e.g. a merge's absorbed ids)."""

    def __init__(self, *, customer_id: str, identifiers: list[str]) -> None:
        self.customer_id = customer_id
        email, phone, *numbers = [*identifiers, "", "", "", ""][:4]
        self.email = text_key(email) if "@" in email else ""
        digits = phone_digits(phone)
        self.phone = digits if len(digits) >= MIN_PHONE_DIGITS else ""
        self.numbers = {licence_key(n) for n in numbers if licence_key(n)}

    def personal(self, value: Any) -> bool:
        if not isinstance(value, str) or not value.strip():
            return False
        if self.email and text_key(value) == self.email:
            return True
        if self.phone and phone_digits(value) == self.phone:
            return True
        return licence_key(value) in self.numbers

    def is_id(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, str | int):
            return False
        return str(value).strip() == self.customer_id

    def scrub(self, value: Any) -> tuple[Any, bool]:
        """The value scrubbed, and whether anything was."""
        if isinstance(value, dict):
            if any(self.personal(v) for v in value.values()):
                return {k: ERASED for k in value}, True
            hit = False
            kept: dict[str, Any] = {}
            for k, v in value.items():
                kept[k], found = self.scrub(v)
                hit = hit or found
            return kept, hit
        if isinstance(value, list):
            items = [self.scrub(v) for v in value]
            return [v for v, _ in items], any(found for _, found in items)
        if self.personal(value) or self.is_id(value):
            return ERASED, True
        return value, False
