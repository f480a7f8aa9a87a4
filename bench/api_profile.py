"""Per-request cost of the API in one process: the WSGI app called directly (no HTTP server, no load generator),
for the bench's scenarios, against the bench's database. Prints the mean time per request per scenario, or a
cProfile of the requests.

    DATABASE_URL=... .venv/bin/python bench/api_profile.py --customers 1000000 [--only lookup] [--profile] [-n 2000]

Same settings as bench/bench_api.py (it reuses its configure_env, prepare and scenarios); the database must be
PostgreSQL, loaded by an earlier bench run or loaded here.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import EXPECTED_STATUS, RANDOM_PAGE_COST, configure_env, prepare, scenarios


def environ_for(path: str, key: str) -> dict[str, Any]:
    url = urlsplit(path)
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8031",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8031",
        "HTTP_AUTHORIZATION": f"Api-Key {key}",
        "HTTP_ACCEPT": "application/json",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call_all(app: Callable[..., Iterable[bytes]], key: str, paths: list[str], expected: int) -> None:
    seen: list[str] = []
    for path in paths:
        seen.clear()
        body = b"".join(app(environ_for(path, key), lambda status, headers, *_: seen.append(status)))
        if not seen[0].startswith(str(expected)):
            sys.exit(f"{path} answered {seen[0]}: {body[:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("-n", type=int, default=1000, help="Requests per scenario.")
    parser.add_argument("--only", action="append", default=[], help="Only scenarios whose name contains this.")
    parser.add_argument("--profile", action="store_true", help="cProfile the requests (all scenarios chosen).")
    parser.add_argument("--cpu", action="store_true", help="Profile CPU time (waits for the database excluded).")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key.")
    parser.add_argument("--limit", type=int, default=60, help="pstats lines.")
    parser.add_argument("--random-page-cost", default=RANDOM_PAGE_COST, help="As bench_api.py's.")
    args = parser.parse_args()

    configure_env(8031)
    key, catalog_ids, first_id = prepare(args.customers, args.stores, args.random_page_cost)
    plan = scenarios(args.customers, catalog_ids, first_id, args.n)
    if args.only:
        plan = {name: paths for name, paths in plan.items() if any(o in name for o in args.only)}

    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    profiler = None
    if args.profile:
        profiler = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
    for name, paths in plan.items():
        expected = EXPECTED_STATUS.get(name, 200)
        call_all(app, key, paths[: min(200, len(paths))], expected)  # warm: connection, prepared statements
        if profiler is not None:
            profiler.enable()
        start, cpu_start = time.perf_counter(), time.process_time()
        call_all(app, key, paths, expected)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if profiler is not None:
            profiler.disable()
        print(
            f"{name:<56} {seconds / len(paths) * 1000:6.3f} ms/request, "
            f"of which {cpu / len(paths) * 1000:6.3f} ms this process's CPU (the rest: the database, waiting)"
        )
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.strip_dirs().sort_stats(args.sort).print_stats(args.limit)


if __name__ == "__main__":
    main()
