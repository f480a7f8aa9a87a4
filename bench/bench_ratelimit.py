"""What the POS rate limiter costs per request: one budget taken (`RateLimiter.acquire`, never waiting: the limit
is far above the rate) on each backend the settings can pick, from 1 thread and from 4 threads on one credential.

    .venv/bin/python bench/bench_ratelimit.py [--requests 2000]                      # memory + SQLite file
    scripts/with-postgres.sh scripts/with-redis.sh .venv/bin/python bench/bench_ratelimit.py   # + PostgreSQL, Redis

Without DATABASE_URL the database is a throwaway SQLite file (WAL, as the settings open it). Prints µs per request
(median of 3 runs) and requests/s with 4 threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-ratelimit-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    from bench_env import set_bench_environment

    set_bench_environment()
    import django

    django.setup()
    from django.db import connections

    from pos_integrations.deadlines import Deadline
    from pos_integrations.ratelimit import BucketStore, MemoryBucketStore, RateLimit, RateLimits, RedisBucketStore
    from stores.models import PosRateBucket
    from stores.ratelimit import ALIAS, DatabaseBucketStore

    own = connections[ALIAS]
    if PosRateBucket._meta.db_table not in own.introspection.table_names():
        with own.schema_editor() as editor:
            editor.create_model(PosRateBucket)

    stores: dict[str, BucketStore] = {"memory": MemoryBucketStore(), f"database ({own.vendor})": DatabaseBucketStore()}
    if os.environ.get("REDIS_URL"):
        stores["redis"] = RedisBucketStore(os.environ["REDIS_URL"])
    limit = RateLimit(10**9, 60.0)

    def take(store: BucketStore, key: str, n: int) -> None:
        limiter = RateLimits(store=store).limiter("treez", key, limit)
        for _ in range(n):
            limiter.acquire(Deadline(30.0), interactive=False)

    print(f"POS rate limiter: {args.requests} requests per run, one credential ({os.cpu_count()} CPUs)")
    print(f"{'backend':<22}{'1 thread µs/request':>22}{'4 threads requests/s':>24}")
    for name, store in stores.items():
        runs = []
        for run in range(3):
            started = time.perf_counter()
            take(store, f"treez:bench-{name}-{run}", args.requests)
            runs.append((time.perf_counter() - started) / args.requests * 1e6)

        def worker(store: BucketStore = store, name: str = name) -> None:
            try:
                take(store, f"treez:bench-{name}-threads", args.requests // 4)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rate = (args.requests // 4 * 4) / (time.perf_counter() - started)
        print(f"{name:<22}{statistics.median(runs):>22,.0f}{rate:>24,.0f}")


if __name__ == "__main__":
    main()
