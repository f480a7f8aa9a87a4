# ruff: noqa: S608 -- SQL is assembled from model metadata (table and column names) only; values are bound.
"""The mirror's one writer: the only code that inserts or updates Customer rows.

Sync pages, live POS lookups and creates hand it POS records (`CustomerWriter.write`). It checks each one
against the mirror's columns (lengths, NUL characters, lone surrogates, enums, dates, points, the vendor JSON's
size and depth), keeps what it cannot store as a RejectedRecord with the reason (the quarantine staff see in the
admin; customers.quarantine makes any payload storable), and writes the rest in a few bulk statements, in one
transaction of its own:

- one SELECT of the page's ids already held;
- one upsert on (store, customer_id) that only touches rows the POS really changed and never lets an older
  POS version overwrite a newer one (licence and card numbers and the vendor JSON are written encrypted, with
  their blind indexes, and compared through their keyed digest: customers.fields.seal_customer_pii);
- one UPDATE of `synced_at` for the held rows that were seen but unchanged (so a full sync can tell who the
  POS no longer returns, `deactivate_unseen`);
- where a merge's surviving record lists the customers it absorbed (Treez `merged_customer_ids`), one UPDATE
  marking those held inactive with their survivor (`merged_into_customer_id`), under the same guard.

A caller's own writes that must commit or roll back with the page (a sync's checkpoint) run inside that
transaction (`alongside`). PostgreSQL gets the rows as arrays (`unnest`), one statement whatever the page
size, through a pipeline that also carries the COMMIT: outside a caller's transaction `write()` returns once
the page is sent, the database writes it while the caller goes on (a sync fetches its next page), and
`PageWrite.result()` reads what it did. SQLite gets multi-row VALUES in batches that respect its
bound-parameter limit, written before `write()` returns.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from operator import attrgetter, gt, itemgetter
from typing import Any, Protocol

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.db.models import CharField, Field
from django.db.transaction import Atomic
from django.utils import timezone

from customers import crypto
from customers.erasure import suppressed_ids
from customers.fields import canonical_json, seal_customer_pii
from customers.models import POS_FIELDS, Customer, CustomerType, Gender, RejectedRecord
from customers.quarantine import storable_payload, storable_text
from pos_integrations.records import CustomerRecord, RecordError
from stores.models import Store

# The canonical fields a POS record sets, in column order. Changing any of them (or `raw`) makes a record
# "changed"; `synced_at`, `created_at` and `updated_at` are ours.
DATA_FIELDS: tuple[str, ...] = POS_FIELDS
# Written after `raw`: computed from the encrypted values (customers.fields.seal_customer_pii). `pii_digest`
# stands for the encrypted values when the upsert compares (their ciphertexts differ at every write).
PII_FIELDS: tuple[str, ...] = ("drivers_license_index", "medical_card_number_index", "pii_digest", "pii_index_key")
ENCRYPTED_FIELDS = frozenset({"drivers_license", "medical_card_number"})
DATE_FIELDS = frozenset({"birthday", "drivers_license_expiration", "medical_card_expiration"})
DATETIME_FIELDS = frozenset({"pos_created_at", "pos_updated_at"})
PG_TYPES: dict[str, str] = {
    **{name: "text" for name in DATA_FIELDS},
    **{name: "date" for name in DATE_FIELDS},
    **{name: "timestamptz" for name in DATETIME_FIELDS},
    "active": "boolean",
    "banned": "boolean",
    "loyalty_points": "numeric",
}
MAX_LENGTHS: dict[str, int] = {
    f.name: f.max_length
    for f in (Customer._meta.get_field(name) for name in ("customer_id", *DATA_FIELDS))
    if isinstance(f, CharField) and f.max_length
}
GENDERS = frozenset(Gender.values)
CUSTOMER_TYPES = frozenset(CustomerType.values)
_POINTS_FIELD = Customer._meta.get_field("loyalty_points")
POINTS_LIMIT = Decimal(10) ** (_POINTS_FIELD.max_digits - _POINTS_FIELD.decimal_places)
POINTS_QUANTUM = Decimal(1).scaleb(-_POINTS_FIELD.decimal_places)
# SQLite's compile-time default since 3.32; older builds allow 999. We ask the connection and cap here.
SQLITE_DEFAULT_MAX_VARIABLES = 32766
SQLITE_FALLBACK_MAX_VARIABLES = 999
# Rejected records one writer keeps at most (a sync keeps one writer for its run): a broken mapping would
# otherwise copy the whole POS into the quarantine. The rest are counted, not kept.
QUARANTINE_LIMIT = 1000
# What a rejected record's reason is cut to (its payload: customers.quarantine).
MAX_REASON_LENGTH = 2000
# The vendor JSON of a customer the mirror keeps: at most this long (as compact JSON text) and this deep. A
# customer record is a few kilobytes, a few levels deep; more is a broken POS, quarantined (cut) for staff.
MAX_RAW_LENGTH = 1_000_000
MAX_RAW_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Row:
    """A validated record, ready to write: its POS id, merged flag, canonical values in DATA_FIELDS order (the
    licence and card numbers encrypted), the vendor JSON encrypted, the PII_FIELDS values and, for the surviving
    record of a merge, the POS ids it absorbed."""

    customer_id: str
    values: tuple[Any, ...]
    raw: str
    pii: tuple[str, str, str, str]
    merged: bool
    absorbed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the writer refuses to store, with the reason (kept as a RejectedRecord)."""

    customer_id: str
    reason: str
    payload: Any

    @classmethod
    def from_error(cls, error: RecordError) -> Rejected:
        """A record the POS client could not even parse."""
        return cls(str(error.customer_id or "")[:64], str(error.reason), error.payload)


@dataclass(frozen=True, slots=True)
class StagedPage:
    """What the writer knows of a page inside its transaction, before the writes go out (see `alongside`)."""

    rejected: int  # records refused (parse errors included), quarantined up to the writer's limit
    moved_from: datetime | None  # see PageStatements.moved_from; None without a `mark`


@dataclass(slots=True)
class PageResult:
    """What one page did to the mirror."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0  # held already as new as this (duplicates within the page included)
    deactivated: int = 0  # merged into another customer by the POS (its own record or its survivor's said so)
    stored: tuple[str, ...] = ()  # the POS ids of the page's customers the mirror now holds
    rejected: tuple[Rejected, ...] = ()  # what it could not store (quarantined)
    suppressed: int = 0  # records of erased customers (customers.erasure): skipped, counted among `unchanged`


class CustomerWriter:
    """Writes POS records of one store into the mirror; `for_store()` picks the database's flavour.

    `source` and `origin` say where what it rejects came from (a sync passes itself as the origin). One page
    is in flight at most: each call first waits for the page before, if it is still being written.
    """

    def __init__(
        self,
        *,
        store: Store,
        source: str,
        origin: models.Model | None = None,
        statements: PageStatements,
        quarantine_limit: int = QUARANTINE_LIMIT,
    ) -> None:
        self.store = store
        self.source = source
        self.origin = origin
        self.statements = statements
        self.quarantine_room = quarantine_limit
        self._in_flight: PageWrite | None = None

    @classmethod
    def for_store(
        cls, store: Store, *, source: str, origin: models.Model | None = None, quarantine_limit: int = QUARANTINE_LIMIT
    ) -> CustomerWriter:
        """The writer of this store's customers on the default database."""
        return cls(
            store=store,
            source=source,
            origin=origin,
            statements=PageStatements.for_connection(store_id=store.pk),
            quarantine_limit=quarantine_limit,
        )

    def write(
        self,
        records: Sequence[CustomerRecord],
        *,
        errors: Sequence[RecordError] = (),
        mark: datetime | None = None,
        alongside: Callable[[StagedPage], None] | None = None,
    ) -> PageWrite:
        """Write one page of POS records, in one transaction; `result()` on the answer says what it did.

        `errors` are the records the client could not parse (quarantined with the refused ones). `mark` is
        when the caller's run started (rows stamped since were written by it: see StagedPage.moved_from).
        `alongside` runs inside the page's transaction, before its writes are sent: the caller's own writes
        that must commit with the page (a checkpoint); an exception from it rolls the page back. Outside a
        caller's transaction on PostgreSQL this returns as soon as the page and its COMMIT are sent: once
        sent, the page commits (or, on an error, rolls back) whatever the caller does next, even if its
        process is killed.
        """
        # Validated while the page before may still be written, then wait for that one.
        rows, refused, duplicates = validate(records)
        rejected = [Rejected.from_error(error) for error in errors]
        rejected.extend(refused)
        self._finish_in_flight()
        statements = self.statements
        commit_ahead = statements.can_commit_ahead and not connection.in_atomic_block
        now = timezone.now()
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            rows, rejected, suppressed = _without_erased(self.store.pk, rows, rejected)
            held = statements.existing([row.customer_id for row in rows])
            self._quarantine(rejected)
            if alongside is not None:
                moved_from = statements.moved_from(rows, held, mark=mark) if mark is not None else None
                alongside(StagedPage(rejected=len(rejected), moved_from=moved_from))
            writes = statements.send(rows, now=now, held=held, commit=commit_ahead)
        except BaseException as exc:
            atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        page = PageWrite(
            self, atomic, writes, rows=rows, held=held, duplicates=duplicates, rejected=rejected, suppressed=suppressed
        )
        if commit_ahead:
            self._in_flight = page
        else:
            page.result()  # ends the transaction (or the savepoint in the caller's) now
        return page

    def deactivate_unseen(self, *, since: datetime, alongside: Callable[[int], None] | None = None) -> int:
        """Mark inactive the store's active customers held since before `since` that no write has seen since
        (what a full sync's listing no longer holds); `alongside(count)` commits with it. How many."""
        self._finish_in_flight()
        with transaction.atomic():
            unseen = Customer.objects.for_store(self.store).active().unseen_since(since)
            count = unseen.update(active=False, updated_at=timezone.now())
            if alongside is not None:
                alongside(count)
        return count

    def _finish_in_flight(self) -> None:
        if self._in_flight is not None:
            self._in_flight.result()

    def _quarantine(self, rejected: Sequence[Rejected]) -> None:
        kept = rejected[: max(0, self.quarantine_room)]
        if not kept:
            return
        origin = self.origin
        origin_type = ContentType.objects.get_for_model(origin) if origin is not None else None
        RejectedRecord.objects.bulk_create(
            [
                RejectedRecord(
                    store_id=self.store.pk,
                    source=self.source,
                    origin_type=origin_type,
                    origin_id=origin.pk if origin is not None else None,
                    customer_id=storable_text(r.customer_id)[:_ID_LIMIT],
                    reason=storable_text(r.reason, MAX_REASON_LENGTH),
                    payload=storable_payload(r.payload),
                )
                for r in kept
            ]
        )
        self.quarantine_room -= len(kept)


class PageWrite:
    """A page handed to the writer; `result()` waits for its writes if they are still in flight."""

    def __init__(
        self,
        writer: CustomerWriter,
        atomic: Atomic,
        writes: SentWrites,
        *,
        rows: list[Row],
        held: dict[str, tuple[bool, Any, Any]],
        duplicates: int,
        rejected: list[Rejected],
        suppressed: int = 0,
    ) -> None:
        self._writer = writer
        self._suppressed = suppressed
        self._atomic = atomic
        self._writes = writes
        self._rows = rows
        self._held = held
        self._duplicates = duplicates
        self._rejected = rejected
        self._result: PageResult | None = None
        self._error: BaseException | None = None

    def result(self) -> PageResult:
        """What the page did; raises what its writes raised (the page was rolled back), as often as asked."""
        if self._error is not None:
            raise self._error
        if self._result is None:
            self._result = self._finish()
        return self._result

    def _finish(self) -> PageResult:
        writer = self._writer
        if writer._in_flight is self:
            writer._in_flight = None
        try:
            try:
                written = self._writes.result()
            except BaseException as exc:
                self._atomic.__exit__(type(exc), exc, exc.__traceback__)
                raise
            self._atomic.__exit__(None, None, None)  # commits, or nothing to do when the COMMIT went ahead
        except BaseException as exc:
            self._error = exc
            raise
        statements = writer.statements
        result = statements.tally(self._rows, self._held, written)
        result.deactivated += self._writes.absorbed()
        result.unchanged += self._duplicates + self._suppressed
        result.suppressed = self._suppressed
        result.stored = tuple(row.customer_id for row in self._rows)
        result.rejected = tuple(self._rejected)
        statements.grew(result.created)
        return result


def _without_erased(store_id: int, rows: list[Row], rejected: list[Rejected]) -> tuple[list[Row], list[Rejected], int]:
    """The page without the records of erased customers (customers.erasure: a query or two, inside the page's
    transaction): neither written nor quarantined, only counted (and never logged: their ids are theirs)."""
    erased = suppressed_ids(
        store_id=store_id, customer_ids=[*(r.customer_id for r in rows), *(r.customer_id for r in rejected)]
    )
    if not erased:
        return rows, rejected, 0
    kept_rows = [row for row in rows if row.customer_id not in erased]
    kept_rejected = [r for r in rejected if r.customer_id not in erased]
    return kept_rows, kept_rejected, len(rows) - len(kept_rows) + len(rejected) - len(kept_rejected)


def validate(records: Iterable[CustomerRecord]) -> tuple[list[Row], list[Rejected], int]:
    """Check records against the mirror's columns: rows to write (encrypted), records rejected with a reason, and
    how many were duplicates within the page (the newest version of a customer wins)."""
    sealer = crypto.Sealer()
    rows: dict[str, Row] = {}
    stamps: dict[str, datetime | None] = {}
    rejected: list[Rejected] = []
    duplicates = 0
    for record in records:
        try:
            row = _row(record, sealer)
        except _Invalid as exc:
            rejected.append(Rejected(str(record.customer_id or "")[:64], exc.reason, record.raw))
            continue
        stamp = record.pos_updated_at
        if row.customer_id in rows:
            duplicates += 1
            held = stamps[row.customer_id]
            if held is not None and (stamp is None or stamp < held):
                continue
        rows[row.customer_id] = row
        stamps[row.customer_id] = stamp
    return list(rows.values()), rejected, duplicates


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _not_unicode(text: str) -> bool:
    """Whether text holds a lone surrogate (invalid UTF-8 from the POS, or a JSON "\\ud800"): no database takes it."""
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _holds_lone_surrogate(value: Any) -> bool:
    """Whether any text in a JSON value (keys included) holds a lone surrogate; iterative, whatever its depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _not_unicode(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a JSON value nests lists and objects more than `limit` levels deep; iterative, stops at the limit."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return False


_GET_VALUES = attrgetter(*DATA_FIELDS)
_INDEX = {name: i for i, name in enumerate(DATA_FIELDS)}
_TEXT_FIELDS = tuple(
    (i, name, MAX_LENGTHS.get(name, MAX_RAW_LENGTH))
    for i, name in enumerate(DATA_FIELDS)
    if name not in DATE_FIELDS | DATETIME_FIELDS | {"active", "banned", "loyalty_points"}
)
_GET_TEXTS = itemgetter(*(i for i, _, _ in _TEXT_FIELDS))
_LIMITS = tuple(limit for _, _, limit in _TEXT_FIELDS)
_DATE_INDEXES = tuple((_INDEX[name], name) for name in DATA_FIELDS if name in DATE_FIELDS)
_DATETIME_INDEXES = tuple((_INDEX[name], name) for name in DATA_FIELDS if name in DATETIME_FIELDS)
_ACTIVE, _BANNED, _POINTS, _GENDER, _TYPE = (
    _INDEX[n] for n in ("active", "banned", "loyalty_points", "gender", "customer_type")
)
_UPDATED, _MERGED_INTO = _INDEX["pos_updated_at"], _INDEX["merged_into_customer_id"]
_LICENCE, _CARD = _INDEX["drivers_license"], _INDEX["medical_card_number"]
_ID_LIMIT = MAX_LENGTHS["customer_id"]


def _row(record: CustomerRecord, sealer: crypto.Sealer) -> Row:
    """One record as a Row; _Invalid says why it cannot be stored. Kept lean: it runs for every record."""
    customer_id = record.customer_id
    if customer_id is None:
        raise _Invalid("customer_id is missing")
    customer_id = str(customer_id).strip()
    if not customer_id:
        raise _Invalid("customer_id is missing")
    if len(customer_id) > _ID_LIMIT or "\x00" in customer_id or _not_unicode(customer_id):
        raise _Invalid(f"customer_id is longer than {_ID_LIMIT} characters or not printable")
    values = list(_GET_VALUES(record))
    merged = bool(record.merged_into_customer_id)
    if values[_MERGED_INTO] is None:  # most records: stored as ""
        values[_MERGED_INTO] = ""
    texts = _GET_TEXTS(values)
    try:
        joined = "".join(texts)  # a TypeError for None or anything but text: the field-by-field checks say which
    except TypeError:
        joined = "\x00"
    # The common case in a few passes over all the text at once; anything unusual field by field (for the reason).
    if "\x00" in joined or (not joined.isascii() and _not_unicode(joined)) or any(map(gt, map(len, texts), _LIMITS)):
        _check_texts(values)
    for i, name in _DATE_INDEXES:
        value = values[i]
        if value is not None and (
            type(value) is not date and (not isinstance(value, date) or isinstance(value, datetime))
        ):
            raise _Invalid(f"{name} is not a date")
    for i, name in _DATETIME_INDEXES:
        value = values[i]
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise _Invalid(f"{name} is not an aware datetime")
    if values[_GENDER] not in GENDERS:
        raise _Invalid(f"gender {values[_GENDER]!r} is not one of {sorted(GENDERS)}")
    if values[_TYPE] not in CUSTOMER_TYPES:
        raise _Invalid(f"customer_type {values[_TYPE]!r} is not one of {sorted(CUSTOMER_TYPES)}")
    values[_ACTIVE] = bool(values[_ACTIVE]) and not merged
    values[_BANNED] = bool(values[_BANNED])
    values[_POINTS] = _points(values[_POINTS])
    raw = record.raw
    try:
        raw_json = canonical_json(raw if raw is not None else {})
    except RecursionError:
        raise _Invalid(f"the vendor JSON is nested more than {MAX_RAW_DEPTH} levels deep") from None
    except (TypeError, ValueError) as exc:
        raise _Invalid("the vendor JSON cannot be stored") from exc
    if len(raw_json) > MAX_RAW_LENGTH:
        raise _Invalid(f"the vendor JSON is longer than {MAX_RAW_LENGTH:,} characters")
    if "\\u0000" in raw_json:
        raise _Invalid("the vendor JSON contains a NUL character")
    # Cheap tests first: depth needs at least that many brackets; a lone surrogate shows as an escape (\\udXXX).
    if raw_json.count("{") + raw_json.count("[") > MAX_RAW_DEPTH and _deeper_than(raw, MAX_RAW_DEPTH):
        raise _Invalid(f"the vendor JSON is nested more than {MAX_RAW_DEPTH} levels deep")
    if "\\ud" in raw_json and _holds_lone_surrogate(raw):
        raise _Invalid("the vendor JSON is not valid Unicode text (invalid UTF-8 from the POS?)")
    absorbed = _absorbed(record, customer_id) if record.merged_customer_ids and not merged else ()
    values[_LICENCE], values[_CARD], sealed_raw, pii = seal_customer_pii(
        sealer, values[_LICENCE], values[_CARD], raw_json
    )
    return Row(customer_id, tuple(values), sealed_raw, pii, merged, absorbed)


def _check_texts(values: list[Any]) -> None:
    """The text fields one by one: None becomes ""; _Invalid names the first that cannot be stored, and why."""
    for i, name, limit in _TEXT_FIELDS:
        value = values[i]
        if value is None:
            values[i] = ""
        elif type(value) is not str and not isinstance(value, str):
            raise _Invalid(f"{name} is not text")
        elif len(value) > limit:
            raise _Invalid(f"{name} is longer than {limit} characters")
        elif "\x00" in value:
            raise _Invalid(f"{name} contains a NUL character")
        elif _not_unicode(value):
            raise _Invalid(f"{name} is not valid Unicode text (invalid UTF-8 from the POS?)")


def _absorbed(record: CustomerRecord, survivor: str) -> tuple[str, ...]:
    """The POS ids a merge's surviving record absorbed (ids that cannot be a customer_id are left out)."""
    ids = (str(i).strip() for i in record.merged_customer_ids if i is not None)
    return tuple(dict.fromkeys(i for i in ids if i and i != survivor and len(i) <= _ID_LIMIT and "\x00" not in i))


def _points(value: Any) -> Decimal:
    if type(value) is Decimal and value.is_finite() and -POINTS_LIMIT < value < POINTS_LIMIT:
        return value.quantize(POINTS_QUANTUM)
    try:
        points = Decimal(value if value is not None else 0)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise _Invalid("loyalty_points is not a number") from exc
    if not points.is_finite() or abs(points) >= POINTS_LIMIT:
        raise _Invalid("loyalty_points is out of range")
    return points.quantize(POINTS_QUANTUM)


def _column(name: str) -> str:
    """The database column of a Customer field; DATA_FIELDS are all concrete fields, never relations."""
    field = Customer._meta.get_field(name)
    assert isinstance(field, Field)
    assert field.column is not None
    return field.column


class SentWrites(Protocol):
    """A page's writes once sent: `result()` waits for the database and gives the ids the upsert wrote;
    then `absorbed()` says how many active customers it marked merged away (named by a survivor)."""

    def result(self) -> set[str]: ...

    def absorbed(self) -> int: ...


@dataclass(slots=True)
class DoneWrites:
    """Writes that ran to completion before `send()` returned."""

    written: set[str]
    merged_away: int = 0

    def result(self) -> set[str]:
        return self.written

    def absorbed(self) -> int:
        return self.merged_away


class PageStatements:
    """The SQL of a page's writes for one store, in the database's flavour (`for_connection()`).

    Inside the writer's transaction: `existing()` reads what the mirror holds of the page's customers (so
    the writer can tell, before writing, whether one moved within the listing: `moved_from()`), then
    `send()` writes the page; `tally()` counts what the writes did.
    """

    table = Customer._meta.db_table
    # Whether send(commit=True) can send the transaction's COMMIT along with its writes, without waiting.
    can_commit_ahead = False

    def __init__(self, *, store_id: int) -> None:
        self.store_id = store_id
        self.columns = [_column(name) for name in DATA_FIELDS]
        self.pii_columns = [_column(name) for name in PII_FIELDS]
        # What the upsert compares: the plain columns, and the digest for the encrypted ones.
        self.compared = [_column(name) for name in DATA_FIELDS if name not in ENCRYPTED_FIELDS] + ["pii_digest"]

    @staticmethod
    def for_connection(*, store_id: int) -> PageStatements:
        """The statements for the default database's backend."""
        if connection.vendor == "postgresql":
            return PostgresPageStatements(store_id=store_id)
        if connection.vendor == "sqlite":
            return SqlitePageStatements(store_id=store_id)
        raise NotImplementedError(f"no bulk page statements for {connection.vendor}")

    def existing(self, ids: Sequence[str]) -> dict[str, tuple[bool, Any, Any]]:
        """{customer_id: (active, pos_updated_at, synced_at)} for the ids this store already holds."""
        raise NotImplementedError

    def send(self, rows: Sequence[Row], *, now: datetime, held: Mapping[str, Any], commit: bool) -> SentWrites:
        """Upsert the rows (new ones inserted; changed ones updated unless older than ours), stamp
        `synced_at` on the held ones left unchanged, then mark merged away the customers a survivor among the
        rows absorbed (`merges`). With `commit`, also COMMIT the writer's transaction (only statements that
        `can_commit_ahead`)."""
        raise NotImplementedError

    @staticmethod
    def merges(rows: Sequence[Row]) -> list[tuple[str, str, datetime | None]]:
        """(absorbed id, survivor id, the survivor's POS time) for each customer a merge's surviving record on
        the page names in its `merged_customer_ids`; one survivor per absorbed id (the newest record's).

        Those held are marked inactive with their survivor in `merged_into_customer_id`, unless the mirror holds
        a version of them newer than the survivor's record (the guard: an older POS version never overwrites a
        newer one; that newer record says itself whether it was merged). What the mirror holds of them is then
        as of the survivor's POS time (their `pos_updated_at`), so an older version of them listed later does
        not bring them back."""
        found: dict[str, tuple[str, datetime | None]] = {}
        for row in rows:
            stamp = row.values[_UPDATED]
            for absorbed in row.absorbed:
                before = found.get(absorbed)
                if before is None or (stamp is not None and (before[1] is None or stamp >= before[1])):
                    found[absorbed] = (row.customer_id, stamp)
        return [(absorbed, survivor, stamp) for absorbed, (survivor, stamp) in found.items()]

    def moved_from(
        self, rows: Sequence[Row], held: Mapping[str, tuple[bool, Any, Any]], *, mark: datetime
    ) -> datetime | None:
        """The oldest previous POS time of the customers that moved within the listing while we paged.

        `mark` is when this sync (or the sync it resumes) started: a row stamped since then was seen earlier
        in this very sync. If the POS now hands it over again with a later modification time, it moved
        towards the end of the oldest-first listing, which can shift a neighbour into a page already read;
        the sync's cursor must not pass the time the customer had (None: nobody moved).
        """
        mark_key = self.stamp_key(mark)
        oldest: datetime | None = None
        for row in rows:
            before = held.get(row.customer_id)
            if before is None or before[1] is None or before[2] is None or self.stamp_key(before[2]) < mark_key:
                continue
            previous, new = self.as_datetime(before[1]), row.values[_UPDATED]
            if new is not None and new <= previous:
                continue  # listed again where it was (or earlier): nobody can have slid past us
            if oldest is None or previous < oldest:
                oldest = previous
        return oldest

    @staticmethod
    def tally(rows: Sequence[Row], held: Mapping[str, tuple[bool, Any, Any]], written: set[str]) -> PageResult:
        """What the page's writes did: created, updated (merged ones deactivated), unchanged."""
        result = PageResult()
        for row in rows:
            before = held.get(row.customer_id)
            if row.customer_id not in written:
                result.unchanged += 1
            elif before is None:
                result.created += 1
            else:
                result.updated += 1
                if row.merged and before[0]:
                    result.deactivated += 1
        return result

    def stamp_key(self, value: Any) -> Any:
        """A value comparable with a stored `synced_at`."""
        return value

    def as_datetime(self, value: Any) -> datetime:
        """A stored datetime as an aware datetime."""
        return value

    def grew(self, created: int) -> None:
        """Note rows added (a hook for planner statistics)."""

    def _guard(self, target: str, new: str) -> str:
        """The upsert's WHERE: the POS version is not older than ours, and something differs."""
        ours = ", ".join(f'{target}."{c}"' for c in self.compared)
        theirs = ", ".join(f'{new}."{c}"' for c in self.compared)
        return (
            f'({target}."pos_updated_at" IS NULL OR {new}."pos_updated_at" IS NULL '
            f'OR {new}."pos_updated_at" >= {target}."pos_updated_at") '
            f"AND ({ours}) IS DISTINCT FROM ({theirs})"
        )

    def _insert_columns(self) -> str:
        names = ["store_id", "customer_id", *self.columns, "raw", *self.pii_columns, "synced_at", "created_at"]
        names.append("updated_at")
        return ", ".join(f'"{name}"' for name in names)

    def _set_clause(self) -> str:
        written = [*self.columns, "raw", *self.pii_columns, "synced_at", "updated_at"]
        return ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in written)


class PostgresPageStatements(PageStatements):
    """One statement per step, whatever the page size: the page travels as one array per column.

    Django's PostgreSQL cursors bind parameters client-side (the arrays would be quoted into the SQL
    text in Python); these statements use a server-side-binding cursor on the same connection, with
    binary parameters (`%b`), so arrays are sent as they are.

    The writes go out in a psycopg pipeline and `send()` returns without waiting for them: PostgreSQL
    writes the page while the writer's caller goes on. With `commit=True` the pipeline also carries the
    COMMIT of the writer's transaction, so the page is committed (or, on an error, rolled back) whatever
    the caller does next, even if its process is killed: a sync can fetch the next page meanwhile without
    holding a transaction open across the HTTP call, and the results are read later (`SentWrites.result()`).
    """

    # A first sync can grow the table from nothing to a million rows long before autovacuum re-analyzes
    # it; with statistics saying "tiny table" the planner scans the whole store for every page (quadratic).
    # So we ANALYZE each time the rows these statements added double, from this many on.
    ANALYZE_FROM_ROWS = 5000
    can_commit_ahead = True

    def __init__(self, *, store_id: int) -> None:
        super().__init__(store_id=store_id)
        self.added = 0
        self.next_analyze = self.ANALYZE_FROM_ROWS
        texts = ["%b::text[]"] * (1 + len(PII_FIELDS))  # raw, then the PII_FIELDS
        casts = ", ".join(["%b::text[]", *(f"%b::{PG_TYPES[name]}[]" for name in DATA_FIELDS), *texts])
        names = ", ".join(['"customer_id"', *(f'"{c}"' for c in [*self.columns, "raw", *self.pii_columns])])
        picked = [f'i."{c}"' for c in [*self.columns, "raw", *self.pii_columns]]
        select = ", ".join(["%b", "i.customer_id", *picked, "%b", "%b", "%b"])
        self.upsert_sql = (
            f'INSERT INTO "{self.table}" AS c ({self._insert_columns()}) '
            f"SELECT {select} FROM unnest({casts}) AS i({names}) "
            f'ON CONFLICT ("store_id", "customer_id") DO UPDATE SET {self._set_clause()} '
            f"WHERE {self._guard('c', 'EXCLUDED')} "
            f'RETURNING c."customer_id"'
        )
        self.existing_sql = (
            f'SELECT "customer_id", "active", "pos_updated_at", "synced_at" FROM "{self.table}" '
            f'WHERE "store_id" = %b AND "customer_id" = ANY(%b::varchar[])'
        )
        # The held rows the upsert did not write still carry an older stamp (the written ones have `now`).
        self.touch_sql = (
            f'UPDATE "{self.table}" SET "synced_at" = %b WHERE "store_id" = %b '
            f'AND "customer_id" = ANY(%b::varchar[]) AND "synced_at" IS DISTINCT FROM %b'
        )
        # The customers a survivor on the page absorbed, as the upsert left them: `was_active` is read before
        # this statement changes them (the FROM sees the rows as they were), to count the newly deactivated.
        self.merge_sql = (
            f'UPDATE "{self.table}" AS c SET "active" = false, "merged_into_customer_id" = m.survivor, '
            f'"pos_updated_at" = COALESCE(m.stamp, c."pos_updated_at"), "updated_at" = %b '
            f'FROM (SELECT t."id", t."active" AS was_active, i.survivor, i.stamp '
            f"FROM unnest(%b::varchar[], %b::varchar[], %b::timestamptz[]) AS i(absorbed, survivor, stamp) "
            f'JOIN "{self.table}" AS t ON t."store_id" = %b AND t."customer_id" = i.absorbed '
            f'WHERE (t."active" OR t."merged_into_customer_id" IS DISTINCT FROM i.survivor) '
            f'AND (t."pos_updated_at" IS NULL OR i.stamp IS NULL OR t."pos_updated_at" <= i.stamp)) AS m '
            f'WHERE c."id" = m."id" RETURNING m.was_active'
        )

    def grew(self, created: int) -> None:
        self.added += created
        if self.added >= self.next_analyze:
            # Only the columns the page statements look up by: the row count is what matters, and the
            # statistics of every column (the vendor JSON above all) would cost a second per ANALYZE at 1M.
            self._run(f'ANALYZE "{self.table}" ("store_id", "customer_id")', [])
            self.next_analyze = self.added * 2

    def existing(self, ids: Sequence[str]) -> dict[str, tuple[bool, Any, Any]]:
        if not ids:
            return {}
        found = self._run(self.existing_sql, [self.store_id, list(ids)])
        return {cid: (active, updated, synced) for cid, active, updated, synced in found}

    def send(self, rows: Sequence[Row], *, now: datetime, held: Mapping[str, Any], commit: bool) -> SentWrites:
        raw_connection = self._raw_connection()
        seen = [row.customer_id for row in rows if row.customer_id in held]
        merges = self.merges(rows)
        with connection.wrap_database_errors:
            pipeline = raw_connection.pipeline()
            pipeline.__enter__()
            try:
                upsert = None
                if rows:
                    _TextArray.register(raw_connection)
                    upsert = self._send(raw_connection, self.upsert_sql, self._upsert_params(rows, now))
                if seen:
                    self._send(raw_connection, self.touch_sql, [now, self.store_id, seen, now]).close()
                merge = None
                if merges:
                    absorbed, survivors, stamps = (list(column) for column in zip(*merges, strict=True))
                    params = [now, absorbed, survivors, stamps, self.store_id]
                    merge = self._send(raw_connection, self.merge_sql, params)
                if commit:
                    self._send(raw_connection, "COMMIT", []).close()
            except BaseException as exc:
                pipeline.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return _PipelinedWrites(pipeline, upsert, merge)

    def _send(self, raw_connection: Any, sql: str, params: list[Any]) -> Any:
        """Execute on a server-side-binding cursor (in a pipeline: send, and read the results later)."""
        import psycopg

        started = time.monotonic()
        cursor = psycopg.Cursor(raw_connection)
        cursor.execute(sql, params)
        if connection.queries_logged:  # what Django's debug cursor would record (query counting in tests)
            connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
        return cursor

    def _run(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        raw_connection = self._raw_connection()
        with connection.wrap_database_errors, self._send(raw_connection, sql, params) as cursor:
            return cursor.fetchall() if cursor.description else []

    @staticmethod
    def _raw_connection() -> Any:
        """Django's psycopg connection, opened if need be, outside a transaction that has failed."""
        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        return connection.connection

    def _upsert_params(self, rows: Sequence[Row], now: datetime) -> list[Any]:
        # One array per column; the text ones (most of them) in the binary wire format already (_TextArray).
        data = list(zip(*(row.values for row in rows), strict=True))
        pii = list(zip(*(row.pii for row in rows), strict=True))
        arrays: list[Any] = [_TextArray.of([row.customer_id for row in rows])]
        arrays += [_TextArray.of(data[i]) if i in _PG_TEXT else list(data[i]) for i in range(len(DATA_FIELDS))]
        arrays.append(_TextArray.of([row.raw for row in rows]))
        arrays += [_TextArray.of(column) for column in pii]
        return [self.store_id, now, now, now, *arrays]


_PG_TEXT = frozenset(i for i, name in enumerate(DATA_FIELDS) if PG_TYPES[name] == "text")
_ARRAY_HEAD = struct.Struct(">iiIii")  # dimensions, has nulls, element type; then the one dimension's size, from 1
_LENGTH = struct.Struct(">i").pack
_TEXT_OID = 25


class _TextArray:
    """A page's column of text as a PostgreSQL text[] in the binary wire format, built here in a few C-level passes
    (psycopg's list dumper takes several Python steps per element: a page has ~10,000 of them). Sent as it is by
    the dumper registered for this type on the connection (`register`). The texts are the writer's validated
    ones: never None, no NUL, valid Unicode."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    @classmethod
    def of(cls, texts: Iterable[str]) -> _TextArray:
        encoded = [_LENGTH(len(item)) + item for item in map(str.encode, texts)]
        return cls(_ARRAY_HEAD.pack(1, 0, _TEXT_OID, len(encoded), 1) + b"".join(encoded))

    @staticmethod
    def register(raw_connection: Any) -> None:
        """Dump _TextArray parameters on this psycopg connection as they are (binary, type text[])."""
        raw_connection.adapters.register_dumper(_TextArray, _text_array_dumper())


@cache
def _text_array_dumper() -> type:
    import psycopg
    from psycopg.adapt import Dumper

    class TextArrayDumper(Dumper):
        format = psycopg.pq.Format.BINARY

        def __init__(self, cls: type, context: Any = None) -> None:
            super().__init__(cls, context)
            self.oid = psycopg.postgres.types["text"].array_oid

        def dump(self, obj: Any) -> bytes:
            return obj.data

    return TextArrayDumper


class _PipelinedWrites:
    """A page's statements in flight in a psycopg pipeline; `result()` ends the pipeline."""

    def __init__(self, pipeline: Any, upsert: Any, merge: Any = None) -> None:
        self.pipeline = pipeline
        self.upsert = upsert
        self.merge = merge
        self.written: set[str] | None = None
        self.merged_away = 0

    def result(self) -> set[str]:
        if self.written is None:
            with connection.wrap_database_errors:
                self.pipeline.__exit__(None, None, None)  # waits for every result; raises the first error
                if self.merge is not None:
                    with self.merge:
                        self.merged_away = sum(1 for (was_active,) in self.merge.fetchall() if was_active)
                if self.upsert is None:
                    self.written = set()
                else:
                    with self.upsert:
                        self.written = {cid for (cid,) in self.upsert.fetchall()}
        return self.written

    def absorbed(self) -> int:
        return self.merged_away


class SqlitePageStatements(PageStatements):
    """Multi-row statements in batches sized to SQLite's bound-parameter limit."""

    def __init__(self, *, store_id: int) -> None:
        super().__init__(store_id=store_id)
        self.max_variables = sqlite_max_variables()
        # store, id, data, raw, PII_FIELDS, synced/created/updated
        self.row_width = 2 + len(self.columns) + 1 + len(self.pii_columns) + 3
        # An explicit batch size: the most rows whose parameters fit one statement.
        self.batch_size = max(1, self.max_variables // self.row_width)
        self.id_batch_size = max(1, self.max_variables - 1)

    def existing(self, ids: Sequence[str]) -> dict[str, tuple[bool, Any, Any]]:
        found: dict[str, tuple[bool, Any, Any]] = {}
        with connection.cursor() as cursor:
            for chunk in _chunks(ids, self.id_batch_size):
                marks = ", ".join("%s" for _ in chunk)
                cursor.execute(
                    f'SELECT "customer_id", "active", "pos_updated_at", "synced_at" FROM "{self.table}" '
                    f'WHERE "store_id" = %s AND "customer_id" IN ({marks})',
                    [self.store_id, *chunk],
                )
                found.update((cid, (bool(active), updated, synced)) for cid, active, updated, synced in cursor)
        return found

    # Django's SQLite connection hands datetimes back naive (UTC) or, on a raw path, as text.
    def stamp_key(self, value: Any) -> Any:
        return _sqlite_datetime(self.as_datetime(value))

    def as_datetime(self, value: Any) -> datetime:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def send(self, rows: Sequence[Row], *, now: datetime, held: Mapping[str, Any], commit: bool) -> SentWrites:
        if commit:
            raise NotImplementedError("SQLite writes synchronously; the writer commits")
        written = self._upsert(rows, now=now)
        self._touch(
            [row.customer_id for row in rows if row.customer_id in held and row.customer_id not in written], now=now
        )
        return DoneWrites(written, self._merge_away(self.merges(rows), now=now))

    def _merge_away(self, merges: Sequence[tuple[str, str, datetime | None]], *, now: datetime) -> int:
        """Mark the absorbed customers held merged away (see `merges`); how many were active."""
        if not merges:
            return 0
        survivors = {absorbed: (survivor, stamp) for absorbed, survivor, stamp in merges}
        held: dict[str, tuple[bool, str, Any]] = {}
        with connection.cursor() as cursor:
            for chunk in _chunks(list(survivors), self.id_batch_size):
                marks = ", ".join("%s" for _ in chunk)
                cursor.execute(
                    f'SELECT "customer_id", "active", "merged_into_customer_id", "pos_updated_at" FROM "{self.table}" '
                    f'WHERE "store_id" = %s AND "customer_id" IN ({marks})',
                    [self.store_id, *chunk],
                )
                held.update((cid, (bool(active), merged_into, updated)) for cid, active, merged_into, updated in cursor)
            by_survivor: dict[str, list[str]] = {}
            deactivated = 0
            for absorbed, (active, merged_into, updated) in held.items():
                survivor, stamp = survivors[absorbed]
                if not active and merged_into == survivor:
                    continue  # already marked
                if updated is not None and stamp is not None and self.as_datetime(updated) > stamp:
                    continue  # the mirror holds a newer version of it than the survivor's record
                by_survivor.setdefault(survivor, []).append(absorbed)
                deactivated += active
            stamp_now = _sqlite_datetime(now)
            for survivor, ids in by_survivor.items():
                stamp = survivors[ids[0]][1]
                for chunk in _chunks(ids, self.id_batch_size - 4):
                    marks = ", ".join("%s" for _ in chunk)
                    cursor.execute(
                        f'UPDATE "{self.table}" SET "active" = 0, "merged_into_customer_id" = %s, '
                        f'"pos_updated_at" = COALESCE(%s, "pos_updated_at"), "updated_at" = %s '
                        f'WHERE "store_id" = %s AND "customer_id" IN ({marks})',
                        [survivor, _sqlite_datetime(stamp) if stamp else None, stamp_now, self.store_id, *chunk],
                    )
        return deactivated

    def _upsert(self, rows: Sequence[Row], *, now: datetime) -> set[str]:
        stamp = _sqlite_datetime(now)
        columns = self._insert_columns()
        written: set[str] = set()
        placeholder = "(" + ", ".join("%s" for _ in range(self.row_width)) + ")"
        target = f'"{self.table}"'
        with connection.cursor() as cursor:
            for chunk in _chunks(rows, self.batch_size):
                params: list[Any] = []
                store_id = self.store_id
                for row in chunk:
                    values = list(row.values)
                    for i, convert in _SQLITE_CONVERTERS:
                        if values[i] is not None:
                            values[i] = convert(values[i])
                    params.append(store_id)
                    params.append(row.customer_id)
                    params.extend(values)
                    params.append(row.raw)
                    params.extend(row.pii)
                    params.extend((stamp, stamp, stamp))
                sql = (
                    f'INSERT INTO "{self.table}" ({columns}) VALUES {", ".join(placeholder for _ in chunk)} '
                    f'ON CONFLICT ("store_id", "customer_id") DO UPDATE SET {self._set_clause()} '
                    f"WHERE {self._guard(target, 'excluded')} "
                    f'RETURNING "customer_id"'
                )
                cursor.execute(sql, params)
                written.update(cid for (cid,) in cursor.fetchall())
        return written

    def _touch(self, ids: Sequence[str], *, now: datetime) -> None:
        stamp = _sqlite_datetime(now)
        with connection.cursor() as cursor:
            for chunk in _chunks(ids, self.id_batch_size - 2):
                marks = ", ".join("%s" for _ in chunk)
                cursor.execute(
                    f'UPDATE "{self.table}" SET "synced_at" = %s WHERE "store_id" = %s AND "customer_id" IN ({marks})',
                    [stamp, self.store_id, *chunk],
                )


def sqlite_max_variables() -> int:
    """How many bound parameters one SQLite statement may carry on this connection (capped)."""
    connection.ensure_connection()
    raw = connection.connection
    try:
        limit = int(raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    except (AttributeError, sqlite3.Error):
        limit = SQLITE_FALLBACK_MAX_VARIABLES
    return max(1, min(limit, SQLITE_DEFAULT_MAX_VARIABLES))


def _sqlite_datetime(value: datetime) -> str:
    # Django stores aware datetimes on SQLite as naive UTC text (str() of the datetime); match it exactly
    # so comparisons with values written by the ORM stay correct.
    return str(value.astimezone(UTC).replace(tzinfo=None))


# How Django stores these columns on SQLite, per column index (text columns go as they are).
_SQLITE_CONVERTERS: tuple[tuple[int, Callable[[Any], Any]], ...] = (
    *((i, date.isoformat) for i, _ in _DATE_INDEXES),
    *((i, _sqlite_datetime) for i, _ in _DATETIME_INDEXES),
    (_POINTS, str),
    (_ACTIVE, int),
    (_BANNED, int),
)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
