# ruff: noqa: S608 -- SQL is assembled from model metadata (table and column names) and key ids checked by
# customers.crypto (letters, digits, - and _); values are bound.
"""Key rotation of personal data at rest (`manage.py rotate_pii_keys`): every ciphertext re-encrypted under the
current key of PII_ENCRYPTION_KEYS, every customer's blind indexes and digest recomputed under the current key of
PII_BLIND_INDEX_KEYS, while the service runs.

Rotation works through each table in batches by id (keyset), each batch one short transaction:

- select the next rows holding a ciphertext whose key id is not the current one (a text prefix test on each
  column: `cf1.<current id>.`) or, for customers, whose `pii_index_key` is not the current index key; on
  PostgreSQL `FOR UPDATE SKIP LOCKED`, so a batch never waits for a sync's page (and no two writers can lock in
  opposite orders: no deadlock), and a row a page holds now is left for the next pass;
- decrypt with whichever configured key made each value, encrypt under the current key, recompute the indexes
  and the digest (customers.fields, the functions the ORM and the writer use);
- write them back in one statement (PostgreSQL: arrays through `unnest`; SQLite: executemany), each row guarded
  by the ciphertexts it was read with: a row changed meanwhile is left as it is (what changed it wrote under the
  current keys, or the next pass takes it).

Nothing else is kept: what still needs rotation is read from the data itself, so a run that is stopped (or
killed) is resumed by running it again. Reads work throughout: every configured key decrypts, and lookups match
a value's index under every configured index key (customers.crypto.blind_indexes). Values that are not
ciphertexts of ours, or do not authenticate, are left alone and reported by id (never their content).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import connection, models, transaction

from customers import crypto
from customers.erasure import PURPOSE as ERASURE_PURPOSE
from customers.fields import (
    CARD_PURPOSE,
    IDEMPOTENCY_RESPONSE_PURPOSE,
    LICENCE_PURPOSE,
    RAW_PURPOSE,
    REJECTED_PAYLOAD_PURPOSE,
    seal_customer_pii,
)
from customers.models import Customer, ErasureSuppression, IdempotencyRecord, RejectedRecord

DEFAULT_BATCH_SIZE = 2000
# Passes over a table at most in one run: a pass leaves the rows a concurrent write held or changed meanwhile;
# the next pass (from the start, quick once most rows are done) takes those.
MAX_PASSES = 3
# Ids of unreadable rows kept for the report at most.
MAX_REPORTED_IDS = 20


@dataclass(frozen=True, slots=True)
class SealedTable:
    """A table holding ciphertexts: its model, its encrypted columns with their purposes and, for customers,
    whether blind indexes and a digest are derived from them (with the index key's id in `pii_index_key`)."""

    label: str
    model: type[models.Model]
    columns: tuple[tuple[str, str], ...]
    indexed: bool = False

    @property
    def table(self) -> str:
        return self.model._meta.db_table


CUSTOMERS = SealedTable(
    "customers",
    Customer,
    (("drivers_license", LICENCE_PURPOSE), ("medical_card_number", CARD_PURPOSE), ("raw", RAW_PURPOSE)),
    indexed=True,
)
TABLES: tuple[SealedTable, ...] = (
    CUSTOMERS,
    SealedTable("rejected records", RejectedRecord, (("payload", REJECTED_PAYLOAD_PURPOSE),)),
    SealedTable("idempotency records", IdempotencyRecord, (("response", IDEMPOTENCY_RESPONSE_PURPOSE),)),
    # Its blind index is recomputed after the re-encryption (suppressions_reindex: few rows, each read alone).
    SealedTable("erasure suppressions", ErasureSuppression, (("sealed_ref", ERASURE_PURPOSE),)),
)
_INDEX_COLUMNS = ("drivers_license_index", "medical_card_number_index", "pii_digest", "pii_index_key")
NOT_A_CIPHERTEXT = "(not a ciphertext)"


class MissingKeyError(crypto.PiiKeyError):
    """Stored values need a key that PII_ENCRYPTION_KEYS does not hold."""

    @classmethod
    def for_keys(cls, absent: Iterable[str]) -> MissingKeyError:
        return cls(
            f"Stored values were encrypted with key(s) {', '.join(sorted(absent))}, which PII_ENCRYPTION_KEYS does "
            "not hold: put them back (after the current key) and run again."
        )


@dataclass(slots=True)
class TableCensus:
    """What a table holds that needs rotation."""

    label: str
    rows: int = 0  # rows to rewrite (any stale ciphertext or, for customers, a stale index key)
    ciphertexts: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> {key id: stale values}
    index_keys: dict[str, int] = field(default_factory=dict)  # stale pii_index_key -> rows (customers)

    def key_ids(self) -> set[str]:
        return {kid for by_key in self.ciphertexts.values() for kid in by_key}


@dataclass(slots=True)
class TableRotation:
    """What a run did to one table."""

    label: str
    rows: int = 0  # rows looked at
    reencrypted: int = 0  # rows with a ciphertext re-encrypted
    reindexed: int = 0  # customers whose blind indexes and digest were recomputed
    skipped: int = 0  # rows changed between the batch's read and its write (left as the change made them)
    unreadable: set[int] = field(default_factory=set)  # ids of rows holding a value no configured key reads
    left: int = 0  # rows still needing rotation after the last pass


@dataclass(slots=True)
class RotationResult:
    tables: list[TableRotation]
    seconds: float

    def total(self, attribute: str) -> int:
        return sum(getattr(t, attribute) for t in self.tables)

    @property
    def finished(self) -> bool:
        return all(t.left == 0 for t in self.tables)


# ---- what needs rotation ------------------------------------------------------------------------------------


def _current_prefix() -> str:
    return f"{crypto.PREFIX}.{crypto.encryption_keys().current_id}."


def _stale(column: str, prefix: str) -> str:
    """SQL: the column holds a value that is not a ciphertext under the current key ('' and NULL hold nothing)."""
    return f"(\"{column}\" <> '' AND substr(\"{column}\", 1, {len(prefix)}) <> '{prefix}')"


def _needs_rotation(target: SealedTable, prefix: str, index_key: str) -> str:
    tests = [_stale(column, prefix) for column, _ in target.columns]
    if target.indexed:
        tests.append(f"\"pii_index_key\" <> '{index_key}'")
    return "(" + " OR ".join(tests) + ")"


def _key_id_sql(column: str) -> str:
    """SQL: the key id of a ciphertext (`cf1.<id>.<body>`), NULL for a value that is not one of ours."""
    if connection.vendor == "postgresql":
        kid = f"split_part(\"{column}\", '.', 2)"
    else:
        kid = f'substr("{column}", 5, instr(substr("{column}", 5), \'.\') - 1)'
    return f"CASE WHEN substr(\"{column}\", 1, 4) = '{crypto.PREFIX}.' THEN {kid} END"


def pii_rotation_census(tables: Sequence[SealedTable] = TABLES) -> list[TableCensus]:
    """What each table holds that is not under the current keys (one scan per column; nothing is changed)."""
    prefix = _current_prefix()
    index_key = crypto.index_keys().current_id
    found = []
    with connection.cursor() as cursor:
        for target in tables:
            census = TableCensus(target.label)
            cursor.execute(f'SELECT count(*) FROM "{target.table}" WHERE {_needs_rotation(target, prefix, index_key)}')
            census.rows = int(cursor.fetchone()[0])
            if census.rows:
                for column, _ in target.columns:
                    cursor.execute(
                        f'SELECT {_key_id_sql(column)}, count(*) FROM "{target.table}" '
                        f"WHERE {_stale(column, prefix)} GROUP BY 1"
                    )
                    by_key = {kid or NOT_A_CIPHERTEXT: int(n) for kid, n in cursor.fetchall()}
                    if by_key:
                        census.ciphertexts[column] = by_key
                if target.indexed:
                    cursor.execute(
                        f'SELECT "pii_index_key", count(*) FROM "{target.table}" '
                        f"WHERE \"pii_index_key\" <> '{index_key}' GROUP BY 1"
                    )
                    census.index_keys = {kid or "(none)": int(n) for kid, n in cursor.fetchall()}
            found.append(census)
    return found


def missing_keys(census: Iterable[TableCensus]) -> set[str]:
    """Key ids stored values were made with that PII_ENCRYPTION_KEYS does not hold."""
    configured = set(crypto.encryption_keys().ids)
    return {kid for table in census for kid in table.key_ids()} - configured - {NOT_A_CIPHERTEXT}


# ---- rotation -----------------------------------------------------------------------------------------------

# Called after each batch commits: (table label, rows the batch looked at, the batch's last id).
OnBatch = Callable[[str, int, int], None]


def pii_keys_rotate(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    start_id: int = 0,
    tables: Sequence[SealedTable] = TABLES,
    on_batch: OnBatch | None = None,
) -> RotationResult:
    """Re-encrypt and re-index every table's rows not under the current keys, in batches of `batch_size` rows
    by id from `start_id`; MissingKeyError (before anything is written) when stored values need a key that is
    no longer configured."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.monotonic()
    census = pii_rotation_census(tables)
    absent = missing_keys(census)
    if absent:
        raise MissingKeyError.for_keys(absent)
    results = []
    for target, counted in zip(tables, census, strict=True):
        done = TableRotation(target.label, left=counted.rows)
        passes = 0
        while done.left > len(done.unreadable) and passes < MAX_PASSES:
            before = done.reencrypted + done.reindexed
            _rotate_pass(target, done, batch_size=batch_size, start_id=start_id, on_batch=on_batch)
            passes += 1
            done.left = pii_rotation_census([target])[0].rows
            if done.reencrypted + done.reindexed == before:
                break  # nothing came forward: what is left is unreadable, or written again under old keys
        if target.model is ErasureSuppression:
            done.reindexed += suppressions_reindex()
        results.append(done)
    return RotationResult(results, time.monotonic() - started)


def suppressions_reindex() -> int:
    """Recompute each erasure suppression's blind index under the current index key, from its encrypted
    reference (customers.erasure); the rows an erasure adds meanwhile are made under the current key already.
    Returns how many changed. Suppressions are few (one per erased person): each is read and written alone."""
    changed = 0
    for pk, sealed_ref, index in ErasureSuppression.objects.values_list("pk", "sealed_ref", "index").iterator():
        try:
            fresh = crypto.blind_index(crypto.decrypt(sealed_ref, purpose=ERASURE_PURPOSE), purpose=ERASURE_PURPOSE)
        except crypto.PiiDecryptionError:
            continue  # reported by the table's re-encryption pass, like any unreadable value
        if fresh != index:
            changed += ErasureSuppression.objects.filter(pk=pk, index=index).update(index=fresh)
    return changed


def _rotate_pass(
    target: SealedTable, done: TableRotation, *, batch_size: int, start_id: int, on_batch: OnBatch | None
) -> None:
    """One pass over a table from `start_id`. A batch's rows are read, their new values computed, then written
    in one transaction; on PostgreSQL the write is sent without waiting, and the next batch is computed while
    the database writes this one."""
    statements = _Statements.for_connection(target)
    pending: tuple[_Sent, list[_Update], list[tuple[Any, ...]]] | None = None

    def finish() -> None:
        nonlocal pending
        assert pending is not None
        sent, updates, rows = pending
        pending = None
        written = sent.result()
        done.rows += len(rows)
        for update in updates:
            if update.pk in written:
                done.reencrypted += update.reencrypted
                done.reindexed += update.reindexed
            else:
                done.skipped += 1
        if on_batch is not None:
            on_batch(target.label, len(rows), rows[-1][0])

    try:
        rows = statements.select(start_id, batch_size)
        while rows:
            updates = _reseal(target, rows, done)
            if pending is not None:
                finish()
            following = statements.select(rows[-1][0], batch_size)
            pending = (statements.write(updates), updates, rows)
            rows = following
        if pending is not None:
            finish()
    finally:
        if pending is not None:  # stopped by an error: what was sent is written (or not) whole, either way
            pending[0].close()


@dataclass(frozen=True, slots=True)
class _Update:
    """A row's new values (its encrypted columns, then for customers the index columns) and the values it was
    read with (the guard: its encrypted columns, and for customers the index key id)."""

    pk: int
    new: tuple[Any, ...]
    old: tuple[Any, ...]
    reencrypted: bool
    reindexed: bool


def _reseal(target: SealedTable, rows: Sequence[tuple[Any, ...]], done: TableRotation) -> list[_Update]:
    """The new values of a batch's rows (laid out as _Statements selects them), made as the writer makes them
    (crypto.Sealer; for customers, customers.fields.seal_customer_pii); the unreadable rows are noted in `done`
    and left out."""
    sealer = crypto.Sealer()
    current = f"{crypto.PREFIX}.{crypto.encryption_keys().current_id}."
    width = len(target.columns)
    purposes = [purpose for _, purpose in target.columns]
    associated = [purpose.encode() for purpose in purposes]
    updates = []
    for row in rows:
        pk, sealed = row[0], row[1 : 1 + width]
        stale = [bool(value) and not value.startswith(current) for value in sealed]
        reindex = target.indexed and row[-1] != sealer.index_key_id
        try:
            plain = [
                crypto.decrypt(value, purpose=purpose) if stale[i] or reindex else ""
                for i, (value, purpose) in enumerate(zip(sealed, purposes, strict=True))
            ]
        except crypto.PiiKeyError as exc:
            raise MissingKeyError(str(exc)) from None
        except crypto.PiiDecryptionError:
            done.unreadable.add(pk)
            continue
        old = list(sealed)
        if target.indexed:
            old.append(row[-1])
            licence, card, raw_json = plain
            *fresh, indexes = seal_customer_pii(sealer, licence, card, raw_json)
            new = [fresh[i] if stale[i] else value for i, value in enumerate(sealed)]
            new += indexes if reindex else row[1 + width :]
        else:
            new = [
                sealer.encrypt(text, purpose=associated[i]) if stale[i] else value
                for i, (value, text) in enumerate(zip(sealed, plain, strict=True))
            ]
        updates.append(_Update(pk, tuple(new), tuple(old), reencrypted=any(stale), reindexed=bool(reindex)))
    return updates


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


class _Sent(Protocol):
    """A batch's write once sent: `result()` waits for it and gives the ids of the rows written; `close()` waits
    without raising (after an error elsewhere)."""

    def result(self) -> set[int]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Done:
    """A write that finished before `write()` returned."""

    written: set[int]

    def result(self) -> set[int]:
        return self.written

    def close(self) -> None:
        pass


class _Statements:
    """A table's batch SQL in the database's flavour (SQLite's here: the batch's write is one transaction of
    per-row UPDATEs, done before `write()` returns)."""

    def __init__(self, target: SealedTable) -> None:
        self.target = target
        sealed = [column for column, _ in target.columns]
        # What a batch reads (after the id) and writes, and what each row's write is guarded by.
        self.written = [*sealed, *_INDEX_COLUMNS] if target.indexed else sealed
        self.guarded = [*sealed, "pii_index_key"] if target.indexed else sealed
        self.select_sql = (
            f'SELECT "id", {_quoted(self.written)} FROM "{target.table}" '
            f'WHERE "id" > %s AND {{needs}} ORDER BY "id" LIMIT %s'
        )

    @staticmethod
    def for_connection(target: SealedTable) -> _Statements:
        if connection.vendor == "postgresql":
            return _PostgresStatements(target)
        return _Statements(target)

    def select(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        """The next rows after id `after` needing rotation (under the keys configured now). No lock: each row's
        write is guarded by what was read."""
        needs = _needs_rotation(self.target, _current_prefix(), crypto.index_keys().current_id)
        with connection.cursor() as cursor:
            cursor.execute(self.select_sql.format(needs=needs), [after, limit])
            return list(cursor.fetchall())

    def write(self, updates: Sequence[_Update]) -> _Sent:
        """Write a batch in one transaction, each row only if it still holds what was read."""
        sets = ", ".join(f'"{c}" = %s' for c in self.written)
        guards = " AND ".join(f'"{c}" IS %s' for c in self.guarded)
        sql = f'UPDATE "{self.target.table}" SET {sets} WHERE "id" = %s AND {guards}'
        written = set()
        with transaction.atomic(), connection.cursor() as cursor:
            for u in updates:
                cursor.execute(sql, [*u.new, u.pk, *u.old])
                if cursor.rowcount:
                    written.add(u.pk)
        return _Done(written)


class _PostgresStatements(_Statements):
    """One UPDATE per batch (one transaction by itself), its values as arrays (binary parameters on a
    server-side-binding cursor, as customers.writer sends pages), sent in a pipeline without waiting.

    It first locks the batch's rows with SKIP LOCKED: a row a sync's page holds now is left for the next pass,
    so the UPDATE never waits for a lock (and a page and a batch cannot deadlock, whatever order they lock in);
    a row changed since it was read no longer matches its guard and is left as the change made it."""

    def __init__(self, target: SealedTable) -> None:
        super().__init__(target)
        names = ["id", *(f"new_{c}" for c in self.written), *(f"old_{c}" for c in self.guarded)]
        arrays = ", ".join(["%b::bigint[]"] + ["%b::text[]"] * (len(names) - 1))
        sets = ", ".join(f'"{c}" = u."new_{c}"' for c in self.written)
        guards = " AND ".join(f't."{c}" IS NOT DISTINCT FROM u."old_{c}"' for c in self.guarded)
        table = f'"{target.table}"'
        self.update_sql = (
            f"WITH u AS MATERIALIZED (SELECT * FROM unnest({arrays}) AS u({_quoted(names)})), "
            f'held AS (SELECT "id" FROM {table} WHERE "id" IN (SELECT "id" FROM u) FOR UPDATE SKIP LOCKED) '
            f"UPDATE {table} AS t SET {sets} FROM u "
            f'WHERE t."id" = u."id" AND t."id" IN (SELECT "id" FROM held) AND {guards} RETURNING t."id"'
        )

    def write(self, updates: Sequence[_Update]) -> _Sent:
        import psycopg

        columns: list[list[Any]] = [[u.pk for u in updates]]
        columns += [[u.new[i] for u in updates] for i in range(len(self.written))]
        columns += [[u.old[i] for u in updates] for i in range(len(self.guarded))]
        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        raw_connection = connection.connection
        with connection.wrap_database_errors:
            pipeline = raw_connection.pipeline()
            pipeline.__enter__()
            try:
                cursor = psycopg.Cursor(raw_connection)
                cursor.execute(self.update_sql, columns)
            except BaseException as exc:
                pipeline.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return _Pipelined(pipeline, cursor)


class _Pipelined:
    """A batch's UPDATE in flight in a psycopg pipeline."""

    def __init__(self, pipeline: Any, cursor: Any) -> None:
        self.pipeline = pipeline
        self.cursor = cursor

    def result(self) -> set[int]:
        with connection.wrap_database_errors:
            self.pipeline.__exit__(None, None, None)  # waits for the result; raises the statement's error
            with self.cursor:
                return {pk for (pk,) in self.cursor.fetchall()}

    def close(self) -> None:
        # Only after another error, which is on its way up: this one (the batch's own, if any) would hide it.
        with contextlib.suppress(Exception):
            self.pipeline.__exit__(None, None, None)
        self.cursor.close()
