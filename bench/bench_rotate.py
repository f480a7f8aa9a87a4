"""Re-keying 1M customers: `manage.py rotate_pii_keys` on PostgreSQL, while lookups by licence keep running.

    scripts/with-postgres.sh .venv/bin/python bench/bench_rotate.py --customers 1000000 --workers 1,2

Loads the customers once per database with COPY (bench/api_data.py's customers, their licence and medical card
numbers and a vendor JSON of about 700 characters encrypted under a bench key `bench`, with blind indexes and
digest; the table's secondary indexes and constraints are dropped for the load and made again after it, in the
same transaction: the table rotated has every index, built compactly), then for each --batch-size and each
--workers count runs the command in a child process, as an operator would, with a new key first and the previous
one after it (in both settings, or in the one --rotate names), and times it against the 5-minute target.
Meanwhile a reader thread looks customers up by licence number through the ORM (what the API's `driver_license`
filter runs) and checks each answer: the rotation must not make a lookup miss. Afterwards, with the new keys
alone, it checks with SQL that every ciphertext and every index key id is the new one, and reads a sample of
customers back. Each further run re-keys all of them again (bench -> bench2 -> bench3 ...).

--baseline-code DIR times another checkout's command first in the same run (e.g. the code before a change:
`git archive main | tar -x -C /tmp/base`), one worker, for a before/after on the same machine and load.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGET_SECONDS = 300.0
PII_COLUMNS = ("drivers_license_index", "medical_card_number_index", "pii_digest", "pii_index_key")


def key_entry(key_id: str) -> str:
    """A bench-only key, derived from its id (so a database loaded by an earlier run can be reused)."""
    digest = hashlib.sha256(f"customer-flow bench only: {key_id}".encode()).digest()
    return f"{key_id}:{base64.urlsafe_b64encode(digest).decode()}"


def key_ring(generation: int) -> str:
    """Generation 0: the loaded data's key alone; generation n: `bench<n+1>` first, then the one before."""
    ids = ["bench"] + [f"bench{n + 1}" for n in range(1, generation + 1)]
    return ",".join(key_entry(kid) for kid in reversed(ids[-2:]))


def generation_of(key_id: str) -> int:
    return 0 if key_id == "bench" else int(key_id.removeprefix("bench")) - 1


def configure_env() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("POS_CREDENTIALS_KEYS", "k7fZ6d8wVd0q1eVbQ2o8oQ3m0F7mVJ0rS2s8R1aZ0b4=")  # bench-only
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    use_keys(key_ring(0), key_ring(0))


def use_keys(encryption: str, index: str) -> None:
    """The two PII settings, for this process (once Django is set up) and the command's."""
    os.environ["PII_ENCRYPTION_KEYS"], os.environ["PII_BLIND_INDEX_KEYS"] = encryption, index
    from django.conf import settings

    if settings.configured:
        settings.PII_ENCRYPTION_KEYS, settings.PII_BLIND_INDEX_KEYS = encryption.split(","), index.split(",")


def card_of(n: int) -> str:
    """Every third customer is a medical patient with a card number."""
    return f"MED-{n:07d}-CA" if n % 3 == 0 else ""


def vendor_json(n: int, ident: dict[str, str]) -> dict[str, Any]:
    """A vendor record of about 700 characters (a Treez customer, trimmed), holding the numbers too."""
    return {
        "customer_id": str(100000 + n),
        "first_name": ident["first_name"],
        "last_name": ident["last_name"],
        "email": ident["email"],
        "phone": ident["phone"],
        "birthday": ident["birthday"],
        "drivers_license": ident["drivers_license"],
        "drivers_license_expiration": "2029-05-12",
        "patient_type": "MEDICAL" if card_of(n) else "ADULT",
        "medical_card": {"number": card_of(n), "state": "CA", "expiration": "2027-01-31"} if card_of(n) else None,
        "addresses": [{"street": f"{n % 999 + 1} Elm St", "city": "Oakland", "state": "CA", "zip": "94601"}],
        "rewards_balance": n % 300,
        "opt_in": {"email": n % 2 == 0, "sms": n % 5 == 0},
        "notes": "",
        "tags": ["bench", f"cohort-{n % 12}"],
        "last_update": "2025-06-01T12:00:00Z",
    }


def sealed_rows(store_ids: list[int], count: int) -> Iterator[tuple[object, ...]]:
    """api_data's customers as COPY rows of its COLUMNS, with a card number for some and a vendor JSON, their
    personal data encrypted as the writer stores it (customers.fields.seal_customer_pii)."""
    from api_data import COLUMNS, customer_identity, rows

    from customers import crypto
    from customers.fields import canonical_json, seal_customer_pii

    sealer = crypto.Sealer()
    for n, row in enumerate(rows(store_ids, count)):
        ident = customer_identity(n)
        licence, card = ident["drivers_license"], card_of(n)
        values = dict(zip(COLUMNS, row, strict=True))
        sealed_licence, sealed_card, sealed_raw, pii = seal_customer_pii(
            sealer, licence, card, canonical_json(vendor_json(n, ident))
        )
        values.update(drivers_license=sealed_licence, medical_card_number=sealed_card, raw=sealed_raw)
        values.update(zip(PII_COLUMNS, pii, strict=True))
        if card:
            values["customer_type"] = "medical"
        yield tuple(values[name] for name in COLUMNS)


def prepare(customers: int, stores: int, *, keep_indexes: bool) -> tuple[int, int, bool]:
    """Migrate; load the customers (under key generation 0) unless they are there; the key generations
    (encryption, index) they are under now (what an earlier run left), and whether they were loaded now."""
    import django

    django.setup()
    from api_data import bench_stores
    from django.core.management import call_command
    from django.db import connection

    from customers.models import Customer

    if connection.vendor != "postgresql":
        sys.exit("Run under scripts/with-postgres.sh (or with DATABASE_URL pointing at PostgreSQL).")
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT split_part(drivers_license, '.', 2), pii_index_key, count(*) FROM customers_customer "
            "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1"
        )
        found = cursor.fetchone()
    have = Customer.objects.count()
    if have >= customers and found is not None:
        return generation_of(found[0]), generation_of(found[1]), False
    Customer.objects.all().delete()
    store_ids = [store.pk for store in bench_stores(stores)]
    load(store_ids, customers, keep_indexes=keep_indexes)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE customers_customer SET (autovacuum_enabled = false)")
        cursor.execute("VACUUM ANALYZE customers_customer")
    return 0, 0, True


def compact() -> float:
    """Make the table as a fresh load leaves it (the dead versions of a previous run gone, pages full, indexes
    rebuilt) and keep autovacuum off it, so that every run starts from the same table and none shares the
    machine with a vacuum of the one before: the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE customers_customer SET (autovacuum_enabled = false)")
        cursor.execute("VACUUM (FULL, ANALYZE) customers_customer")
    return time.perf_counter() - started


def secondary_indexes(cursor: Any) -> tuple[list[str], list[str]]:
    """SQL that drops the customer table's indexes and constraints other than its primary key (and its CHECKs),
    and SQL that makes them again as they were (definitions read from the catalog)."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'customers_customer'::regclass AND contype IN ('u', 'f', 'x') ORDER BY conname"
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = 'customers_customer'::regclass AND NOT indisprimary AND indexrelid NOT IN "
        "(SELECT conindid FROM pg_constraint WHERE conrelid = 'customers_customer'::regclass) ORDER BY 1"
    )
    indexes = cursor.fetchall()
    drop = [f'ALTER TABLE customers_customer DROP CONSTRAINT "{name}"' for name, _ in constraints]
    drop += [f"DROP INDEX {name}" for name, _ in indexes]
    make = [definition for _, definition in indexes]
    make += [f'ALTER TABLE customers_customer ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]
    return drop, make


def load(store_ids: list[int], customers: int, *, keep_indexes: bool) -> None:
    """COPY the customers in one transaction; unless keep_indexes, without the secondary indexes and constraints,
    made again after the rows are in (what a restore from pg_dump does)."""
    from api_data import COLUMNS
    from django.db import connection, transaction

    how = "indexes kept" if keep_indexes else "secondary indexes and constraints made after the rows"
    print(f"Loading {customers:,} customers over {len(store_ids)} stores with COPY ({how}) ...", flush=True)
    started = time.perf_counter()
    with transaction.atomic():
        raw_connection = connection.connection
        with raw_connection.cursor() as cursor:
            drop, make = ([], []) if keep_indexes else secondary_indexes(cursor)
            for statement in drop:
                cursor.execute(statement)
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute("SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), 1, false)")
            with cursor.copy(f"COPY customers_customer ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for i, row in enumerate(sealed_rows(store_ids, customers)):
                    copy.write_row(row)
                    if i and i % 200_000 == 0:
                        print(f"  copied {i:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
            copied = time.perf_counter() - started
            for statement in make:
                cursor.execute(statement)
    seconds = time.perf_counter() - started
    print(
        f"  loaded in {seconds:.1f} s ({customers / seconds:,.0f} rows/s; COPY {copied:.1f} s, then "
        f"{len(make)} indexes and constraints made in {seconds - copied:.1f} s)",
        flush=True,
    )


def table_size() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('customers_customer'))")
        return str(cursor.fetchone()[0])


class Reader(threading.Thread):
    """Looks random customers up by licence number (ORM, the API filter's query) and checks each answer."""

    def __init__(self, customers: int, seed: int = 11) -> None:
        super().__init__(daemon=True)
        self.customers = customers
        self.rnd = random.Random(seed)
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.misses = 0
        self.errors: list[str] = []

    def run(self) -> None:
        from api_data import customer_identity
        from django.db import connection

        from customers.models import Customer

        try:
            while not self.stop.is_set():
                n = self.rnd.randrange(self.customers)
                licence = customer_identity(n)["drivers_license"]
                started = time.perf_counter()
                found = list(Customer.objects.licence_equal(licence.lower()).values_list("customer_id", flat=True))
                self.latencies.append(time.perf_counter() - started)
                if found != [str(100000 + n)]:
                    self.misses += 1
                time.sleep(0.005)  # a checkout's pace, not a load test
        except Exception as exc:  # reported, and the run fails
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def summary(self) -> str:
        if not self.latencies:
            return "no lookups"
        ms = sorted(x * 1000 for x in self.latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return (
            f"{len(ms):,} lookups by licence, {self.misses} missed, p50 {statistics.median(ms):.2f} ms, "
            f"p99 {p99:.2f} ms"
        )


def database_cpu_seconds() -> float:
    """CPU seconds the PostgreSQL server's processes have used so far: the postmaster's children alive now, plus
    those it has reaped (the command's backend, once the command ends). Needs to read the server's /proc."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data = Path(cursor.fetchone()[0])
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(x) for x in fields[11:15])  # its own time and its reaped children's
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def rotate(batch_size: int, workers: int | None, code: Path = ROOT) -> tuple[float, float, str]:
    """One run of the command (of the checkout at `code`) in a child process, with this process's keys: wall
    seconds, its CPU seconds (its workers' included), and what it printed. workers None: no --workers flag."""
    env = dict(os.environ)
    cmd = [sys.executable, str(code / "manage.py"), "rotate_pii_keys", "--no-progress", "--batch-size", str(batch_size)]
    extra = [] if workers is None else ["--workers", str(workers)]
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run([*cmd, *extra], env=env, cwd=code, capture_output=True, text=True, timeout=3600, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"rotate_pii_keys failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, done.stdout


def verify(generation: int, customers: int, sample: int = 2000) -> str:
    """With the new keys alone: every ciphertext and index key id is the new one; a sample reads back and is
    found by its licence and card."""
    from api_data import customer_identity
    from django.db import connection

    from customers import crypto
    from customers.models import Customer

    current = crypto.encryption_keys().current_id
    assert crypto.encryption_keys().ids == (current,), "verify runs with the new keys alone"
    prefix = f"cf1.{current}."
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM customers_customer WHERE (drivers_license <> '' AND left(drivers_license, %s) <> %s) "
            "OR (medical_card_number <> '' AND left(medical_card_number, %s) <> %s) OR left(raw, %s) <> %s "
            "OR pii_index_key <> %s",
            [len(prefix), prefix] * 3 + [crypto.index_keys().current_id],
        )
        stale = int(cursor.fetchone()[0])
    rnd = random.Random(generation)
    wrong = 0
    for _ in range(sample):
        n = rnd.randrange(customers)
        licence, card = customer_identity(n)["drivers_license"], card_of(n)
        held = Customer.objects.get(customer_id=str(100000 + n))
        by_licence = list(Customer.objects.licence_equal(licence).values_list("pk", flat=True))
        by_card = list(Customer.objects.card_number_equal(card).values_list("pk", flat=True)) if card else [held.pk]
        read = (held.drivers_license, held.medical_card_number, held.raw.get("drivers_license"))
        wrong += read != (licence, card, licence) or by_licence != [held.pk] or by_card != [held.pk]
    if stale or wrong:
        sys.exit(f"verification failed: {stale} rows not under the new keys, {wrong} of {sample} sampled read wrong")
    return f"verified: 0 rows under old keys; {sample:,} sampled customers read back and found by licence and card"


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of worker counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are at least 1")
    return counts


def rotations(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    if not modes or set(modes) - {"both", "encryption", "index"}:
        raise argparse.ArgumentTypeError(f"--rotate takes both, encryption or index (comma-separated): {text!r}")
    return modes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument(
        "--batch-size", type=int, action="append", default=[], help="Repeat to compare (default: the command's)."
    )
    parser.add_argument(
        "--workers",
        type=worker_counts,
        action="append",
        default=[],
        help="Worker counts to compare, comma-separated or repeated (e.g. 1,2); default: the command's default.",
    )
    parser.add_argument(
        "--rotate",
        type=rotations,
        action="append",
        default=[],
        help="Which keys the runs change, comma-separated or repeated to compare: both (the default: every value "
        "re-encrypted and re-indexed, the worst case), encryption, index.",
    )
    parser.add_argument(
        "--baseline-code",
        type=Path,
        help="Another checkout whose command is timed first (one worker, no --workers flag): before/after.",
    )
    parser.add_argument("--keep-indexes", action="store_true", help="Load with every index in place (slower).")
    parser.add_argument("--no-reader", action="store_true", help="No lookups during the rotation.")
    args = parser.parse_args()

    configure_env()
    *loaded_under, fresh = prepare(args.customers, args.stores, keep_indexes=args.keep_indexes)
    generations = list(loaded_under)
    from django import db

    from customers.key_rotation import DEFAULT_BATCH_SIZE

    print(
        f"{args.customers:,} customers under key generations {generations[0]} (encryption), {generations[1]} "
        f"(index); table {table_size()}",
        flush=True,
    )
    counts: list[int | None] = [n for group in args.workers for n in group] or [None]
    runs: list[tuple[str, int, int | None, Path]] = []
    for mode in [m for group in args.rotate for m in group] or ["both"]:
        for batch_size in args.batch_size or [DEFAULT_BATCH_SIZE]:
            if args.baseline_code is not None:
                runs.append((mode, batch_size, None, args.baseline_code.resolve()))
            runs += [(mode, batch_size, workers, ROOT) for workers in counts]
    summary: list[str] = []
    for mode, batch_size, workers, code in runs:
        if fresh:  # as loaded (autovacuum off for it: no vacuum of the load during the run)
            fresh = False
            print()
        else:
            print(f"\n(table compacted in {compact():.1f} s: VACUUM FULL, autovacuum off for it)", flush=True)
        if mode in ("both", "encryption"):
            generations[0] += 1
        if mode in ("both", "index"):
            generations[1] += 1
        db.connections.close_all()
        # The reader looks up with both keys, as the service does meanwhile.
        use_keys(key_ring(generations[0]), key_ring(generations[1]))
        reader = None if args.no_reader else Reader(args.customers, seed=sum(generations))
        if reader is not None:
            reader.start()
        db_before = database_cpu_seconds()
        load_before = os.getloadavg()[0]
        wall, cpu, output = rotate(batch_size, workers, code)
        db_cpu = database_cpu_seconds() - db_before
        if reader is not None:
            reader.stop.set()
            reader.join(timeout=60)
        rotated = [line for line in output.splitlines() if line.startswith("Rotated in")]
        who = "baseline code, " if code != ROOT else ""
        who += "default workers" if workers is None else f"{workers} worker{'s' if workers > 1 else ''}"
        verdict = "met" if wall < TARGET_SECONDS else "MISSED"
        print(
            f"batch size {batch_size:,}, {who}, rotating {mode}: {args.customers:,} customers re-keyed in "
            f"{wall:.1f} s wall ({args.customers / wall:,.0f} rows/s; target < {TARGET_SECONDS:.0f} s: {verdict})\n"
            f"  CPU: command and its workers {cpu:.1f} s, PostgreSQL {db_cpu:.1f} s (machine load average "
            f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after)",
            flush=True,
        )
        summary.append(f"  rotating {mode}, batch {batch_size:,}, {who}: {wall:.1f} s ({verdict})")
        print(f"  {rotated[0] if rotated else output.strip()}")
        if reader is not None:
            print(f"  during it: {reader.summary()}" + (f"; errors: {reader.errors[:3]}" if reader.errors else ""))
            if reader.misses or reader.errors:
                sys.exit("a lookup missed during the rotation")
        # The old keys removed.
        use_keys(key_ring(generations[0]).split(",")[0], key_ring(generations[1]).split(",")[0])
        print(f"  {verify(sum(generations), args.customers)}; table now {table_size()}", flush=True)
    print(f"\n{args.customers:,} customers, target < {TARGET_SECONDS:.0f} s:\n" + "\n".join(summary))
    print(f"\n(the dates: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
