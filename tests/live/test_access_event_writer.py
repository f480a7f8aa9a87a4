"""API answers' access events from gunicorn with the writer on (PII_ACCESS_WRITE_SECONDS above 0, the default): the
answers' events reach the database from the worker's own thread without another request, and a worker stopped
the usual way (SIGTERM) writes what was still waiting before it exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.live.processes import DEADLINE, ROOT, free_port, manage, rows, wait_for

pytestmark = pytest.mark.slow

SEED = (
    "from stores.models import ApiScope; from stores.services import api_key_create;"
    "from tests.factories import CustomerFactory, StoreFactory; store = StoreFactory(catalog_id='writer');"
    "[CustomerFactory(store=store, drivers_license=f'D41612{n:02d}') for n in range(3)];"
    "print(api_key_create(name='till', stores=[store], scopes=[ApiScope.CUSTOMERS_READ, ApiScope.PII])[1])"
)


@contextmanager
def gunicorn(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    with log.open("ab") as out:
        web = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", web
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait(DEADLINE)


def event_requests(database: str) -> list[str]:
    return sorted(r for (r,) in rows(database, "SELECT request_id FROM customers_accessevent"))


def test_gunicorns_events_are_written_by_its_thread_and_at_exit(database, tmp_path):
    env = {**os.environ, "DATABASE_URL": database, "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    manage(env, "migrate", "--no-input")
    key = manage(env, "shell", "-c", SEED).split()[-1]
    headers = {"Authorization": f"Api-Key {key}"}
    log = tmp_path / "gunicorn.log"

    def answer(base: str, request_id: str) -> None:
        response = requests.get(f"{base}/api/v1/customers", headers={**headers, "X-Request-ID": request_id}, timeout=10)
        assert response.status_code == 200, response.text
        assert len(response.json()["customers"]) == 3

    with gunicorn({**env, "PII_ACCESS_WRITE_SECONDS": "0.5"}, log) as (base, _):
        wait_for("gunicorn", lambda: requests.get(f"{base}/health/", timeout=5).status_code < 500)
        for n in range(10):
            answer(base, f"thread-{n}")
        # No request after these: the worker's thread writes them within its interval.
        written = wait_for("the events", lambda: len(event_requests(database)) >= 10 and event_requests(database))
        assert written == [f"thread-{n}" for n in range(10)]

    with gunicorn({**env, "PII_ACCESS_WRITE_SECONDS": "60"}, log) as (base, web):
        wait_for("gunicorn", lambda: requests.get(f"{base}/health/", timeout=5).status_code < 500)
        started = time.monotonic()
        for n in range(5):
            answer(base, f"exit-{n}")
        assert len(event_requests(database)) == 10  # waiting in the worker
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(DEADLINE)
        assert time.monotonic() - started < 60  # written at exit, not by the thread's interval
    assert event_requests(database) == sorted([f"thread-{n}" for n in range(10)] + [f"exit-{n}" for n in range(5)])
    [(ids,)] = rows(database, "SELECT customer_ids FROM customers_accessevent WHERE request_id = 'exit-4'")
    assert len(ids if isinstance(ids, list) else json.loads(ids)) == 3  # jsonb on PostgreSQL, text on SQLite
