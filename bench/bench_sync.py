"""Customer sync throughput and memory, against the POS sandbox over loopback HTTP.

    python bench/bench_sync.py --customers 100000                       # SQLite (a fresh temporary file)
    scripts/with-postgres.sh .venv/bin/python bench/bench_sync.py --customers 1000000 --db postgres

The sandbox runs in its own process. In one run this measures, into the same database:
- the engine's full sync (customers/s, peak RSS growth of the syncing process, in a fresh child process);
- an incremental sync with nothing changed (seconds);
- baseline (a): a per-row `update_or_create` loop over the same records (the first --loop-sample of them);
- baseline (b), PostgreSQL only: `COPY` of the same rows into the same table (every record).
HTTP fetching and parsing are outside the baselines' clocks (they time the write path only); the engine's
figure is end to end (HTTP, parsing, validation, writes, checkpoints).

    python bench/bench_sync.py --customers 100000 --compare-with 574aaa9 --rounds 3 [--db postgres]

runs this script's full sync (--no-baselines) in a git worktree of that commit and in this tree, alternating
(base, this, base, this, ...), each into a fresh database, and prints both trees' rates and CPU side by side:
before and after a change in the same run (issue 18: the cost of encryption at rest).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _setup_django() -> None:
    # DEBUG off, as in production (with DEBUG on, Django records every query: slower, and memory grows).
    from bench_env import set_bench_environment

    set_bench_environment()
    import django

    django.setup()


# ---- child: one sync in a fresh process, so its peak RSS is its own ----------------------------------


def child_sync(store_id: int, kind: str) -> None:
    _setup_django()
    from stores.models import Store
    from syncs.services import sync_create

    store = Store.objects.get(pk=store_id)
    sync, created = sync_create(store=store, kind=kind, trigger="manual")
    assert created, "a sync is already running"
    store.pos_client()  # import and build everything the sync needs before the baseline is taken
    rss_start = _rss_kb("VmRSS")
    profile_path = os.environ.get("BENCH_SYNC_PROFILE")
    if profile_path and kind == "full":
        import cProfile

        profiler = cProfile.Profile()
        started = time.perf_counter()
        sync = profiler.runcall(sync.do_process)
        elapsed = time.perf_counter() - started
        profiler.dump_stats(profile_path)
    else:
        started = time.perf_counter()
        sync = sync.do_process()
        elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "status": sync.status,
                "error": f"{sync.error_type}: {sync.error_message}" if sync.error_type else "",
                "elapsed": elapsed,
                "fetched": sync.fetched,
                "created": sync.created,
                "updated": sync.updated,
                "unchanged": sync.unchanged,
                "pages": sync.pages,
                "rss_start_kb": rss_start,
                "rss_peak_kb": _rss_kb("VmHWM"),
            }
        )
    )


# ---- parent ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_sandbox(customers: int, seed: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pos_sandbox",
            "--port",
            str(port),
            "--customers",
            str(customers),
            "--seed",
            str(seed),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def _run_child(store_id: int, kind: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "_sync", str(store_id), kind],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"sync child failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "finished":
        raise SystemExit(f"sync failed: {result['error']}")
    return result


def _fresh_store(catalog_id: str, vendor: str, base_url: str) -> Any:
    from customers.models import Customer
    from pos_sandbox import SANDBOX_CREDENTIALS
    from stores.models import Store

    Store.objects.filter(catalog_id=catalog_id).delete()
    store = Store.objects.create(
        name=catalog_id,
        catalog_id=catalog_id,
        pos_vendor=vendor,
        pos_base_url=f"{base_url}/{vendor}",
        pos_credentials=dict(SANDBOX_CREDENTIALS[vendor]),
        sync_enabled=False,
    )
    assert not Customer.objects.filter(store=store).exists()
    return store


def loop_baseline(store: Any, sample: int) -> tuple[int, float]:
    """(a) update_or_create per row over the first `sample` records; returns (rows, seconds of writing)."""
    from django.utils import timezone

    from customers.models import Customer
    from customers.writer import DATA_FIELDS, validate

    client = store.pos_client()
    done, spent = 0, 0.0
    for page in client.iter_customers():
        records = page.records[: sample - done]
        rows, _, _ = validate(records)
        by_id = {str(r.customer_id).strip(): r for r in records}
        started = time.perf_counter()
        for row in rows:
            defaults = dict(zip(DATA_FIELDS, row.values, strict=True))
            record = by_id[row.customer_id]  # the values in clear: the model's fields encrypt them on save
            defaults["drivers_license"] = record.drivers_license or ""
            defaults["medical_card_number"] = record.medical_card_number or ""
            defaults["raw"] = record.raw if record.raw is not None else {}
            defaults["synced_at"] = timezone.now()
            Customer.objects.update_or_create(store=store, customer_id=row.customer_id, defaults=defaults)
        spent += time.perf_counter() - started
        done += len(rows)
        if done >= sample:
            break
    return done, spent


def copy_baseline(store: Any) -> tuple[int, float]:
    """(b) PostgreSQL COPY of every record into the customers table, a COPY statement per page in one
    transaction; returns (rows, seconds). Each page's clock runs until its COPY statement has finished on
    the server, so that PostgreSQL's work is not hidden behind the next page's HTTP fetch."""
    import psycopg
    from django.db import connection
    from django.utils import timezone

    from customers.models import Customer
    from customers.writer import DATA_FIELDS, PII_FIELDS, validate

    columns = ["store_id", "customer_id", *(Customer._meta.get_field(n).column for n in DATA_FIELDS)]
    columns += ["raw", *PII_FIELDS, "synced_at", "created_at", "updated_at"]
    statement = f"COPY {Customer._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    client = store.pos_client()
    connection.ensure_connection()
    raw_conn = connection.connection
    done, spent = 0, 0.0
    now = timezone.now()
    with raw_conn.transaction(), psycopg.Cursor(raw_conn) as cursor:
        for page in client.iter_customers():
            rows, _, _ = validate(page.records)  # encrypted, as the writer stores them
            tuples = [(store.pk, r.customer_id, *r.values, r.raw, *r.pii, now, now, now) for r in rows]
            started = time.perf_counter()
            with cursor.copy(statement) as copy:
                for t in tuples:
                    copy.write_row(t)
            spent += time.perf_counter() - started
            done += len(tuples)
        started = time.perf_counter()
    spent += time.perf_counter() - started  # the commit
    return done, spent


def _cpu_of_children() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _postgres_cpu(url: str) -> float:
    """CPU seconds the PostgreSQL server of `url` has used so far: its postmaster's and its processes' (the
    exited ones are counted in the postmaster's children's times). Linux /proc; 0.0 where it cannot be read."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        postmaster = int((Path(str(row[0])) / "postmaster.pid").read_text().split()[0]) if row else 0
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
            elif ppid == postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / tick
    except (OSError, ValueError, IndexError, psycopg.Error):
        return 0.0


def _fresh_postgres_url(base_url: str, name: str) -> str:
    """A new, empty database on the server of `base_url` (dropped first if it exists); its URL."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


def compare(args: argparse.Namespace) -> None:
    """Full syncs with the tree at `args.compare_with` and this tree, alternating, each into a fresh database."""
    import statistics

    work = tempfile.TemporaryDirectory(prefix="bench-sync-base-")
    base_tree = Path(work.name) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.compare_with], cwd=ROOT, check=True)
    trees = {"base": base_tree, "this": ROOT}
    server_url = os.environ.get("DATABASE_URL", "")
    if args.db == "postgres" and not server_url.startswith("postgres"):
        raise SystemExit("--db postgres needs DATABASE_URL (run under scripts/with-postgres.sh)")
    results: dict[str, list[dict[str, Any]]] = {"base": [], "this": []}
    try:
        for round_ in range(args.rounds):
            for label, tree in trees.items():
                env = os.environ.copy()
                if args.db == "postgres":
                    env["DATABASE_URL"] = _fresh_postgres_url(server_url, f"bench_sync_{label}_{round_}")
                command = [sys.executable, str(tree / "bench" / "bench_sync.py"), "--no-baselines", "--json"]
                command += ["--customers", str(args.customers), "--vendor", args.vendor, "--db", args.db]
                command += ["--seed", str(args.seed)]
                cpu = _cpu_of_children()
                server_cpu = _postgres_cpu(server_url) if args.db == "postgres" else 0.0
                out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    raise SystemExit(f"the {label} tree's sync failed:\n{out.stderr[-4000:]}")
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                figures["cpu_seconds"] = _cpu_of_children() - cpu
                figures["server_cpu_seconds"] = _postgres_cpu(server_url) - server_cpu if args.db == "postgres" else 0.0
                results[label].append(figures)
                print(
                    f"  round {round_ + 1} {label:4}  {figures['full_sync_per_second']:>7,} customers/s  "
                    f"({figures['full_sync_seconds']} s; CPU of sync + sandbox {figures['cpu_seconds']:.1f} s, "
                    f"of PostgreSQL {figures['server_cpu_seconds']:.1f} s)",
                    flush=True,
                )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
        work.cleanup()
    rates = {label: [r["full_sync_per_second"] for r in runs] for label, runs in results.items()}
    cpus = {label: [r["cpu_seconds"] for r in runs] for label, runs in results.items()}
    servers = {label: [r["server_cpu_seconds"] for r in runs] for label, runs in results.items()}
    base_rate, this_rate = statistics.median(rates["base"]), statistics.median(rates["this"])
    base_cpu, this_cpu = statistics.median(cpus["base"]), statistics.median(cpus["this"])
    base_server, this_server = statistics.median(servers["base"]), statistics.median(servers["this"])
    print(
        f"full sync, {args.customers:,} {args.vendor} customers into {args.db}, {args.rounds} rounds, "
        f"base {args.compare_with} vs this tree (medians):"
    )
    print(f"  customers/s   base {base_rate:>9,.0f}   this {this_rate:>9,.0f}   this/base {this_rate / base_rate:.1%}")
    print(f"  CPU seconds   base {base_cpu:>9.1f}   this {this_cpu:>9.1f}   this/base {this_cpu / base_cpu:.1%}")
    if base_server:
        print(
            f"  PostgreSQL CPU base {base_server:>8.1f}   this {this_server:>9.1f}   "
            f"this/base {this_server / base_server:.1%}"
        )
    if args.json:
        print(json.dumps({"base": results["base"], "this": results["this"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--vendor", default="flowhub", help="sandbox vendor dialect (flowhub pages 500 at a time)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loop-sample", type=int, default=20_000, help="records for the per-row loop baseline")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the full sync (slower) to FILE")
    parser.add_argument("--no-baselines", action="store_true", help="time only the engine (while iterating)")
    parser.add_argument(
        "--compare-with", metavar="COMMIT", help="alternate full syncs with a worktree of COMMIT and this tree"
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --compare-with: syncs per tree")
    args = parser.parse_args()
    if args.compare_with:
        compare(args)
        return
    if args.profile:
        os.environ["BENCH_SYNC_PROFILE"] = str(Path(args.profile).resolve())

    tmp = tempfile.TemporaryDirectory(prefix="bench-sync-")
    if args.db == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    elif not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("--db postgres needs DATABASE_URL (run under scripts/with-postgres.sh)")
    _setup_django()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    sandbox, base_url = _start_sandbox(args.customers, args.seed)
    try:
        store = _fresh_store("bench-sync", args.vendor, base_url)
        full = _run_child(store.pk, "full")
        incremental = _run_child(store.pk, "incremental")

        loop_rows, loop_seconds = (0, 0.0)
        if not args.no_baselines:
            loop_store = _fresh_store("bench-loop", args.vendor, base_url)
            loop_rows, loop_seconds = loop_baseline(loop_store, args.loop_sample)
        copy_rows, copy_seconds = (0, 0.0)
        if connection.vendor == "postgresql" and not args.no_baselines:
            copy_store = _fresh_store("bench-copy", args.vendor, base_url)
            copy_rows, copy_seconds = copy_baseline(copy_store)
    finally:
        sandbox.terminate()
        sandbox.wait()

    sync_rate = full["fetched"] / full["elapsed"]
    loop_rate = loop_rows / loop_seconds if loop_seconds else 0.0
    figures = {
        "db": connection.vendor,
        "vendor": args.vendor,
        "customers": args.customers,
        "full_sync_seconds": round(full["elapsed"], 2),
        "full_sync_per_second": round(sync_rate),
        "full_sync_pages": full["pages"],
        "peak_rss_growth_mb": round((full["rss_peak_kb"] - full["rss_start_kb"]) / 1024, 1),
        "peak_rss_mb": round(full["rss_peak_kb"] / 1024, 1),
        "incremental_no_change_seconds": round(incremental["elapsed"], 3),
        "incremental_fetched": incremental["fetched"],
        "loop_rows": loop_rows,
        "loop_per_second": round(loop_rate),
        "speedup_vs_loop": round(sync_rate / loop_rate, 1) if loop_rate else None,
        "copy_rows": copy_rows,
        "copy_per_second": round(copy_rows / copy_seconds) if copy_seconds else None,
    }
    print(f"customer sync benchmark: {args.customers:,} {args.vendor} customers from the sandbox into {figures['db']}")
    print(
        f"  full sync (engine, end to end) {figures['full_sync_per_second']:>9,} customers/s  "
        f"({full['fetched']:,} in {full['elapsed']:.1f} s, {full['pages']:,} pages)"
    )
    if loop_rows:
        print(
            f"  (a) per-row update_or_create   {figures['loop_per_second']:>9,} rows/s  "
            f"(first {loop_rows:,} records; engine is {figures['speedup_vs_loop']}x)"
        )
    if copy_rows:
        print(f"  (b) PostgreSQL COPY            {figures['copy_per_second']:>9,} rows/s  ({copy_rows:,} rows)")
    print(f"  peak RSS growth of the sync    {figures['peak_rss_growth_mb']:>9} MB  (peak {figures['peak_rss_mb']} MB)")
    print(
        f"  incremental, nothing changed   {figures['incremental_no_change_seconds']:>9} s  "
        f"({incremental['fetched']} records in the overlap window, {incremental['unchanged']} unchanged)"
    )
    if args.json:
        print(json.dumps(figures))
    tmp.cleanup()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_sync":
        child_sync(int(sys.argv[2]), sys.argv[3])
    else:
        main()
