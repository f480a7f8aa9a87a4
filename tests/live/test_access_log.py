"""`scripts/run`'s web server logs each request without its query values."""

from __future__ import annotations

import time

import requests

from tests.live.conftest import LiveRun


def test_the_runs_access_log_has_no_key_or_lookup_value(demo_run: LiveRun):
    key = demo_run.api_key
    requests.get(f"{demo_run.web_url}/customers/search?api_key={key}&customer_id=1001", timeout=10)
    requests.get(
        f"{demo_run.web_url}/api/v1/customers?phone=5550001234&email=probe%40example.com",
        headers={"X-API-Key": key},
        timeout=10,
    )
    deadline = time.monotonic() + 10
    while "/api/v1/customers?phone=…&email=…" not in demo_run.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = demo_run.log()
    assert "/customers/search?api_key=…&customer_id=…" in log
    assert "/api/v1/customers?phone=…&email=…" in log
    assert f"api_key={key}" not in log
    assert "5550001234" not in log
    assert "probe" not in log
