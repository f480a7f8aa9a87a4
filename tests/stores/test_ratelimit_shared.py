"""Processes sharing a POS credential share its rate budget: two processes of two threads each, against the
backend the settings pick (the database on SQLite and PostgreSQL; Redis on scripts/test's Redis pass), together
stay within the limit, and a live lookup is served while a sync uses up its share."""

from __future__ import annotations

import json
import os
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from pos_integrations import get_client
from pos_integrations.deadlines import Deadline
from pos_integrations.ratelimit import RateLimit, RateLimits, RedisBucketStore
from stores.models import PosRateBucket
from stores.ratelimit import bucket_store

ROOT = Path(__file__).resolve().parents[2]
LIMIT = RateLimit(10, 1.0)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, databases=["default", "pos_ratelimit"])]


@pytest.fixture
def shared_env(tmp_path: Path) -> dict[str, str]:
    """The environment of processes sharing this test's budget store (the test database on PostgreSQL; on SQLite,
    whose test database lives in this process's memory, a file holding the budget table)."""
    env = {**os.environ, "POS_RATE_LIMIT_ENABLED": "true", "POS_RATE_LIMITS": f"treez={LIMIT.requests}/1s"}
    if not settings.REDIS_URL:
        if connection.vendor == "sqlite":
            path = tmp_path / "budgets.sqlite3"
            with connection.schema_editor(collect_sql=True) as editor:
                editor.create_model(PosRateBucket)
            with sqlite3.connect(path) as db:
                for statement in editor.collected_sql:
                    db.execute(statement)
            env["DATABASE_URL"] = f"sqlite:///{path}"
        else:
            params = connection.settings_dict
            env["DATABASE_URL"] = (
                f"postgres://{params['USER']}:{params['PASSWORD']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
            )
    return env


def run_workers(env: dict[str, str], *, processes: int, each: int, threads: int) -> list[dict]:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.stores.ratelimit_worker", str(each), str(threads)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    # Every process has started Django (a loaded machine can take seconds more for one than another): they begin
    # together, a moment from now.
    started = time.monotonic() + 60
    for child in children:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], max(0.0, started - time.monotonic()))
        if not ready or child.stdout.readline().strip() != "ready":
            child.kill()
            pytest.fail(f"a worker did not start within 60 s: {child.communicate()[1][-3000:]}")
    start = time.time() + 0.5
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{start}\n")
        child.stdin.flush()  # communicate() below closes it
    results = []
    for child in children:
        out, err = child.communicate(timeout=90)
        assert child.returncode == 0, err[-3000:]
        assert "rate limiter unavailable" not in err, err[-3000:]  # every grant came from the shared store
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def busiest_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u < t + seconds) for i, t in enumerate(times))


def test_processes_sharing_a_credential_together_stay_within_its_limit(shared_env: dict[str, str]) -> None:
    results = run_workers(shared_env, processes=2, each=15, threads=2)
    expected = "RedisBucketStore" if settings.REDIS_URL else "DatabaseBucketStore"
    assert {r["backend"] for r in results} == {expected}
    every = sorted(t for r in results for t in r["granted"])
    assert len(every) == 30
    # Never more than the limit in any second (less a tenth: threads of a loaded machine record their grant a
    # little late), though each process alone would have stayed under it too...
    assert busiest_window(every, LIMIT.seconds * 0.9) <= LIMIT.requests
    # ...because they shared it: both were asking before either had all it wanted (which of them the budget served
    # first is not promised), and 30 requests at 9 a window (a tenth kept for lookups) took at least three windows.
    assert max(r["began"] for r in results) < min(max(r["granted"]) for r in results)
    assert every[-1] - every[0] > 2 * LIMIT.seconds


def test_a_lookup_gets_budget_at_once_while_a_sync_has_used_its_share(settings) -> None:  # type: ignore[no-untyped-def]
    settings.POS_RATE_LIMIT_ENABLED = True
    settings.POS_RATE_LIMITS = {"treez": LIMIT}
    from stores.ratelimit import rate_limits

    limits = rate_limits()
    assert limits is not None
    client = get_client(
        "treez",
        base_url=f"http://127.0.0.1:9/lookup-{time.time()}",
        credentials={"dispensary": "d", "client_id": "c", "api_key": "k"},
        rate_limits=limits,
    )
    limiter = client.http.limiter
    assert limiter is not None
    for _ in range(9):
        limiter.acquire(Deadline(5.0), interactive=False)
    started = time.monotonic()
    assert limiter.acquire(Deadline(5.0, interactive=True), interactive=True) == 0.0
    assert time.monotonic() - started < 0.5


def test_the_database_store_uses_its_own_connection_not_the_default_one() -> None:
    if settings.REDIS_URL:
        assert isinstance(bucket_store(), RedisBucketStore)
        return
    limiter = RateLimits(store=bucket_store()).limiter("treez", f"treez:own-connection-{time.time()}", LIMIT)
    with CaptureQueriesContext(connection) as default, CaptureQueriesContext(connections["pos_ratelimit"]) as own:
        limiter.acquire(Deadline(5.0), interactive=False)
    # Nothing on the default connection (where a writer's COMMIT may be in flight), one tiny transaction on its own.
    assert default.captured_queries == []
    assert 2 <= len(own.captured_queries) <= 6
    assert PosRateBucket.objects.using("pos_ratelimit").filter(key=limiter.key).exists()
