"""API latency at 1M customers: PostgreSQL, gunicorn on this machine, 16 concurrent clients on loopback.

    scripts/with-postgres.sh .venv/bin/python bench/bench_api.py --customers 1000000

Loads the customers with COPY (once per database), starts gunicorn, warms up, then drives each scenario and
prints requests/s and latency percentiles per scenario. The load comes from wrk (bench/api_wrk.py +
bench/api_wrk.lua: C, one event loop, for a fixed time per scenario) when it is installed, otherwise from
bench/api_load.py (Python asyncio, a fixed number of requests); the output says which. Floors measured in the
same run: /health/ (database + task-queue checks, no auth), a URL no route matches (Django alone: 404, no
database) and /api/v1/customers/x (API key + throttle + DRF, no customer query: 404).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGET_P50_MS = 15.0
TARGET_P99_MS = 100.0

BENCH_SETTINGS = {"DB_SERVER_SIDE_BINDING": "true", "DB_PREPARE_THRESHOLD": "5", "API_KEY_CACHE_SECONDS": "5"}
# The server setting README.md ("Configuration") recommends for a database on SSDs or in memory; PostgreSQL's
# default is 4.
RANDOM_PAGE_COST = "1.1"

FLOOR_DJANGO = "floor: Django, no view (404, no database)"
FLOOR_API = "floor: API key + DRF, no customer query (404)"
FLOOR_HEALTH = "floor: /health/ (no auth; database + queue checks)"
MIXED = "mixed (the list, lookup, cursor and fetch scenarios)"
SEARCH = "search: name start (20)"


# --compare-pii's ways, in the order of its first round (the next runs them backwards): masked, unaudited, one INSERT
# per answer, as served.
PII_WAYS = ("no pii: masked", "pii, no event", "pii, event per answer", "pii, audited")


def has_targets(name: str) -> bool:
    """The scenarios the targets apply to (issue #6: filter lists, lookups, deep cursor pages; fetch and their
    mix too); the floors and free-text search are measured and shown, not held to them."""
    return not name.startswith("floor") and name != SEARCH


EXPECTED_STATUS = {FLOOR_DJANGO: 404, FLOOR_API: 404}


def configure_env(port: int) -> None:
    # config.settings, quieter about 404s (bench/api_settings.py); bench/ is on the path of gunicorn too.
    os.environ["DJANGO_SETTINGS_MODULE"] = "api_settings"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    # A fixed, bench-only key, so a database loaded by an earlier run can be reused.
    bench_key = base64.urlsafe_b64encode(hashlib.sha256(b"customer-flow bench only").digest()).decode()
    os.environ.setdefault("POS_CREDENTIALS_KEYS", bench_key)
    os.environ.setdefault("PII_ENCRYPTION_KEYS", "bench:" + "C" * 43 + "=")  # bench-only
    os.environ.setdefault("PII_BLIND_INDEX_KEYS", "bench:" + "D" * 43 + "=")  # bench-only
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    # Measure the API, not the throttle's refusals: a rate nothing reaches. The throttle still runs, and costs the
    # same at any rate (one number per key in the cache; api.throttling.ApiKeyRateThrottle).
    os.environ["API_THROTTLE_RATE"] = "1000000/sec"
    os.environ["LOG_LEVEL"] = "WARNING"
    # The recommended production settings for PostgreSQL (see .env.example and bench/README.md); each can be
    # overridden from the environment to measure without it.
    for name, value in BENCH_SETTINGS.items():
        os.environ.setdefault(name, value)


def prepare(customers: int, stores: int, random_page_cost: str = RANDOM_PAGE_COST) -> tuple[str, list[str], int]:
    """Migrate, load the customers if they are not there yet, set the database's random_page_cost (for the
    connections opened from now on), and make a key; (key, catalog ids, first id)."""
    import django
    import psycopg.sql

    django.setup()
    from api_data import bench_stores, copy_customers
    from django.core.management import call_command
    from django.db import connection

    from customers.models import Customer
    from stores.services import api_key_create

    if connection.vendor != "postgresql":
        sys.exit("Run under scripts/with-postgres.sh (or with DATABASE_URL pointing at PostgreSQL).")
    call_command("migrate", verbosity=0)
    store_objs = bench_stores(stores)
    have = Customer.objects.count()
    if have < customers:
        Customer.objects.all().delete()
        print(f"Loading {customers:,} customers over {len(store_objs)} stores with COPY ...", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), 1, false)")
        seconds = copy_customers(connection.connection, [s.pk for s in store_objs], customers)
        connection.commit() if not connection.get_autocommit() else None
        print(f"  loaded in {seconds:.1f} s ({customers / seconds:,.0f} rows/s, indexes included)", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE customers_customer")
        cursor.execute("SELECT current_database()")
        statement = psycopg.sql.SQL("ALTER DATABASE {} SET random_page_cost = {}").format(
            psycopg.sql.Identifier(cursor.fetchone()[0]), psycopg.sql.Literal(float(random_page_cost))
        )
        cursor.execute(statement.as_string(connection.connection))
    first_id = Customer.objects.order_by("id").values_list("id", flat=True).first()
    _, raw = api_key_create(name="bench")
    _, masked = api_key_create(name="bench (no pii)", scopes=["customers:read"])
    connection.close()
    return (raw, masked), [s.catalog_id for s in store_objs], int(first_id or 1)


def cursor_for(after: int) -> str:
    return base64.urlsafe_b64encode(f"id:{after}".encode()).decode().rstrip("=")


def scenarios(customers: int, catalog_ids: list[str], first_id: int, n: int, seed: int = 7) -> dict[str, list[str]]:
    """Each scenario's request paths (deterministic, spread over the whole table)."""
    from api_data import FIRST_NAMES, LAST_NAMES, customer_identity

    rnd = random.Random(seed)

    def sample() -> tuple[int, dict[str, str]]:
        i = rnd.randrange(customers)
        return i, customer_identity(i)

    def q(**params: object) -> str:
        return "/api/v1/customers?" + urlencode(params)

    def phone_fmt(p: str) -> str:
        return f"({p[:3]}) {p[3:6]}-{p[6:]}"

    out: dict[str, list[str]] = {
        FLOOR_DJANGO: ["/bench-floor-no-such-url"] * n,
        FLOOR_API: ["/api/v1/customers/x"] * n,
        FLOOR_HEALTH: ["/health/"] * n,
        "list: store, first page (20)": [q(catalog_id=rnd.choice(catalog_ids), page_size=20) for _ in range(n)],
        "list: store, first page (50, default)": [q(catalog_id=rnd.choice(catalog_ids)) for _ in range(n)],
        "filter: store + last_name (20)": [
            q(catalog_id=rnd.choice(catalog_ids), last_name=rnd.choice(LAST_NAMES).upper(), page_size=20)
            for _ in range(n)
        ],
        "filter: first_name + last_name": [
            q(first_name=rnd.choice(FIRST_NAMES).lower(), last_name=rnd.choice(LAST_NAMES), page_size=20)
            for _ in range(n)
        ],
        "filter: birthday (20)": [q(birthday=sample()[1]["birthday"], page_size=20) for _ in range(n)],
        SEARCH: [
            q(search=rnd.choice(LAST_NAMES)[:5].lower(), catalog_id=rnd.choice(catalog_ids), page_size=20)
            for _ in range(n)
        ],
        "lookup: phone (any format)": [q(phone=phone_fmt(sample()[1]["phone"])) for _ in range(n)],
        "lookup: email (any case)": [q(email=sample()[1]["email"].title()) for _ in range(n)],
        "lookup: driver_license": [q(driver_license=sample()[1]["drivers_license"].lower()) for _ in range(n)],
        "deep cursor: store (20)": [
            q(catalog_id=rnd.choice(catalog_ids), page_size=20, cursor=cursor_for(first_id + rnd.randrange(customers)))
            for _ in range(n)
        ],
        "deep cursor: all stores (20)": [
            q(page_size=20, cursor=cursor_for(first_id + rnd.randrange(customers))) for _ in range(n)
        ],
        "fetch: /customers/{id}": [f"/api/v1/customers/{first_id + rnd.randrange(customers)}" for _ in range(n)],
    }
    out[MIXED] = [path for name, paths in out.items() if has_targets(name) for path in paths[: n // 8]]
    rnd.shuffle(out[MIXED])
    return out


def start_gunicorn(
    port: int,
    workers: int,
    threads: int,
    worker_class: str,
    app: str = "config.wsgi:application",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    cmd = [
        str(ROOT / ".venv/bin/gunicorn"),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--backlog",
        "256",
        "--log-level",
        "warning",
    ]
    # gunicorn.conf.py (read from ROOT) writes the access log to standard output: kept (production does the
    # same work), out of the figures' way.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 90  # a loaded 2-CPU machine boots 3 workers slowly
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    sys.exit("gunicorn did not come up")


def drive(
    load: str, port: int, key: str, paths: list[str], concurrency: int, *, duration: float, threads: int, expect: int
) -> dict[str, object]:
    """One scenario: wrk for `duration` seconds, or the Python client through every path once."""
    if load == "wrk":
        from api_wrk import run

        return run(
            port=port,
            key=key,
            paths=paths,
            concurrency=concurrency,
            duration=duration,
            threads=threads,
            expected_status=expect,
        )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(paths, f)
    try:
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench/api_load.py"),
                "--port",
                str(port),
                "--key",
                key,
                "--concurrency",
                str(concurrency),
                "--expect",
                str(expect),
                "--paths",
                f.name,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout)


def _stat(pid: int) -> tuple[int, float, float]:
    """A process's parent, its own CPU seconds and those of the children it has reaped (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def server_cpu_seconds(roots: list[int]) -> float | None:
    """CPU seconds spent so far by these processes (gunicorn masters, PostgreSQL's postmaster) and their children,
    live or reaped (a worker restarted, a backend whose connection closed); None without /proc."""
    try:
        parents: dict[int, int] = {}
        own: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parent, cpu, _ = _stat(int(entry))
                except OSError:
                    continue  # ended meanwhile
                parents[int(entry)], own[int(entry)] = parent, cpu
        total = 0.0
        for root in roots:
            _, cpu, reaped = _stat(root)
            total += cpu + reaped + sum(own[pid] for pid, parent in parents.items() if parent == root)
        return total
    except OSError:
        return None


def postmaster_pid() -> int | None:
    """The local PostgreSQL server's main process (the parent of this connection's backend), if on this machine."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        return _stat(backend)[0]
    except OSError:
        return None


def preflight(port: int, key: str, plan: dict[str, list[str]]) -> None:
    """Each scenario's first request answers as expected (and something is found), or the run stops."""
    for name, paths in plan.items():
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{paths[0]}", headers={"Authorization": f"Api-Key {key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        expected = EXPECTED_STATUS.get(name, 200)
        if status != expected or (expected == 200 and b'"customers":[]' in body.replace(b" ", b"")):
            sys.exit(f"Preflight: {name}: {paths[0]} answered {status}: {body[:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--load", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk if installed.")
    parser.add_argument("--duration", type=float, default=10, help="wrk: seconds per scenario.")
    parser.add_argument("--warmup", type=float, default=2, help="wrk: warm-up seconds per scenario.")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk: threads (event loops).")
    parser.add_argument("--requests", type=int, default=4000, help="Python client: requests per scenario.")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes.")
    parser.add_argument("--threads", type=int, default=1, help="Threads per worker (>1 uses gthread).")
    parser.add_argument(
        "--worker-class",
        choices=["sync", "gthread"],
        help="gunicorn worker class (default: sync, or gthread with --threads).",
    )
    parser.add_argument("--port", type=int, default=8031)
    parser.add_argument(
        "--random-page-cost",
        default=RANDOM_PAGE_COST,
        help="PostgreSQL's random_page_cost for the bench's database (the server's default is 4).",
    )
    parser.add_argument("--only", action="append", default=[], help="Only scenarios whose name contains this.")
    parser.add_argument(
        "--compare-pii",
        action="store_true",
        help="Each customer scenario four ways, alternating: a key without `pii` (answers masked, no access "
        "events), the usual key with every scope on a second gunicorn whose access events are not written "
        "(bench/api_wsgi_unaudited.py, on --port + 1), that key on a third gunicorn writing each answer's event "
        "on its own (PII_ACCESS_WRITE_SECONDS=0, on --port + 2), and that key as served (the events gathered "
        "by each worker's writer thread); --repeat rounds, then each way's median p50 and servers' CPU.",
    )
    parser.add_argument("--repeat", type=int, default=1, help="--compare-pii: rounds of the four ways.")
    parser.add_argument(
        "--pii-way",
        action="append",
        choices=PII_WAYS,
        default=[],
        help='--compare-pii: only these ways (repeatable; default all four), e.g. "pii, no event" and '
        '"pii, audited": more rounds in the same time, each paired with its neighbour.',
    )
    args = parser.parse_args()

    load = args.load
    if load == "auto":
        from api_wrk import available

        load = "wrk" if available() else "python"
    if load == "wrk":
        from api_wrk import version

        generator = f"{version()} (-t{args.wrk_threads} -c{args.concurrency}, {args.duration:g} s per scenario)"
        n = 20_000  # distinct paths per scenario; wrk cycles through them
    else:
        generator = f"bench/api_load.py (Python asyncio, {args.requests:,} requests per scenario)"
        n = args.requests

    configure_env(args.port)
    (key, masked_key), catalog_ids, first_id = prepare(args.customers, args.stores, args.random_page_cost)
    plan = scenarios(args.customers, catalog_ids, first_id, n)
    if args.only:
        plan = {name: paths for name, paths in plan.items() if any(o in name for o in args.only)}
    worker_class = args.worker_class or ("gthread" if args.threads > 1 else "sync")
    server = start_gunicorn(args.port, args.workers, args.threads, worker_class)
    servers = [server]
    try:
        if args.compare_pii:
            servers.append(
                start_gunicorn(
                    args.port + 1, args.workers, args.threads, worker_class, "api_wsgi_unaudited:application"
                )
            )
            servers.append(
                start_gunicorn(
                    args.port + 2, args.workers, args.threads, worker_class, env={"PII_ACCESS_WRITE_SECONDS": "0"}
                )
            )
        preflight(args.port, key, plan)
        print("Warming up ...", flush=True)
        for name, paths in plan.items():
            drive(
                load,
                args.port,
                key,
                paths[:300] if load == "python" else paths[-2000:],
                args.concurrency,
                duration=args.warmup,
                threads=args.wrk_threads,
                expect=EXPECTED_STATUS.get(name, 200),
            )
        if worker_class == "gthread":
            worker_class = f"gthread, {args.threads} thread(s)"
        print(
            f"\n{args.customers:,} customers in PostgreSQL, {len(catalog_ids)} stores; gunicorn {args.workers} "
            f"worker(s) ({worker_class}); {args.concurrency} concurrent clients; {os.cpu_count()} CPUs; "
            f"load: {generator}\n"
            + "settings: "
            + ", ".join(f"{n}={os.environ.get(n) or 'default'}" for n in [*BENCH_SETTINGS, "CONN_HEALTH_CHECKS"])
            + f"; PostgreSQL random_page_cost={args.random_page_cost}\n"
        )
        # The servers' CPU per request (gunicorn's workers and PostgreSQL, from /proc): unlike a p50, it hardly
        # moves with what else runs, and with the CPUs saturated it is what sets the p50.
        print("| scenario | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU ms/request | target |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        failed = False
        runs = [(name, paths, key, args.port) for name, paths in plan.items()]
        if args.compare_pii:
            ways = [(label, key, offset) for label, offset in zip(PII_WAYS, (0, 1, 2, 0), strict=True)]
            ways[0] = (PII_WAYS[0], masked_key, 0)
            ways = [way for way in ways if not args.pii_way or way[0] in args.pii_way]
            # The ways' order turns round every other round: whatever a way leaves behind (autovacuum after the
            # INSERTs, a warmer cache) does not always fall on the same next one.
            runs = [
                (f"{name} [{label}]", paths, k, args.port + offset)
                for name, paths in plan.items()
                for round_ in range(args.repeat)
                for label, k, offset in (ways if round_ % 2 == 0 else ways[::-1])
                if not name.startswith("floor") or label == PII_WAYS[-1]
            ]
        p50s: dict[str, list[float]] = {}
        cpu_roots = [proc.pid for proc in servers] + [pid for pid in [postmaster_pid()] if pid]
        cpus: dict[str, list[float]] = {}
        for name, paths, run_key, port in runs:
            cpu_before = server_cpu_seconds(cpu_roots)
            stats = drive(
                load,
                port,
                run_key,
                paths,
                args.concurrency,
                duration=args.duration,
                threads=args.wrk_threads,
                expect=EXPECTED_STATUS.get(name.split(" [")[0], 200),
            )
            p50s.setdefault(name, []).append(float(stats["p50_ms"]))  # type: ignore[arg-type]
            cpu_after = server_cpu_seconds(cpu_roots) if cpu_before is not None else None
            per_request = None
            if cpu_before is not None and cpu_after is not None and stats["requests"]:
                per_request = (cpu_after - cpu_before) * 1000 / int(stats["requests"])  # type: ignore[call-overload]
                cpus.setdefault(name, []).append(per_request)
            ok = stats["p50_ms"] <= TARGET_P50_MS and stats["p99_ms"] <= TARGET_P99_MS and not stats["errors"]
            base = name.split(" [")[0]
            failed |= not ok and has_targets(base)
            verdict = ("ok" if ok else "MISSED") if has_targets(base) else "" if base.startswith("floor") else "—"
            print(
                f"| {name} | {stats['rps']:,.0f} | {stats['p50_ms']} | {stats['p90_ms']} | {stats['p99_ms']} | "
                f"{stats['max_ms']} | {stats['errors']} | {'—' if per_request is None else f'{per_request:.3f}'} | "
                f"{verdict} |",
                flush=True,
            )
        if args.compare_pii:
            print_pii_summary("p50 ms", p50s, "{:.2f}")
            cores = os.cpu_count() or 1
            if not cpus:
                print("\n(No CPU figures: the servers' processes are not readable in /proc here.)")
            else:
                print_pii_summary(
                    f"servers' CPU per request, ms (gunicorn workers + PostgreSQL; from /proc: unlike latency, "
                    f"hardly moved by what else runs); in brackets, the p50 that adds with {args.concurrency} "
                    f"clients on {cores} CPUs when they are the bottleneck (clients x CPU per request / CPUs)",
                    cpus,
                    "{:.3f}",
                    saturated=args.concurrency / cores,
                )
        print(
            f"\nTargets: p50 <= {TARGET_P50_MS} ms, p99 <= {TARGET_P99_MS} ms, no errors; for every scenario but the "
            "floors and free-text search."
        )
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            proc.wait(timeout=30)
    sys.exit(1 if failed else 0)


def print_pii_summary(title: str, figures: dict[str, list[float]], fmt: str, saturated: float = 0) -> None:
    """--compare-pii: per scenario, each way's figure over the rounds (median, min-max) and what the access event
    adds (each audited way minus "pii, no event": the difference of the medians, then the median of the rounds'
    differences, each round's way against the same round's "no event", which the machine's drift moves less);
    with `saturated`, those differences times it too. A way not run shows "—"."""
    import statistics

    def added(value: float) -> str:
        return f"{value:+.3f}" + (f" ({value * saturated:+.2f} ms)" if saturated else "")

    audited_ways = PII_WAYS[2:]
    print(f"\n{title}")
    print(
        f"| scenario | {' | '.join(PII_WAYS)} | {' | '.join(f'{w} - no event' for w in audited_ways)} "
        f"| {' | '.join(f'{w} - no event, paired by round' for w in audited_ways)} |"
    )
    print(f"|---|{'---:|' * (len(PII_WAYS) + 2 * len(audited_ways))}")
    for base in dict.fromkeys(name.split(" [")[0] for name in figures):
        ways = [figures.get(f"{base} [{w}]", []) for w in PII_WAYS]
        if not ways[1]:
            continue
        cells = [
            f"{fmt.format(statistics.median(w))} ({fmt.format(min(w))}-{fmt.format(max(w))})" if w else "—"
            for w in ways
        ]
        unaudited = ways[1]
        cells += [added(statistics.median(w) - statistics.median(unaudited)) if w else "—" for w in ways[2:]]
        cells += [
            added(statistics.median(a - b for a, b in zip(w, unaudited, strict=False))) if w else "—" for w in ways[2:]
        ]
        print(f"| {base} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
