"""How many customers per second the POS sandbox serves as JSON pages over loopback HTTP, per vendor.

Starts the sandbox in its own process (as `manage.py pos_sandbox` runs it) and pulls every vendor's full
listing with the page size our clients use, decoding each page:
  - "1 client": one keep-alive connection, one page after another (what one store's sync sees; the client's
    own HTTP and JSON work is in the loop),
  - "N clients": N client processes splitting the pages (several stores syncing at once).
Beside each wall-clock rate: the share of one CPU the sandbox process used meanwhile (read from /proc), and
customers served per sandbox CPU-second — what the one process sustains when it has a core to itself; on a
small machine the clients compete with it for the CPUs. Baseline, same run: rendering the same pages inside
this process without HTTP (the ceiling).

    .venv/bin/python bench/bench_sandbox.py [--customers 100000] [--clients 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pos_sandbox.data import Dataset  # noqa: E402
from pos_sandbox.vendors import DIALECTS, VENDORS  # noqa: E402
from pos_sandbox.vendors import SANDBOX_CREDENTIALS as C  # noqa: E402

PAGE_SIZES = {"leaflogix": 100, "treez": 50, "flowhub": 500, "covasoft": 100, "blaze": 500}
DISPENSARY = C["treez"]["dispensary"]
COMPANY = C["covasoft"]["company_id"]


def page_path(vendor: str, page: int) -> str:
    """The path of 0-based page `page` of the vendor's full listing."""
    size = PAGE_SIZES[vendor]
    if vendor == "leaflogix":
        return "/leaflogix/customer/customers-paginated?" + urlencode({"PageNumber": page + 1, "PageSize": size})
    if vendor == "treez":
        after = "1970-01-01T00%3A00%3A00.000%2B00%3A00"
        return f"/treez/{DISPENSARY}/customer/lastUpdated/after/{after}/page/{page + 1}/pagesize/{size}"
    if vendor == "flowhub":
        return "/flowhub/v1/customers/?" + urlencode({"page": page + 1, "page_size": size})
    if vendor == "covasoft":
        query = {"$filter": "LastModifiedDateUtc ge datetime'1970-01-01T00:00:00Z'", "$skip": page * size, "$top": size}
        return f"/covasoft/v1/Companies({COMPANY})/CustomerFull?" + urlencode(query)
    return "/blaze/api/v1/partner/members?" + urlencode({"skip": page * size, "limit": size})


EXTRACT: dict[str, Callable[[Any], list[Any]]] = {
    "leaflogix": lambda body: body,
    "treez": lambda body: body["data"],
    "flowhub": lambda body: body["data"],
    "covasoft": lambda body: body,
    "blaze": lambda body: body["values"],
}


def auth_headers(port: int, vendor: str) -> dict[str, str]:
    """Log in the way the vendor wants (tokens for Treez and Cova) and return the headers to send."""
    cred = C[vendor]
    if vendor == "leaflogix":
        return {"Authorization": "Basic " + base64.b64encode(f"{cred['api_key']}:".encode()).decode()}
    if vendor == "flowhub":
        return {"clientId": cred["client_id"], "key": cred["api_key"]}
    if vendor == "blaze":
        return {"partner_key": cred["partner_key"], "Authorization": cred["api_key"]}
    conn = http.client.HTTPConnection("127.0.0.1", port)
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if vendor == "treez":
        form = urlencode({"client_id": cred["client_id"], "apikey": cred["api_key"]})
        conn.request("POST", f"/treez/{DISPENSARY}/config/api/gettokens", body=form, headers=form_headers)
        token = json.loads(conn.getresponse().read())["access_token"]
        return {"Authorization": f"Bearer {token}", "client_id": cred["client_id"]}
    keys = ("username", "password", "client_id", "client_secret")
    form = urlencode({"grant_type": "password", **{k: cred[k] for k in keys}})
    conn.request("POST", "/covasoft/oauth2/token", body=form, headers=form_headers)
    return {"Authorization": "Bearer " + json.loads(conn.getresponse().read())["access_token"]}


def pull(port: int, vendor: str, first: int, step: int) -> int:
    """Fetch pages first, first+step, ... until an empty one; returns customers decoded."""
    headers = auth_headers(port, vendor)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    extract, n, page = EXTRACT[vendor], 0, first
    while True:
        conn.request("GET", page_path(vendor, page), headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{vendor}: HTTP {response.status} {body[:200]!r}")
        got = extract(json.loads(body))
        if not got:
            return n
        n += len(got)
        page += step


def _pull_star(args: tuple[int, str, int, int]) -> int:
    return pull(*args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int) -> None:
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/_control/state")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the sandbox did not start")


def baseline(customers: int, seed: int, vendor: str) -> float:
    """Customers/s rendering the same pages in this process, without HTTP."""
    ds = Dataset(customers=customers, seed=seed, vendors=VENDORS)
    gen, render, size = ds.generator(vendor), DIALECTS[vendor].record, PAGE_SIZES[vendor]
    count = min(customers, 50_000)
    start = time.perf_counter()
    for offset in range(0, count, size):
        idx, _ = ds.select(vendor, None, None, offset, size)
        ("[" + ",".join([render(gen, p, False) for p in ds.people(vendor, idx)]) + "]").encode()
    return count / (time.perf_counter() - start)


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time the sandbox process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid: int, run: Callable[[], int], expected: int) -> tuple[float, float, float]:
    """(customers/s wall clock, share of one CPU the sandbox used, customers per sandbox CPU-second)."""
    cpu, start = server_cpu_seconds(pid), time.perf_counter()
    n = run()
    cpu, elapsed = server_cpu_seconds(pid) - cpu, time.perf_counter() - start
    if n != expected:
        raise SystemExit(f"expected {expected} customers, got {n}")
    return n / elapsed, cpu / elapsed, n / max(cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    port, k = free_port(), args.clients
    sandbox = ["-m", "pos_sandbox", "--port", str(port), "--customers", str(args.customers)]
    proc = subprocess.Popen(
        [sys.executable, *sandbox, "--seed", str(args.seed)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_up(port)
        cpus = os.cpu_count()
        print(f"POS sandbox: {args.customers:,} customers per vendor, one server process, loopback, {cpus} CPUs")
        print("each column: customers/s (wall clock), sandbox CPU use, customers per sandbox CPU-second")
        print(f"{'vendor':<10} {'page':>5} {'1 client':>27} {f'{k} clients':>27} {'in-process':>11}")
        worst = float("inf")
        with multiprocessing.Pool(k) as pool:
            for vendor in PAGE_SIZES:
                runs = (
                    partial(pull, port, vendor, 0, 1),
                    partial(lambda v: sum(pool.map(_pull_star, [(port, v, i, k) for i in range(k)])), vendor),
                )
                cells = []
                for run in runs:
                    rate, share, per_cpu = measure(proc.pid, run, args.customers)
                    cells.append(f"{rate:>9,.0f} {share:>5.0%} {per_cpu:>9,.0f}")
                    worst = min(worst, per_cpu)
                base = baseline(args.customers, args.seed, vendor)
                print(f"{vendor:<10} {PAGE_SIZES[vendor]:>5}   {cells[0]}   {cells[1]} {base:>11,.0f}")
        print(f"slowest vendor: {worst:,.0f} customers per sandbox CPU-second (target >= 50,000)")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        print(f"sandbox peak memory (RSS): {int(peak) / 1024:,.0f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
