"""The fleet: PostgreSQL + Redis + several `manage.py qcluster` processes + gunicorn, stores on a slow POS sandbox,
each store's sync scheduled every few minutes, a worker process SIGKILLed every so often, the API under load.

    scripts/with-postgres.sh scripts/with-redis.sh .venv/bin/python bench/bench_fleet.py       # 10 min, 200 stores
    ... bench/bench_fleet.py --minutes 3 --stores 40 --kill-every 20                           # a short run

What it runs, all on this machine: a new database on DATABASE_URL's PostgreSQL server (dropped afterwards), the
Redis database of REDIS_URL (emptied first: give it a throwaway one, as scripts/with-redis.sh does), the POS
sandbox in a process of its own with `slow` latency on every answer and customers modified every few seconds
(so each incremental sync has something to write), `--clusters` qcluster processes of `--workers` workers each
(every one runs django-q2's scheduler, as on several machines), and gunicorn (gunicorn.conf.py). The stores are
spread over the five vendors and all have `sync_interval_minutes = --interval`; their schedules are made by
`Store.schedule_customer_sync`, as in production.

Meanwhile: every `--kill-every` seconds one worker process (the busiest, by CPU time over the last second) is
killed with SIGKILL; after the first full syncs, `--clients` concurrent API clients (bench/api_load.py) list,
look up and fetch customers until the end.

It prints, from the database afterwards (syncs.ScheduledSlot claims and the syncs they started):
- runs per store slot, over the slots due in the window with a whole interval left to run: how many slots had
  0, 1 or more runs (target: no slot with 2 or more; none missed twice in a row, i.e. missed by more than one
  interval);
- start lag, from the time a slot's run was due (its schedule's `next_run`) to its sync's `started_at`
  (target: p95 < 45 s);
- customers written (created + updated) per second over the window;
- the API's requests/s, p50 and p99 (target p99 < 50 ms);
- the kills, how many hit a running sync, and the load average (the machine may be shared).
Not a test: it prints figures and the targets beside them.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_START_LAG_P95_S = 45.0
TARGET_API_P99_MS = 50.0
VENDORS = ["leaflogix", "treez", "flowhub", "covasoft", "blaze"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{what} did not answer {url} within {timeout:.0f} s")


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def new_database(base_url: str) -> tuple[str, Any]:
    """A database of the bench's own on the server of `base_url`, and what drops it."""
    import psycopg

    name = f"fleet_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(base_url.replace("postgres://", "postgresql://"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"{base_url.rsplit('/', 1)[0]}/{name}", drop


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


class Killer(threading.Thread):
    """Every `every` seconds, SIGKILL the worker process (of any cluster) that used the most CPU over the last
    second: most likely one running a sync. Worker pids come from the clusters' own status (django-q2's Stat)."""

    def __init__(self, every: float, stop: threading.Event) -> None:
        super().__init__(name="killer", daemon=True)
        self.every, self.stop = every, stop
        self.kills: list[tuple[float, int]] = []

    def workers(self) -> list[int]:
        from django_q.status import Stat

        return [pid for stat in Stat.get_all() for pid in stat.workers]

    def run(self) -> None:
        while not self.stop.wait(self.every - 1):
            pids = self.workers()
            before = {pid: cpu_ticks(pid) for pid in pids}
            if self.stop.wait(1):
                return
            used = {pid: (cpu_ticks(pid) or 0) - (ticks or 0) for pid, ticks in before.items() if ticks is not None}
            if not used:
                continue
            busiest = max(used, key=lambda pid: (used[pid], random.random()))
            with contextlib.suppress(ProcessLookupError):
                os.kill(busiest, signal.SIGKILL)
                self.kills.append((time.time(), busiest))


class Modifier(threading.Thread):
    """Every `every` seconds, `count` customers of each vendor changed on the sandbox (every store of that vendor
    sees them in its next incremental sync)."""

    def __init__(self, sandbox: str, every: float, count: int, stop: threading.Event) -> None:
        super().__init__(name="modifier", daemon=True)
        self.sandbox, self.every, self.count, self.stop = sandbox, every, count, stop

    def run(self) -> None:
        while not self.stop.wait(self.every):
            with contextlib.suppress(OSError):
                post_json(f"{self.sandbox}/_control/modify", {"vendor": "*", "count": self.count})


class LoadAverage(threading.Thread):
    def __init__(self, stop: threading.Event) -> None:
        super().__init__(name="loadavg", daemon=True)
        self.stop = stop
        self.samples: list[float] = []

    def run(self) -> None:
        while not self.stop.wait(5):
            self.samples.append(os.getloadavg()[0])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def api_paths(n: int) -> list[str]:
    """List a store's first page, look a customer up by phone or email, fetch one by id: a mix over the mirror."""
    from urllib.parse import urlencode

    from customers.models import Customer
    from stores.models import Store

    rnd = random.Random(7)
    catalog_ids = list(Store.objects.values_list("catalog_id", flat=True))
    ids = list(Customer.objects.values_list("id", flat=True)[:20000])
    sample = list(Customer.objects.exclude(phone="").exclude(email="").values_list("phone", "email")[:2000])
    paths = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            query = {"catalog_id": rnd.choice(catalog_ids), "page_size": 20}
            paths.append("/api/v1/customers?" + urlencode(query))
        elif kind == 1:
            paths.append(f"/api/v1/customers?{urlencode({'phone': rnd.choice(sample)[0]})}")
        elif kind == 2:
            paths.append(f"/api/v1/customers?{urlencode({'email': rnd.choice(sample)[1]})}")
        else:
            paths.append(f"/api/v1/customers/{rnd.choice(ids)}")
    return paths


def drive_api(port: int, key: str, clients: int, paths: Path, seconds: float) -> dict[str, Any]:
    """bench/api_load.py: `clients` concurrent clients going round the paths for `seconds`; its JSON stats."""
    command = [sys.executable, str(ROOT / "bench/api_load.py"), "--port", str(port), "--key", key]
    command += ["--concurrency", str(clients), "--paths", str(paths), "--seconds", str(seconds)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def summarize(
    *, t0: datetime, t_end: datetime, warm_at: datetime, interval: timedelta, phases: dict[int, float]
) -> dict[str, Any]:
    """Runs per slot, start lag and customers written, from the claims and syncs in the database."""
    from syncs.models import CustomerSync, ScheduledSlot

    seconds = interval.total_seconds()
    claims = defaultdict(list)
    for store_id, slot, catch_up, sync_id in ScheduledSlot.objects.values_list(
        "store_id", "slot_start", "catch_up", "sync_id"
    ).order_by("slot_start"):
        claims[store_id].append((slot, catch_up, sync_id))
    syncs = {s["id"]: s for s in CustomerSync.objects.values("id", "store_id", "started_at", "status", "error_type")}
    first_claim: dict[int, tuple[int, datetime]] = {}  # sync -> the (store, slot) that started it
    for store_id, rows in claims.items():
        for slot, _, sync_id in rows:
            if sync_id is not None and sync_id not in first_claim:
                first_claim[sync_id] = (store_id, slot)
    runs: dict[tuple[int, datetime], list[int]] = defaultdict(list)
    for sync_id, key in first_claim.items():
        if syncs.get(sync_id, {}).get("started_at") is not None:
            runs[key].append(sync_id)
    counts = {0: 0, 1: 0, 2: 0}
    missed_twice = 0
    lags: list[float] = []
    steady_lags: list[float] = []  # of the slots due after every store's first sync
    catch_ups = 0
    for store_id, phase in phases.items():
        # The slots due in the window with a whole interval after their due time still inside it.
        first = datetime.fromtimestamp((t0.timestamp() - phase) // seconds * seconds + phase, tz=UTC)
        due = first if first >= t0 else first + interval
        previous_missed = False
        while due + interval <= t_end:
            slot = datetime.fromtimestamp(due.timestamp() // seconds * seconds, tz=UTC)
            started = runs.get((store_id, slot), [])
            counts[min(len(started), 2)] += 1
            if not started:
                missed_twice += previous_missed
                previous_missed = True
            else:
                previous_missed = False
                lags.extend((syncs[s]["started_at"] - due).total_seconds() for s in started)
                if due >= warm_at:
                    steady_lags.extend((syncs[s]["started_at"] - due).total_seconds() for s in started)
            due += interval
        catch_ups += sum(1 for _, catch_up, _ in claims.get(store_id, []) if catch_up)
    window = (t_end - t0).total_seconds()
    written = CustomerSync.objects.filter(started_at__gte=t0)
    totals = {field: sum(written.values_list(field, flat=True)) for field in ("created", "updated", "unchanged")}
    later = CustomerSync.objects.filter(started_at__gte=warm_at)
    steady = sum(later.values_list("created", flat=True)) + sum(later.values_list("updated", flat=True))
    abandoned = CustomerSync.objects.filter(error_type="Abandoned").count()
    failed = CustomerSync.objects.filter(status="failed").exclude(error_type="Abandoned")
    return {
        "slots": sum(counts.values()),
        "slots_0": counts[0],
        "slots_1": counts[1],
        "slots_2plus": counts[2],
        "missed_twice_in_a_row": missed_twice,
        "catch_ups": catch_ups,
        "lag_p50": pct(lags, 0.50),
        "lag_p95": pct(lags, 0.95),
        "lag_max": max(lags) if lags else float("nan"),
        "steady_lag_p50": pct(steady_lags, 0.50),
        "steady_lag_p95": pct(steady_lags, 0.95),
        "steady_slots": len(steady_lags),
        "written_per_s": (totals["created"] + totals["updated"]) / window,
        "steady_per_s": steady / max((t_end - warm_at).total_seconds(), 1),
        **totals,
        "syncs": len(syncs),
        "abandoned": abandoned,
        "failed_other": sorted(set(failed.values_list("error_type", flat=True))),
        "failed_other_count": failed.count(),
    }


def per_store_budgets(stores: int) -> str:
    """POS_RATE_LIMITS as if each store had its own credential. Every store of a vendor logs in to the sandbox with
    the same one, so they would share one budget (40 Dutchie stores in 120 requests a minute: syncs waiting for
    it hold their workers, and every other store's start lag grows), where in production a Dutchie key is per
    location. Blaze's limit is per partner key, over all its shops: left shared."""
    from pos_integrations.vendors import BLAZE, PUBLISHED_RATE_LIMITS

    parts = []
    for i, vendor in enumerate(VENDORS):
        limit = PUBLISHED_RATE_LIMITS[vendor]
        count = len(range(i, stores, len(VENDORS)))
        if limit is not None and vendor != BLAZE and count > 1:
            parts.append(f"{vendor}={limit.requests * count}/{limit.seconds:g}s")
    return ",".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="The window measured (default 10).")
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--interval", type=int, default=2, help="Every store's sync_interval_minutes (default 2).")
    parser.add_argument("--kill-every", type=float, default=30, help="Seconds between worker kills; 0: none.")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="Workers per cluster (Q_WORKERS).")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16, help="Concurrent API clients.")
    parser.add_argument("--customers", type=int, default=300, help="Customers per vendor on the sandbox.")
    parser.add_argument("--latency", default="150ms", help="The sandbox's `slow` fault: added to every answer.")
    parser.add_argument("--modify", type=int, default=10, help="Customers per vendor changed every 10 s.")
    parser.add_argument(
        "--lease", type=int, default=90, help="SYNC_LEASE_SECONDS: a killed worker's sync is reaped after this."
    )
    parser.add_argument(
        "--baseline-seconds", type=float, default=30, help="The API load again with the clusters stopped (0: not)."
    )
    parser.add_argument(
        "--shared-budgets",
        action="store_true",
        help="Keep one rate budget per vendor, as the sandbox's one credential per vendor makes it (default: each "
        "vendor's published limit times its stores, as if each store had its own key; Blaze's is per partner).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database and the logs (printed).")
    args = parser.parse_args()

    base_db, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not base_db.startswith("postgres") or not redis_url:
        sys.exit("Run under scripts/with-postgres.sh scripts/with-redis.sh (DATABASE_URL and REDIS_URL set).")
    import redis

    redis.from_url(redis_url).flushdb()
    db_url, drop_db = new_database(base_db)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    key = base64.urlsafe_b64encode(hashlib.sha256(b"customer-flow bench only").digest()).decode()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "POS_CREDENTIALS_KEYS": os.environ.get("POS_CREDENTIALS_KEYS", key),
        "PII_ENCRYPTION_KEYS": os.environ.get("PII_ENCRYPTION_KEYS", "bench:" + "C" * 43 + "="),
        "PII_BLIND_INDEX_KEYS": os.environ.get("PII_BLIND_INDEX_KEYS", "bench:" + "D" * 43 + "="),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "API_THROTTLE_RATE": "1000000/sec",  # measure the API, not the throttle's refusals
        "Q_WORKERS": str(args.workers),
        "SYNC_LEASE_SECONDS": str(args.lease),
        "LOG_LEVEL": "INFO",
    }
    if not args.shared_budgets:
        env["POS_RATE_LIMITS"] = per_store_budgets(args.stores)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_q.models import Schedule

    from pos_sandbox import SANDBOX_CREDENTIALS
    from stores.models import SYNC_TASK, Store
    from stores.services import api_key_create

    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()

    def start(name: str, cmd: list[str], extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**env, **(extra or {})}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc

    try:
        call_command("migrate", verbosity=0)
        sandbox_port, web_port = free_port(), free_port()
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        start(
            "sandbox",
            [
                sys.executable,
                "-m",
                "pos_sandbox",
                "--port",
                str(sandbox_port),
                "--customers",
                str(args.customers),
                "--seed",
                "1",
                "--faults",
                f"slow={args.latency}",
            ],
        )
        wait_http(f"{sandbox}/_control/state", 30, "the sandbox")
        _, api_key = api_key_create(name="fleet bench")
        start(
            "gunicorn",
            [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "config.wsgi:application"],
            {
                "GUNICORN_BIND": f"127.0.0.1:{web_port}",
                "GUNICORN_WORKERS": str(args.gunicorn_workers),
                "GUNICORN_ACCESS_LOG": "/dev/null",
                "LOG_LEVEL": "WARNING",
            },
        )
        wait_http(f"http://127.0.0.1:{web_port}/health/", 60, "gunicorn")
        interval = timedelta(minutes=args.interval)
        for i in range(args.stores):
            vendor = VENDORS[i % len(VENDORS)]
            Store.objects.create(
                name=f"Fleet {i:03d}",
                catalog_id=f"fleet-{i:03d}",
                pos_vendor=vendor,
                pos_base_url=f"{sandbox}/{vendor}",
                pos_credentials=dict(SANDBOX_CREDENTIALS[vendor]),
                sync_interval_minutes=args.interval,
            ).schedule_customer_sync()
        seconds = interval.total_seconds()
        phases = {
            int(store_id): next_run.timestamp() % seconds
            for store_id, next_run in Schedule.objects.filter(func=SYNC_TASK).values_list("args", "next_run")
        }
        connection.close()
        clusters = [start(f"qcluster-{n}", [sys.executable, "manage.py", "qcluster"]) for n in range(args.clusters)]
        deadline = time.monotonic() + 120
        while not all("running" in (tmp / f"qcluster-{n}.log").read_text() for n in range(args.clusters)):
            if time.monotonic() > deadline:
                sys.exit("the clusters did not start within 120 s")
            time.sleep(0.5)
        t0 = datetime.now(UTC)  # the window: slots due from the moment every cluster runs
        load = LoadAverage(stop)
        load.start()
        killer = Killer(args.kill_every, stop) if args.kill_every else None
        if killer:
            killer.start()
        Modifier(sandbox, 10, args.modify, stop).start()
        print(
            f"Fleet: {args.stores} stores every {args.interval} min on a sandbox with {args.latency} latency, "
            f"{args.clusters} clusters x {args.workers} workers, gunicorn x {args.gunicorn_workers}, "
            f"a worker killed every {args.kill_every:.0f} s, {args.minutes:g} min; logs in {tmp}",
            flush=True,
        )
        # The API load starts once every store has its first customers (the first full syncs), until the end.
        from customers.models import Customer

        t_end = t0 + timedelta(minutes=args.minutes)
        while datetime.now(UTC) < t_end and Customer.objects.values("store_id").distinct().count() < args.stores:
            time.sleep(2)
        connection.close()
        warm_at = datetime.now(UTC)
        warm = (warm_at - t0).total_seconds()
        load_seconds = (t_end - datetime.now(UTC)).total_seconds()
        api: dict[str, Any] = {}
        if load_seconds > 5:
            print(f"every store has customers after {warm:.0f} s; API load for {load_seconds:.0f} s", flush=True)
            paths_file = tmp / "paths.json"
            paths_file.write_text(json.dumps(api_paths(4000)))
            connection.close()
            api = drive_api(web_port, api_key, args.clients, paths_file, load_seconds)
        while datetime.now(UTC) < t_end:
            time.sleep(1)
        stop.set()
        for proc in clusters:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in clusters:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        baseline: dict[str, Any] = {}
        if api and args.baseline_seconds > 0:
            # The same API load with the clusters stopped: what the API gives on this machine at this moment alone.
            baseline = drive_api(web_port, api_key, args.clients, paths_file, args.baseline_seconds)
        result = summarize(t0=t0, t_end=t_end, warm_at=warm_at, interval=interval, phases=phases)
        kills = killer.kills if killer else []
        logs = "".join((tmp / f"qcluster-{n}.log").read_text(errors="replace") for n in range(args.clusters))
        duplicates_skipped = logs.count("already claimed (fired or delivered twice); skipped")
        print()
        print(f"window {t0:%H:%M:%S}-{t_end:%H:%M:%S} UTC, {result['syncs']} syncs")
        print(
            f"runs per store slot: {result['slots']} slots due with an interval to run; "
            f"{result['slots_1']} ran once, {result['slots_2plus']} twice or more (target 0), "
            f"{result['slots_0']} not at all; missed twice in a row: {result['missed_twice_in_a_row']} (target 0)"
        )
        print(
            f"  copies skipped as already claimed: {duplicates_skipped}; catch-up runs: {result['catch_ups']}; "
            f"abandoned syncs (killed, reaped): {result['abandoned']}; other failures: "
            f"{result['failed_other_count']} {result['failed_other'] or ''}"
        )
        print(
            f"start lag: p50 {result['lag_p50']:.1f} s, p95 {result['lag_p95']:.1f} s "
            f"(target < {TARGET_START_LAG_P95_S:.0f}), max {result['lag_max']:.1f} s; of the "
            f"{result['steady_slots']} runs due after every store's first sync: p50 {result['steady_lag_p50']:.1f} s, "
            f"p95 {result['steady_lag_p95']:.1f} s"
        )
        print(
            f"customers written: {result['written_per_s']:.0f}/s ({result['created']:,} created, "
            f"{result['updated']:,} updated, {result['unchanged']:,} unchanged); "
            f"{result['steady_per_s']:.0f}/s after every store's first sync"
        )
        if api:
            print(
                f"API, {args.clients} clients: {api['requests']:,} requests, {api['rps']:.0f}/s, "
                f"p50 {api['p50_ms']:.1f} ms, "
                f"p99 {api['p99_ms']:.1f} ms (target < {TARGET_API_P99_MS:.0f}), max {api['max_ms']:.0f} ms, "
                f"errors {api['errors']} {api['statuses']}"
            )
        if baseline:
            print(
                f"API alone afterwards (clusters stopped), {args.clients} clients, {args.baseline_seconds:g} s: "
                f"{baseline['rps']:.0f}/s, p50 {baseline['p50_ms']:.1f} ms, p99 {baseline['p99_ms']:.1f} ms, "
                f"errors {baseline['errors']}"
            )
        print(f"worker kills: {len(kills)}")
        if load.samples:
            print(
                f"load average (1 min) meanwhile: mean {statistics.fmean(load.samples):.1f}, "
                f"max {max(load.samples):.1f} on {os.cpu_count()} CPUs"
            )
    finally:
        stop.set()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep:
            drop_db()
        else:
            print(f"kept: the database {db_url} and the logs in {tmp}")
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
