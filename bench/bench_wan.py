"""Syncs at internet latency and each vendor's published rate limit: the POS sandbox with 150 ms added to every
answer (`slow`) and the limits enforced (`ratelimit=on`), a full and an incremental sync per vendor into
PostgreSQL.

    scripts/with-postgres.sh .venv/bin/python bench/bench_wan.py                       # 20,000 customers a vendor
    scripts/with-postgres.sh .venv/bin/python bench/bench_wan.py --in-flight 1,4      # before (1) and after (4)
    scripts/with-postgres.sh .venv/bin/python bench/bench_wan.py --customers 2000 --vendors treez,covasoft

For each sync it prints the wall time (and the CPU time of this, the syncing, process), the requests the sandbox
served for it (token requests and refused ones included), the 429s the client received, and the floor: the larger
of requests / the vendor's published rate and requests x latency / the requests allowed in flight
(SYNC_PAGES_IN_FLIGHT). Before each sync the sandbox's rate windows start afresh (its faults are cleared and set
again). Before each incremental sync `--changes` customers are modified at the POS. The sandbox runs in its own
process; the syncs run in this one, one after the other.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VENDORS = ("leaflogix", "treez", "flowhub", "covasoft", "blaze")


class Count429(logging.Handler):
    """Counts the POS answers the HTTP layer logged as 429."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "http_status", None) == 429:
            self.count += 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_sandbox(customers: int, seed: int, faults: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "pos_sandbox", "--port", str(port), "--customers", str(customers)]
    command += ["--seed", str(seed), "--faults", faults]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def _control(base_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base_url}/_control/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _requests_served(base_url: str, vendor: str) -> int:
    return int(_control(base_url, "GET", "state")["vendors"][vendor]["requests"])


def _published_rate(vendor: str) -> float | None:
    """The vendor's published limit as requests per second (None: none published)."""
    from pos_sandbox.vendors import DIALECTS

    limit = DIALECTS[vendor].published_rate_limit
    return None if limit is None else limit[0] / limit[1]


def _sync(store: Any, kind: str, base_url: str, faults: str, counter: Count429) -> dict[str, Any]:
    from syncs.services import sync_create

    _control(base_url, "DELETE", "faults")  # fresh rate windows for this sync
    _control(base_url, "POST", "faults", {"spec": faults})
    served = _requests_served(base_url, store.pos_vendor)
    counter.count = 0
    sync, created = sync_create(store=store, kind=kind, trigger="manual")
    assert created, "a sync is already running"
    started, cpu = time.perf_counter(), time.process_time()
    sync = sync.do_process()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "status": sync.status if sync.status == "finished" else f"{sync.status}: {sync.error_type}",
        "error": sync.error_message,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "requests": _requests_served(base_url, store.pos_vendor) - served,
        "429s": counter.count,
        "pages": sync.pages,
        "fetched": sync.fetched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000, help="customers per vendor (default 20,000)")
    parser.add_argument("--vendors", default=",".join(VENDORS), help="comma-separated (default all five)")
    parser.add_argument(
        "--in-flight", default="", help="SYNC_PAGES_IN_FLIGHT values to run, e.g. 1,4 (default: the setting)"
    )
    parser.add_argument("--latency", type=float, default=0.150, help="seconds added to every answer (default 0.150)")
    parser.add_argument("--changes", type=int, default=200, help="customers modified before the incremental sync")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    vendors = [v.strip() for v in args.vendors.split(",") if v.strip()]
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("needs PostgreSQL: run under scripts/with-postgres.sh")

    from bench_env import set_bench_environment

    set_bench_environment()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from pos_sandbox import SANDBOX_CREDENTIALS
    from stores.models import Store

    call_command("migrate", verbosity=0)
    in_flights = [int(n) for n in args.in_flight.split(",") if n.strip()] or [settings.SYNC_PAGES_IN_FLIGHT]
    faults = f"slow={args.latency * 1000:g}ms,ratelimit=on"
    counter = Count429()
    logging.getLogger("pos_integrations.http").addHandler(counter)
    sandbox, base_url = _start_sandbox(args.customers, args.seed, faults)
    results: list[dict[str, Any]] = []
    try:
        for in_flight in in_flights:
            settings.SYNC_PAGES_IN_FLIGHT = in_flight
            for vendor in vendors:
                catalog_id = f"wan-{vendor}-{in_flight}"
                Store.objects.filter(catalog_id=catalog_id).delete()
                store = Store.objects.create(
                    name=catalog_id,
                    catalog_id=catalog_id,
                    pos_vendor=vendor,
                    pos_base_url=f"{base_url}/{vendor}",
                    pos_credentials=dict(SANDBOX_CREDENTIALS[vendor]),
                    sync_enabled=False,
                )
                rate = _published_rate(vendor)
                for kind in ("full", "incremental"):
                    if kind == "incremental" and args.changes:
                        _control(base_url, "POST", "modify", {"vendor": vendor, "count": args.changes})
                    figures = _sync(store, kind, base_url, faults, counter)
                    by_rate = figures["requests"] / rate if rate else 0.0
                    by_latency = figures["requests"] * args.latency / in_flight
                    floor = max(by_rate, by_latency)
                    row = {
                        "vendor": vendor,
                        "kind": kind,
                        "in_flight": in_flight,
                        **figures,
                        "rate_per_s": round(rate, 2) if rate else None,
                        "floor_seconds": floor,
                        "x_floor": figures["seconds"] / floor if floor else None,
                    }
                    results.append(row)
                    print(
                        f"{vendor:<10} {kind:<11} in flight {in_flight:>2}  {figures['seconds']:7.1f} s "
                        f"(CPU {figures['cpu_seconds']:5.1f} s)  "
                        f"{figures['requests']:>5} requests  {figures['429s']:>4} x 429  floor {floor:6.1f} s  "
                        f"= {row['x_floor']:.2f}x  ({figures['fetched']:,} records, {figures['pages']} pages)"
                        + ("" if figures["status"] == "finished" else f"  {figures['status']}: {figures['error']}"),
                        flush=True,
                    )
    finally:
        sandbox.terminate()
        sandbox.wait()
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
