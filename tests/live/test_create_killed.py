"""A create whose web worker is killed mid-way, for real: gunicorn serving the API on loopback, the POS sandbox over
HTTP, the worker SIGKILLed after the POS created the customer and before the answer. The key is in progress for
its lease (IDEMPOTENCY_LEASE_SECONDS), then a retry with it finds the customer the dead request created: exactly
one customer at the POS and in the mirror."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest
import requests

from tests.live.processes import DEADLINE, ROOT, free_port, manage, rows, wait_for, worker_pids

pytestmark = pytest.mark.slow

LEASE_SECONDS = 4


class HeldCreate:
    """The sandbox's Treez creates run, then their answer waits until `release` (the test kills the worker first)."""

    def __init__(self, server: Any) -> None:
        self.created = threading.Event()
        self.release = threading.Event()
        self.creates = 0
        dispatch = server.app.dispatch

        def spy(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
            answer = dispatch(method, target, headers, body)
            if method == "POST" and target.endswith("/customer/detailcustomer"):
                self.creates += 1
                self.created.set()
                self.release.wait(DEADLINE)
            return answer

        server.app.dispatch = spy


def test_a_create_killed_between_the_pos_and_the_answer_is_found_by_the_retry_after_the_lease(database, tmp_path):
    from pos_sandbox import SANDBOX_CREDENTIALS, SandboxServer

    with SandboxServer(port=0, customers=50, seed=1) as sandbox:
        held = HeldCreate(sandbox)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "IDEMPOTENCY_LEASE_SECONDS": str(LEASE_SECONDS),
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
        manage(env, "migrate", "--no-input")
        raw_key = manage(
            env,
            "shell",
            "-c",
            "from stores.models import Store; from stores.services import api_key_create;"
            f"Store.objects.create(name='Killed', catalog_id='killed', pos_vendor='treez',"
            f" pos_base_url='{sandbox.vendor_url('treez')}', pos_credentials={dict(SANDBOX_CREDENTIALS['treez'])!r});"
            "print(api_key_create(name='test')[1])",
        ).split()[-1]  # the shell may print what it imported first
        log = (tmp_path / "gunicorn.log").open("wb")
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--no-control-socket",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/api/v1/customers"
            headers = {"Authorization": f"Api-Key {raw_key}", "Idempotency-Key": "order-7"}
            email = f"killed-{uuid.uuid4().hex[:8]}@example.com"
            body = {
                "catalog_id": "killed",
                "customer": {
                    "first_name": "Sean",
                    "last_name": "Odegaard",
                    "birthday": "1988-09-12",
                    "email": email,
                    "phone": "(555) 201-7781",
                },
            }
            wait_for("the web server", lambda: requests.get(url, headers=headers, timeout=5).ok)

            first: dict[str, Any] = {}

            def create() -> None:
                try:
                    first["response"] = requests.post(url, json=body, headers=headers, timeout=DEADLINE)
                except requests.RequestException as exc:
                    first["error"] = exc

            started = time.monotonic()
            request = threading.Thread(target=create)
            request.start()
            assert held.created.wait(DEADLINE), "the create never reached the POS"
            [worker] = worker_pids(web.pid)
            os.kill(worker, signal.SIGKILL)  # the POS has created the customer; its answer is on its way
            held.release.set()
            request.join(DEADLINE)
            assert "error" in first, first  # the client got no answer
            ours = [r for r in sandbox.vendor_records("treez") if r.get("email") == email]
            assert len(ours) == 1
            [(status,)] = rows(database, "SELECT status FROM customers_idempotencyrecord")
            assert status == "in_progress"
            assert rows(database, "SELECT COUNT(*) FROM customers_customer") == [(0,)]

            # Within the lease the key stays in progress (the dead request might have been alive), then a retry
            # takes it over. (The lease counts from when the worker began, a moment after `started`.)
            while True:
                sent = time.monotonic()
                [retry] = wait_for("a worker", lambda: [requests.post(url, json=body, headers=headers, timeout=10)])
                if retry.status_code != 409:
                    break
                assert retry.json()["error"]["code"] == "idempotency_in_progress"
                assert sent - started < LEASE_SECONDS + 2, "the key stayed in progress past its lease"
                assert 1 <= int(retry.headers["Retry-After"]) <= LEASE_SECONDS
                time.sleep(int(retry.headers["Retry-After"]))

            assert retry.status_code == 201, retry.text
            customer = retry.json()["customer"]
            assert customer["customer_id"] == str(ours[0]["customer_id"])
            assert customer["email"] == email
            assert held.creates == 1  # the retry did not create again
            assert len([r for r in sandbox.vendor_records("treez") if r.get("email") == email]) == 1
            mirror = rows(database, "SELECT id, customer_id FROM customers_customer")
            assert mirror == [(customer["id"], customer["customer_id"])]
            again = requests.post(url, json=body, headers=headers, timeout=DEADLINE)
            assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
            assert again.json() == retry.json()
        finally:
            held.release.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(web.pid, signal.SIGTERM)
            try:
                web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)
                web.wait(timeout=10)
            log.close()
