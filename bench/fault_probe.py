"""Fault probe: many syncs through a failing, changing POS, some killed, then the mirror checked record by record.

    python bench/fault_probe.py                                   # SQLite (a fresh temporary file), 100 syncs
    scripts/with-postgres.sh .venv/bin/python bench/fault_probe.py  # PostgreSQL (a fresh database in it)
    python bench/fault_probe.py --syncs 30 --customers 500        # smaller

Not a test: it prints what it found, so that a later change can be checked the same way (bench/README.md).
FAULT_PROBE_LOGS=DIR keeps each sync process's log (stderr; LOG_LEVEL=INFO for the details) in DIR.

The POS sandbox runs in this process with its faults on (by default 10% 5xx, 5% 429 with Retry-After, 2% dropped
connections, tokens expiring every 40 requests, one record in 2,000 malformed) for one store of each of the five
vendors. Each sync is `manage.py sync_customers` in a process of its own, the stores in turn, two in ten full
syncs; every tenth (a full one) is SIGKILLed at a random request (the next sync of its store, usually an
incremental, finds it abandoned after the lease, set to 2 s here), and three in twenty are stopped with SIGTERM
(recorded `interrupted` at once). The POS changes
throughout: a thread modifies, creates and deletes customers while the syncs run. At the end the changes stop,
each store gets an incremental and a full sync, and the mirror is compared with the POS:

- lost: a customer the POS has (not malformed) that the mirror lacks;
- duplicated: more mirror rows than distinct (store, POS id);
- stale: a mirror customer whose data differs from the POS's (its vendor JSON, `raw`, compared whole);
- wrongly active: active in the mirror but gone from (or merged at) the POS; wrongly inactive: the reverse;
- the quarantine: records rejected, against the sandbox's malformed ones;
- the stopped syncs, and how many of those with a checkpoint were carried on by a later sync.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VENDORS = ["leaflogix", "treez", "flowhub", "covasoft", "blaze"]
FAULTS = "5xx=0.1,429=0.05,retry_after=1,drop=0.02,token_ttl=40,malformed_record=1/2000"
LEASE_SECONDS = 2
SYNC_DEADLINE = 300  # seconds one sync process may take before the probe gives up on it


def _database(keep: bool) -> tuple[str, Any]:
    """A fresh database: a temporary SQLite file, or a new database in the PostgreSQL of DATABASE_URL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        path = Path(tempfile.mkdtemp(prefix="fault-probe-")) / "probe.sqlite3"
        return f"sqlite:///{path}", None
    import psycopg

    name = f"fault_probe_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        if not keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"{url.rsplit('/', 1)[0]}/{name}", drop


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    from bench_env import set_bench_environment

    set_bench_environment()
    os.environ["SYNC_LEASE_SECONDS"] = str(LEASE_SECONDS)
    os.environ.setdefault("QUEUE_CACHE_DIR", tempfile.mkdtemp(prefix="fault-probe-queue-"))
    import django

    django.setup()


class RequestCounter:
    """Counts the sandbox's POS requests (not its control calls) and calls `at(n)` on each."""

    def __init__(self, server: Any) -> None:
        self.count = 0
        self.at = lambda n: None
        self._dispatch = server.app.dispatch
        server.app.dispatch = self

    def __call__(self, method: str, target: str, headers: Any, body: Any) -> Any:
        if not target.startswith("/_control"):
            self.count += 1
            self.at(self.count)
        return self._dispatch(method, target, headers, body)


class Changer(threading.Thread):
    """Changes the POS while the syncs run: every `every` seconds a few customers of one vendor modified, now and
    then one created or deleted."""

    def __init__(self, server: Any, rng: random.Random, every: float) -> None:
        super().__init__(name="pos-changes", daemon=True)
        self.server, self.rng, self.every = server, rng, every
        self.stopped = threading.Event()
        self.changes: collections.Counter[str] = collections.Counter()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            vendor = self.rng.choice(VENDORS)
            self.changes["modified"] += len(self.server.modify(vendor, self.rng.randint(1, 5)))
            roll = self.rng.random()
            if roll < 0.3:
                self.changes["created"] += len(self.server.create(vendor, 1))
            elif roll < 0.4:
                self.changes["deleted"] += len(self.server.delete(vendor, 1))


class Spare:
    """The next sync's process, started (Django set up, waiting for its store on stdin) while the current sync
    runs, so that a process start is not on the clock of every sync."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.started = 0
        self.next = self._start()

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, __file__, "--child"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log(),
            text=True,
            start_new_session=True,
        )

    def _log(self) -> Any:
        logs = self.env.get("FAULT_PROBE_LOGS")
        if not logs:
            return subprocess.DEVNULL
        self.started += 1
        return open(Path(logs) / f"sync-process-{self.started:04d}.log", "w")

    def take(self) -> subprocess.Popen[str]:
        child, self.next = self.next, self._start()
        return child

    def close(self) -> None:
        self.next.kill()
        self.next.wait(timeout=30)


def child_main() -> None:
    """In the spare process: wait for `CATALOG_ID full|incremental`, run `sync_customers` for it, exit as it does."""
    _setup_django(os.environ["DATABASE_URL"])
    from django.core.management import call_command
    from django.core.management.base import CommandError

    catalog_id, kind = sys.stdin.readline().split()
    try:
        call_command("sync_customers", store=catalog_id, full=kind == "full", no_progress=True)
    except CommandError:
        sys.exit(1)


def run_sync(
    spare: Spare, counter: RequestCounter, store: str, *, full: bool, stop: int | None, at_request: int
) -> tuple[int, bool]:
    """One sync in a process of its own; `stop` (a signal) is sent to it at its `at_request`th POS request. Its
    exit code, and whether the signal was sent."""
    child = spare.take()
    sent = threading.Event()
    start = counter.count

    def at(n: int) -> None:
        if stop is not None and not sent.is_set() and n - start >= at_request:
            sent.set()
            # A moment later: the signal lands mid-fetch, mid-parse or mid-write.
            threading.Timer(random.uniform(0.0, 0.05), _signal, (child.pid, stop)).start()

    counter.at = at
    assert child.stdin is not None
    child.stdin.write(f"{store} {'full' if full else 'incremental'}\n")
    child.stdin.close()
    try:
        code = child.wait(timeout=SYNC_DEADLINE)
    except subprocess.TimeoutExpired:
        _signal(child.pid, signal.SIGKILL)
        code = child.wait(timeout=30)
    finally:
        counter.at = lambda n: None
    return code, sent.is_set()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def check_mirror(server: Any) -> dict[str, Any]:
    """The mirror against the POS, record by record."""
    from django.db.models import Count

    from customers.models import Customer, RejectedRecord
    from stores.models import Store

    found: collections.Counter[str] = collections.Counter()
    for store in Store.objects.order_by("pk"):
        vendor = store.pos_vendor
        client = store.pos_client()
        mirror = {c.customer_id: c for c in Customer.objects.filter(store=store).iterator(chunk_size=2000)}
        malformed = server.malformed_ids(vendor)
        for raw in server.vendor_records(vendor):
            try:
                record = client.parse_record(raw)
            except Exception:
                found["malformed at the POS"] += 1
                continue
            if record.customer_id in malformed:
                found["malformed at the POS"] += 1
                mirror.pop(record.customer_id, None)
                continue
            found["at the POS"] += 1
            customer = mirror.pop(record.customer_id, None)
            if customer is None:
                found["lost"] += 1
                continue
            if customer.raw != raw:
                found["stale"] += 1
            active = record.active and not record.merged_into_customer_id
            if customer.active and not active:
                found["wrongly active"] += 1
            elif active and not customer.active:
                found["wrongly inactive"] += 1
        # What is left is gone from the POS: it must be inactive.
        found["gone from the POS"] += len(mirror)
        found["wrongly active"] += sum(1 for c in mirror.values() if c.active)
    rows = Customer.objects.count()
    distinct = Customer.objects.values("store_id", "customer_id").distinct().count()
    found["duplicated"] = rows - distinct
    quarantine = RejectedRecord.objects.values("reason").annotate(n=Count("id")).order_by("-n")
    return {
        "counts": dict(found),
        "quarantined": RejectedRecord.objects.count(),
        "quarantined customers": RejectedRecord.objects.values("store_id", "customer_id").distinct().count(),
        "quarantine reasons": {q["reason"][:80]: q["n"] for q in quarantine[:5]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--syncs", type=int, default=100, help="syncs in the loop (default 100)")
    parser.add_argument("--customers", type=int, default=1000, help="customers per vendor (default 1000)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--faults", default=FAULTS, help=f"the sandbox's fault SPEC (default {FAULTS})")
    parser.add_argument("--change-every", type=float, default=0.2, help="seconds between POS changes")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main()
        return

    url, drop = _database(args.keep)
    _setup_django(url)
    from django.core.management import call_command

    from pos_sandbox import SANDBOX_CREDENTIALS, SandboxServer
    from stores.models import Store
    from syncs.models import CustomerSync

    call_command("migrate", verbosity=0)
    server = SandboxServer(port=0, customers=args.customers, seed=args.seed, faults=args.faults).start()
    rng = random.Random(args.seed)
    started = time.monotonic()
    spare: Spare | None = None
    try:
        for vendor in VENDORS:
            Store.objects.create(
                name=f"Probe {vendor}",
                catalog_id=f"probe-{vendor}",
                pos_vendor=vendor,
                pos_base_url=server.vendor_url(vendor),
                pos_credentials=dict(SANDBOX_CREDENTIALS[vendor]),
                sync_enabled=False,
            )
        spare = Spare({**os.environ})
        counter = RequestCounter(server)
        changer = Changer(server, rng, args.change_every)
        changer.start()
        outcomes: collections.Counter[str] = collections.Counter()
        stopped_syncs: list[tuple[int, str]] = []  # (sync id, signal)
        for i in range(args.syncs):
            # Each run of five syncs covers the five stores, in an order shifted every run; two in ten are full
            # syncs, and the one SIGKILLed in every ten is one of them (long syncs are the ones a kill hits).
            vendor = VENDORS[(i + i // len(VENDORS)) % len(VENDORS)]
            full = i % 10 in (3, 9)
            stop = signal.SIGKILL if i % 10 == 9 else signal.SIGTERM if i % 10 == 4 or i % 20 == 13 else None
            at_request = rng.randint(2, 8) if full else rng.randint(1, 3)
            before = CustomerSync.objects.order_by("-id").values_list("id", flat=True).first() or 0
            code, sent = run_sync(spare, counter, f"probe-{vendor}", full=full, stop=stop, at_request=at_request)
            outcomes[{0: "finished", 1: "failed", 143: "interrupted", -9: "killed"}.get(code, f"exit {code}")] += 1
            if sent and stop is not None:
                sync_id = CustomerSync.objects.filter(id__gt=before).values_list("id", flat=True).first()
                if sync_id is not None:
                    stopped_syncs.append((sync_id, signal.Signals(stop).name))
            print(f"\rsync {i + 1}/{args.syncs} ({time.monotonic() - started:.0f} s)", end="", file=sys.stderr)
        changer.stopped.set()
        changer.join(timeout=10)
        loop_seconds = time.monotonic() - started
        print(file=sys.stderr)
        # Settle: the POS stops changing; each store gets an incremental, then a full sync (deletions).
        time.sleep(LEASE_SECONDS + 0.5)
        settle: collections.Counter[str] = collections.Counter()
        for vendor in VENDORS:
            for full in (False, True):
                for _ in range(3):  # a sync the faults fail is tried again, as the schedule would
                    code, _ = run_sync(spare, counter, f"probe-{vendor}", full=full, stop=None, at_request=0)
                    if code == 0:
                        break
                    settle["retried"] += 1
                settle["finished" if code == 0 else "not finished"] += 1
        result = check_mirror(server)

        statuses = collections.Counter(
            f"{status}{' (' + error + ')' if error in ('Abandoned', 'Interrupted') else ''}"
            for status, error in CustomerSync.objects.values_list("status", "error_type")
        )
        stopped_ids = [sync_id for sync_id, _ in stopped_syncs]
        with_checkpoint = set(CustomerSync.objects.filter(id__in=stopped_ids, pages__gt=0).values_list("id", flat=True))
        resumed = set(
            CustomerSync.objects.filter(resumed_from_id__in=stopped_ids).values_list("resumed_from_id", flat=True)
        )
        by_signal: dict[str, dict[str, int]] = {}
        for sync_id, name in stopped_syncs:
            entry = by_signal.setdefault(name, {"stopped": 0, "with a checkpoint": 0, "resumed": 0})
            entry["stopped"] += 1
            entry["with a checkpoint"] += sync_id in with_checkpoint
            entry["resumed"] += sync_id in resumed
        report = {
            "database": "postgresql" if url.startswith("postgres") else "sqlite",
            "syncs in the loop": args.syncs,
            "customers per vendor": args.customers,
            "faults": args.faults,
            "loop seconds": round(loop_seconds, 1),
            "total seconds": round(time.monotonic() - started, 1),
            "POS changes": dict(changer.changes),
            "loop exits": dict(outcomes),
            "settle": dict(settle),
            "sync statuses": dict(statuses),
            "stopped syncs": by_signal,
            **result,
        }
        counts = result["counts"]
        print(
            f"lost {counts.get('lost', 0)}, duplicated {counts.get('duplicated', 0)}, stale {counts.get('stale', 0)}, "
            f"wrongly active {counts.get('wrongly active', 0)}, wrongly inactive {counts.get('wrongly inactive', 0)} "
            f"of {counts.get('at the POS', 0)} customers at the POS ({counts.get('gone from the POS', 0)} gone from it)"
        )
        for name, entry in by_signal.items():
            print(
                f"{name}: {entry['stopped']} syncs stopped, {entry['with a checkpoint']} with a checkpoint, "
                f"{entry['resumed']} of those carried on by a later sync"
            )
        print(
            f"quarantine: {result['quarantined']} records of {result['quarantined customers']} customers "
            f"({counts.get('malformed at the POS', 0)} malformed at the POS)"
        )
        print(json.dumps(report, indent=2, default=str))
    finally:
        if spare is not None:
            spare.close()
        server.stop()
        if drop is not None:
            from django.db import connections

            connections.close_all()
            drop()


if __name__ == "__main__":
    main()
