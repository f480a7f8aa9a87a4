"""A process sharing a POS credential's rate budget: `python -m tests.stores.ratelimit_worker COUNT THREADS`.

With the settings of its environment (the backend REDIS_URL or DATABASE_URL picks), it prints "ready" once Django
is set up, reads a wall-clock time from its standard input and waits until then (so processes that took unequal
times to start begin together), then takes COUNT requests' budget for a Treez credential from THREADS threads at
once (as a sync's pages in flight do), and prints as JSON when it began asking and the wall-clock time each was
granted."""

from __future__ import annotations

import json
import sys
import threading
import time

import django


def main() -> None:
    count, threads = int(sys.argv[1]), int(sys.argv[2])
    django.setup()
    from django.db import connections

    from pos_integrations import get_client
    from pos_integrations.deadlines import Deadline
    from stores.ratelimit import rate_limits

    client = get_client(
        "treez",
        base_url="http://127.0.0.1:9/shared-budget",
        credentials={"dispensary": "shared", "client_id": "one-credential", "api_key": "not-sent"},
        rate_limits=rate_limits(),
    )
    limiter = client.http.limiter
    assert limiter is not None
    granted: list[float] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for _ in range(n):
                limiter.acquire(Deadline(60.0), interactive=False)
                with lock:
                    granted.append(time.time())
        finally:
            connections.close_all()

    print("ready", flush=True)
    start = float(sys.stdin.readline())
    time.sleep(max(0.0, start - time.time()))
    began = time.time()
    workers = [threading.Thread(target=work, args=(count // threads + (i < count % threads),)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"backend": type(limiter.store).__name__, "began": began, "granted": granted}))


if __name__ == "__main__":
    main()
