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

With `workers` > 1 (PostgreSQL only: SQLite has one writer at a time) a pass is cut into chunks of consecutive ids
that worker processes take from a queue, each with its own connection (its own backend): disjoint id ranges, so
no row is read by two workers, and every guarantee above holds per batch. The processes are forked once per run
(the connections closed first) and report progress through shared counters; a worker that fails or dies fails
the run (RotationWorkerError; the others stop after the batch in hand, or are ended with it), and a rerun carries
on.

Nothing else is kept: what still needs rotation is read from the data itself, so a run that is stopped (or
killed) is resumed by running it again. Reads work throughout: every configured key decrypts, and lookups match
a value's index under every configured index key (customers.crypto.blind_indexes). Values that are not
ciphertexts of ours, or do not authenticate, are left alone and reported by id (never their content).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import connection, connections, models, transaction

from customers import crypto
from customers.erasure import PURPOSE as ERASURE_PURPOSE
from customers.fields import (
    CARD_PURPOSE,
    IDEMPOTENCY_RESPONSE_PURPOSE,
    LICENCE_PURPOSE,
    RAW_PURPOSE,
    REJECTED_PAYLOAD_PURPOSE,
    card_index,
    licence_index,
    pii_digest,
    seal_customer_pii,
)
from customers.models import Customer, ErasureSuppression, IdempotencyRecord, RejectedRecord

DEFAULT_BATCH_SIZE = 2000
# Passes over a table at most in one run: a pass leaves the rows a concurrent write held or changed meanwhile;
# the next pass (from the start, quick once most rows are done) takes those.
MAX_PASSES = 3
# Ids of unreadable rows kept for the report at most.
MAX_REPORTED_IDS = 20
# Chunks a pass is cut into per worker (at least two batches each): enough that the workers finish together
# (the last chunk is the most one waits for another), few enough that a chunk's start costs nothing.
CHUNKS_PER_WORKER = 32
# How often the parent of the workers reads their progress (seconds).
PROGRESS_EVERY = 0.25


def default_workers() -> int:
    """Worker processes when none are asked for: two on PostgreSQL (a backend each: on a 2-core machine both
    cores write, and the service keeps what its own backends need), one on a single core or on SQLite, and one
    inside a transaction (called from code that holds one: workers could not see what it has not committed)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


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


class RotationWorkerError(RuntimeError):
    """A worker process failed or died: what it had committed stays rotated; a rerun carries on."""


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

# Called after each batch commits: (table label, rows the batch looked at, the batch's last id). With several
# workers it is called in the calling process, as their progress comes in: the rows since the last call, summed
# over the workers, and the highest id a worker has reached.
OnBatch = Callable[[str, int, int], None]
# Runs one pass over a table from a start id: (table, what the run did to it so far, batch size, start id).
_PassRunner = Callable[[SealedTable, TableRotation, int, int], None]


def pii_keys_rotate(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    start_id: int = 0,
    tables: Sequence[SealedTable] = TABLES,
    on_batch: OnBatch | None = None,
    workers: int = 1,
) -> RotationResult:
    """Re-encrypt and re-index every table's rows not under the current keys, in batches of `batch_size` rows
    by id from `start_id`, by `workers` processes (PostgreSQL only for more than one); MissingKeyError (before
    anything is written) when stored values need a key that is no longer configured, RotationWorkerError when a
    worker process fails or dies."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if workers > 1 and connection.vendor != "postgresql":
        raise ValueError("several workers need PostgreSQL (SQLite has one writer at a time)")
    started = time.monotonic()
    census = pii_rotation_census(tables)
    absent = missing_keys(census)
    if absent:
        raise MissingKeyError.for_keys(absent)
    results = []
    with _crew(workers, on_batch) as run_pass:
        for target, counted in zip(tables, census, strict=True):
            done = TableRotation(target.label, left=counted.rows)
            passes = 0
            while done.left > len(done.unreadable) and passes < MAX_PASSES:
                before = done.reencrypted + done.reindexed
                run_pass(target, done, batch_size, start_id)
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


@contextlib.contextmanager
def _crew(workers: int, on_batch: OnBatch | None) -> Iterator[_PassRunner]:
    """What runs a pass: this process alone, or `workers` forked processes over chunks of the id range."""
    if workers == 1:

        def alone(target: SealedTable, done: TableRotation, batch_size: int, start_id: int) -> None:
            _rotate_pass(target, done, batch_size=batch_size, start_id=start_id, on_batch=on_batch)

        yield alone
        return
    with _Workers(workers, on_batch) as crew:
        yield crew.run_pass


# A worker process's own state (set by _worker_start after the fork).
_slot = 0
_rows_done: Any = None  # shared: rows looked at, per worker (each slot written by its worker alone)
_last_ids: Any = None  # shared: the last id each worker's latest batch reached
_stop: Any = None  # shared: set by the parent when the run fails; a worker stops after the batch in hand


class _Stopped(Exception):
    """The parent asked the workers to stop (another worker failed, or the run was interrupted)."""


def _worker_start(slots: Any, rows_done: Any, last_ids: Any, stop: Any) -> None:
    global _slot, _rows_done, _last_ids, _stop
    import signal

    # Ctrl-C reaches the whole process group: the parent alone handles it (it stops the workers between
    # batches), rather than each worker dying with a traceback wherever it is.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with slots.get_lock():
        _slot = slots.value
        slots.value += 1
    _rows_done, _last_ids, _stop = rows_done, last_ids, stop


def _worker_ready() -> int:
    return os.getpid()


def _rotate_chunk(target: SealedTable, after: int, upto: int | None, batch_size: int) -> TableRotation:
    """In a worker: one pass over the ids in (after, upto] (upto None: to the end of the table)."""
    part = TableRotation(target.label)

    def advance(label: str, rows: int, last_id: int) -> None:
        _rows_done[_slot] += rows
        _last_ids[_slot] = last_id
        if _stop.value:
            raise _Stopped

    try:
        _rotate_pass(target, part, batch_size=batch_size, start_id=after, stop_id=upto, on_batch=advance)
    except (_Stopped, MissingKeyError):
        if not _stop.value:
            raise
    except Exception as exc:
        # Raised again in the parent: a plain message (whatever the exception, it pickles), no data in it.
        raise RotationWorkerError(f"{type(exc).__name__}: {exc}") from None
    finally:
        connection.close()  # a worker's backend ends with its chunk, cleanly, not when the process is reaped
    return part


def _merge(done: TableRotation, part: TableRotation) -> None:
    done.rows += part.rows
    done.reencrypted += part.reencrypted
    done.reindexed += part.reindexed
    done.skipped += part.skipped
    done.unreadable |= part.unreadable


class _Workers:
    """`count` worker processes, forked once (with no database connection open) and fed chunks of consecutive
    ids; their progress read from shared counters, each written by one worker (nothing to lock, so a worker
    killed at any moment leaves nothing held)."""

    def __init__(self, count: int, on_batch: OnBatch | None) -> None:
        if connection.in_atomic_block:
            raise ValueError("several workers cannot rotate inside a transaction (each commits its own batches)")
        context = multiprocessing.get_context("fork")  # the workers inherit the settings (keys, database)
        self.count = count
        self.on_batch = on_batch
        self.rows_done = context.Array("q", count, lock=False)
        self.last_ids = context.Array("q", count, lock=False)
        self.stop = context.Value("b", 0, lock=False)
        self.reported = 0
        connections.close_all()  # a forked worker must not share a connection of this process
        self.executor = ProcessPoolExecutor(
            count,
            mp_context=context,
            initializer=_worker_start,
            initargs=(context.Value("i", 0), self.rows_done, self.last_ids, self.stop),
        )

    def __enter__(self) -> _Workers:
        try:
            # The first task forks every worker (fork start method), now, while no connection is open.
            self.executor.submit(_worker_ready).result(timeout=120)
        except BaseException:
            self.executor.shutdown(wait=True, cancel_futures=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.value = 1
        self.executor.shutdown(wait=True, cancel_futures=True)

    def chunks(self, target: SealedTable, start_id: int, batch_size: int) -> list[tuple[int, int | None]]:
        """The pass's id ranges (after, upto], the last one open-ended (rows added meanwhile)."""
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT min("id"), max("id") FROM "{target.table}" WHERE "id" > %s', [start_id])
            first, last = cursor.fetchone()
        if last is None:
            return []
        step = max(2 * batch_size, math.ceil((last - first + 1) / (self.count * CHUNKS_PER_WORKER)))
        starts = range(first - 1, last, step)
        return [(lo, lo + step) for lo in starts[:-1]] + [(starts[-1], None)]

    def run_pass(self, target: SealedTable, done: TableRotation, batch_size: int, start_id: int) -> None:
        for i in range(self.count):  # the workers are idle between passes
            self.rows_done[i] = self.last_ids[i] = 0
        self.reported = 0
        pending: set[Future[TableRotation]] = {
            self.executor.submit(_rotate_chunk, target, lo, hi, batch_size)
            for lo, hi in self.chunks(target, start_id, batch_size)
        }
        try:
            while pending:
                finished, pending = wait(pending, timeout=PROGRESS_EVERY, return_when=FIRST_COMPLETED)
                self.report(target.label)
                for future in finished:
                    _merge(done, future.result())
        except BrokenProcessPool:
            raise RotationWorkerError(
                "a worker process died (killed, or out of memory) and the others were stopped"
            ) from None
        except BaseException:
            self.stop.value = 1  # the others stop after the batch in hand
            raise
        finally:
            for future in pending:
                future.cancel()

    def report(self, label: str) -> None:
        total = sum(self.rows_done)
        if self.on_batch is not None and total > self.reported:
            self.on_batch(label, total - self.reported, max(self.last_ids))
        self.reported = total


def _rotate_pass(
    target: SealedTable,
    done: TableRotation,
    *,
    batch_size: int,
    start_id: int,
    stop_id: int | None = None,
    on_batch: OnBatch | None,
) -> None:
    """One pass over a table's ids in (start_id, stop_id]. A batch's rows are read, their new values computed,
    then written in one transaction; on PostgreSQL the write is sent without waiting, and the next batch is
    computed while the database writes this one."""
    statements = _Statements.for_connection(target)
    upto = _NO_END if stop_id is None else stop_id
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
        rows = statements.select(start_id, upto, batch_size)
        while rows:
            updates = _reseal(target, rows, done)
            if pending is not None:
                finish()
            following = statements.select(rows[-1][0], upto, batch_size)
            pending = (statements.write(updates), updates, rows)
            rows = following
        if pending is not None:
            finish()
    finally:
        if pending is not None:  # stopped by an error: what was sent is written (or not) whole, either way
            pending[0].close()


_NO_END = 2**63 - 1  # the last id of an open-ended range


@dataclass(frozen=True, slots=True)
class _Update:
    """A row's new values (its encrypted columns, then for customers the index columns; None: keep what the row
    holds) and the values it was read with (the guard: its encrypted columns, and for customers the index key
    id)."""

    pk: int
    new: tuple[Any, ...]
    old: tuple[Any, ...]
    reencrypted: bool
    reindexed: bool


def _reseal(target: SealedTable, rows: Sequence[tuple[Any, ...]], done: TableRotation) -> list[_Update]:
    """The new values of a batch's rows (laid out as _Statements selects them), made as the writer makes them
    (crypto.Sealer; for customers, customers.fields); the unreadable rows are noted in `done` and left out.

    Only what is stale is made again: a ciphertext under the current key is kept (not decrypted, unless the
    indexes need its value, nor encrypted again), and blind indexes and digest are computed only when the index
    key changed; what is kept is not sent back (None)."""
    sealer = crypto.Sealer()
    current = f"{crypto.PREFIX}.{crypto.encryption_keys().current_id}."
    width = len(target.columns)
    purposes = [purpose for _, purpose in target.columns]
    associated = [purpose.encode() for purpose in purposes]
    keep_indexes = (None,) * len(_INDEX_COLUMNS)
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
        new: list[Any]
        if reindex and any(stale):
            licence, card, raw_json = plain
            *fresh, indexes = seal_customer_pii(sealer, licence, card, raw_json)
            new = [fresh[i] if stale[i] else None for i in range(width)] + list(indexes)
        elif reindex:
            licence, card, raw_json = plain
            new = [None] * width
            new += [licence_index(licence), card_index(card), pii_digest(licence, card, raw_json), sealer.index_key_id]
        else:
            new = [sealer.encrypt(text, purpose=associated[i]) if stale[i] else None for i, text in enumerate(plain)]
            if target.indexed:
                new += keep_indexes
        old = (*sealed, row[-1]) if target.indexed else tuple(sealed)
        updates.append(_Update(pk, tuple(new), old, reencrypted=any(stale), reindexed=bool(reindex)))
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
        # What a batch writes (a column given None keeps its value), and what it reads after the id: what each
        # row's write is guarded by.
        self.written = [*sealed, *_INDEX_COLUMNS] if target.indexed else sealed
        self.guarded = [*sealed, "pii_index_key"] if target.indexed else sealed
        self.select_sql = (
            f'SELECT "id", {_quoted(self.guarded)} FROM "{target.table}" '
            f'WHERE "id" > %s AND "id" <= %s AND {{needs}} ORDER BY "id" LIMIT %s'
        )

    @staticmethod
    def for_connection(target: SealedTable) -> _Statements:
        if connection.vendor == "postgresql":
            return _PostgresStatements(target)
        return _Statements(target)

    def select(self, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]:
        """The next rows in (after, upto] needing rotation (under the keys configured now). No lock: each row's
        write is guarded by what was read."""
        needs = _needs_rotation(self.target, _current_prefix(), crypto.index_keys().current_id)
        with connection.cursor() as cursor:
            cursor.execute(self.select_sql.format(needs=needs), [after, upto, limit])
            return list(cursor.fetchall())

    def write(self, updates: Sequence[_Update]) -> _Sent:
        """Write a batch in one transaction, each row only if it still holds what was read."""
        sets = ", ".join(f'"{c}" = COALESCE(%s, "{c}")' for c in self.written)
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
        sets = ", ".join(f'"{c}" = COALESCE(u."new_{c}", t."{c}")' for c in self.written)
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
