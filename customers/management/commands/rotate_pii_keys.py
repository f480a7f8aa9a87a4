"""Re-encrypt personal data under the current PII key and re-index customers under the current index key."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from customers import crypto
from customers.key_rotation import (
    DEFAULT_BATCH_SIZE,
    MAX_REPORTED_IDS,
    MissingKeyError,
    RotationResult,
    RotationWorkerError,
    TableCensus,
    default_workers,
    missing_keys,
    pii_keys_rotate,
    pii_rotation_census,
)


class Command(BaseCommand):
    help = (
        "Re-encrypt licence and medical card numbers, vendor JSON and the other encrypted records under the first "
        "key of PII_ENCRYPTION_KEYS, and recompute customers' blind indexes under the first key of "
        "PII_BLIND_INDEX_KEYS, in batches (each one transaction) while the service runs. Stopped or killed, it "
        "carries on where it was when run again. On PostgreSQL several worker processes (--workers, each its own "
        "connection) share the work by id range. Rotate by putting new keys first in both settings (every "
        "process), running this, then removing the old keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows per batch (one transaction each; default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--start-id", type=int, default=0, help="Begin after this row id (default: the start of each table)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Worker processes, each with its own database connection, over disjoint id ranges (PostgreSQL "
            "only; default: 2 on PostgreSQL, or 1 on a single-core machine; SQLite: 1, one writer at a time).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what needs rotation; change nothing.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(
        self,
        *args: Any,
        batch_size: int,
        start_id: int,
        workers: int | None,
        dry_run: bool,
        no_progress: bool,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if workers is None:
            workers = default_workers()
        elif workers < 1:
            raise CommandError("--workers must be at least 1.")
        elif workers > 1 and connection.vendor != "postgresql":
            raise CommandError(
                f"--workers {workers}: several workers need PostgreSQL; {connection.vendor} has one writer at a "
                "time (run with --workers 1)."
            )
        elif workers > 1 and connection.in_atomic_block:
            raise CommandError(f"--workers {workers} cannot run inside a transaction: each worker commits its own.")
        try:
            encryption, index = crypto.encryption_keys(), crypto.index_keys()
            census = pii_rotation_census()
        except crypto.PiiKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Current keys: encryption {encryption.current_id!r}, blind index {index.current_id!r}.")
        for table in census:
            self.stdout.write(self.describe(table))
        if dry_run:
            absent = missing_keys(census)
            if absent:
                raise CommandError(str(MissingKeyError.for_keys(absent)))
            return
        total = sum(table.rows for table in census)
        if total:
            self.stdout.write(f"Workers: {workers}.")
        stream = self.stderr._out
        bars: list[tqdm[Any]] = []

        def advance(label: str, rows: int, last_id: int) -> None:
            if not bars:  # made at the first batch: after the workers are forked (tqdm may start a thread)
                bars.append(
                    tqdm(
                        total=total,
                        desc="rotating",
                        unit=" rows",
                        disable=no_progress or options.get("verbosity", 1) == 0 or not _is_tty(stream),
                        file=stream,
                        dynamic_ncols=True,
                    )
                )
            bar = bars[0]
            bar.set_postfix_str(f"{label} to id {last_id}", refresh=False)
            # A later pass re-reads rows a concurrent write held: the bar stops at its total.
            bar.update(min(rows, max(0, total - bar.n)))

        try:
            result = pii_keys_rotate(batch_size=batch_size, start_id=start_id, on_batch=advance, workers=workers)
        except MissingKeyError as exc:
            # Before any write (the census), or mid-run (a row written meanwhile under a key since removed): the
            # batch in hand rolls back, the batches committed before stay rotated.
            raise CommandError(str(exc)) from None
        except RotationWorkerError as exc:
            raise CommandError(
                f"A rotation worker failed ({exc}); the others stopped after the batch in hand. The batches "
                "committed stay rotated: run the command again to carry on."
            ) from None
        except KeyboardInterrupt:
            for bar in bars:
                bar.close()
            self.stderr.write("Interrupted: committed batches stay rotated; run the command again to carry on.")
            raise SystemExit(130) from None
        finally:
            for bar in bars:
                bar.close()
        self.report(result)

    @staticmethod
    def describe(table: TableCensus) -> str:
        if not table.rows:
            return f"{table.label}: nothing to rotate"
        parts = []
        for column, by_key in table.ciphertexts.items():
            keys = ", ".join(f"{kid} {n:,}" for kid, n in sorted(by_key.items()))
            parts.append(f"{column} under old keys ({keys})")
        if table.index_keys:
            keys = ", ".join(f"{kid} {n:,}" for kid, n in sorted(table.index_keys.items()))
            parts.append(f"indexed with old keys ({keys})")
        return f"{table.label}: {table.rows:,} rows to rotate: " + "; ".join(parts)

    def report(self, result: RotationResult) -> None:
        for table in result.tables:
            if table.rows:
                self.stdout.write(
                    f"{table.label}: {table.reencrypted:,} re-encrypted, {table.reindexed:,} re-indexed, "
                    f"{table.skipped:,} skipped (changed meanwhile), {table.left:,} left"
                )
        line = (
            f"Rotated in {result.seconds:.1f} s: {result.total('reencrypted'):,} rows re-encrypted, "
            f"{result.total('reindexed'):,} re-indexed, {result.total('skipped'):,} skipped because changed "
            f"meanwhile, {result.total('left'):,} left."
        )
        problems = []
        for table in result.tables:
            if table.unreadable:
                ids = ", ".join(str(pk) for pk in sorted(table.unreadable)[:MAX_REPORTED_IDS])
                more = "" if len(table.unreadable) <= MAX_REPORTED_IDS else ", …"
                problems.append(
                    f"{table.label}: {len(table.unreadable):,} row(s) hold a value no configured key reads "
                    f"(not a ciphertext of ours, or altered), left as they are: id {ids}{more}"
                )
            elif table.left:
                problems.append(
                    f"{table.label}: {table.left:,} row(s) still under old keys (held by a write in progress, or "
                    "written again by a process that still has the old keys first): run the command again"
                )
        if not problems:
            self.stdout.write(self.style.SUCCESS(line))
            return
        self.stdout.write(self.style.ERROR(line))
        raise CommandError("; ".join(problems))


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) if stream is not None else sys.stderr.isatty()
