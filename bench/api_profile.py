"""Per-request cost of the API in one process: the WSGI app called directly (no HTTP server, no load generator),
for the bench's scenarios, against the bench's database. Prints the mean time per request per scenario, or a
cProfile of the requests.

    DATABASE_URL=... .venv/bin/python bench/api_profile.py --customers 1000000 [--only lookup] [--profile] [-n 2000]
    ... bench/api_profile.py --compare-pii --repeat 5 [--only ...]   # what an access event costs (issue 18)

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
        answer = app(environ_for(path, key), lambda status, headers, *_: seen.append(status))
        body = b"".join(answer)
        answer.close()  # as a WSGI server does once the body is sent (access events are written then)
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
    parser.add_argument(
        "--compare-pii",
        action="store_true",
        help="Each scenario in three ways, alternating, --repeat times: a key without `pii` (masked), a key with "
        "it but the access event not written, and with it as served (audited).",
    )
    parser.add_argument("--repeat", type=int, default=5, help="--compare-pii: rounds of the three ways.")
    args = parser.parse_args()

    configure_env(8031)
    (key, masked_key), catalog_ids, first_id = prepare(args.customers, args.stores, args.random_page_cost)
    plan = scenarios(args.customers, catalog_ids, first_id, args.n)
    if args.only:
        plan = {name: paths for name, paths in plan.items() if any(o in name for o in args.only)}

    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    if args.compare_pii:
        compare_pii(app, plan, key, masked_key, args.repeat)
        return
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


def compare_pii(
    app: Callable[..., Iterable[bytes]], plan: dict[str, list[str]], key: str, masked_key: str, repeat: int
) -> None:
    """Per scenario, the three ways one after another, `repeat` rounds: the median and minimum per request of the
    wall-clock time (this process and the database) and of this process's CPU, and the audited minus the
    unaudited median."""
    import statistics

    import customers.api.pii
    from customers.models import AccessEvent
    from customers.pii_access import access_event_writer

    recorder = customers.api.pii.access_events_record_answer

    def not_recorded(**_: Any) -> int:
        return 0

    ways = {
        "masked (no pii)": (masked_key, recorder),
        "pii, no event": (key, not_recorded),
        "pii, audited": (key, recorder),
    }
    for name, paths in plan.items():
        expected = EXPECTED_STATUS.get(name, 200)
        times: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
        for way_key, record in ways.values():
            customers.api.pii.access_events_record_answer = record  # type: ignore[assignment]
            call_all(app, way_key, paths[: min(200, len(paths))], expected)  # warm
        last_before = AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        for _ in range(repeat):
            for way, (way_key, record) in ways.items():
                customers.api.pii.access_events_record_answer = record  # type: ignore[assignment]
                start, cpu_start = time.perf_counter(), time.process_time()
                call_all(app, way_key, paths, expected)
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
                times[way].append((seconds / len(paths) * 1000, cpu / len(paths) * 1000))
        customers.api.pii.access_events_record_answer = recorder
        access_event_writer.flush()  # what the writer's thread has not written yet
        written = AccessEvent.objects.filter(pk__gt=last_before).values_list("customer_ids", flat=True)
        rows, listed = len(written), sum(len(ids) for ids in written)
        print(
            f"\n{name} ({len(paths)} requests x {repeat} rounds; per audited request {rows / (repeat * len(paths)):g} "
            f"access event(s), {listed / (repeat * len(paths)):g} customers)"
        )
        print("| way | wall ms/request, median / min | of which this process's CPU, median / min |")
        print("|---|---:|---:|")
        for way, values in times.items():
            wall, cpu = [v[0] for v in values], [v[1] for v in values]
            print(
                f"| {way} | {statistics.median(wall):.3f} / {min(wall):.3f} | "
                f"{statistics.median(cpu):.3f} / {min(cpu):.3f} |"
            )
        added = [a[0] - b[0] for a, b in zip(times["pii, audited"], times["pii, no event"], strict=True)]
        print(f"audited - no event, per round (wall ms): {', '.join(f'{d:+.3f}' for d in added)}", flush=True)


if __name__ == "__main__":
    main()
