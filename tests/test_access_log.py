"""Access logs keep paths and parameter names, never query values: lookups by phone, email or licence and the
older endpoint's `?api_key=` (a probe found 39 raw keys and about 38,000 phones and emails in one access log)."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from config.access_log import RedactQueryFilter, redact_request_line, redact_target

ROOT = Path(__file__).resolve().parents[1]
KEY = "cfk_live_5ecret5ecret5ecret"
PHONE = "5551234567"


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        (f"/api/v1/customers?phone={PHONE}&page_size=5", "/api/v1/customers?phone=…&page_size=…"),
        (f"/customers/search?api_key={KEY}&customer_id=1001", "/customers/search?api_key=…&customer_id=…"),
        ("/api/v1/customers?email=a%40b.example&email=c", "/api/v1/customers?email=…&email=…"),
        (f"/admin/customers/customer/?q={PHONE}", "/admin/customers/customer/?q=…"),
        (f"/api/v1/customers?{PHONE}", "/api/v1/customers?…=…"),
        ("/api/v1/customers?", "/api/v1/customers?…"),
        ("/health/", "/health/"),
    ],
)
def test_a_target_keeps_its_path_and_parameter_names(target, logged):
    assert redact_target(target) == logged


def test_a_request_line_keeps_method_and_protocol():
    line = "GET /api/v1/customers?driver_license=D4161227 HTTP/1.1"
    assert redact_request_line(line) == "GET /api/v1/customers?driver_license=… HTTP/1.1"
    assert redact_request_line(f"garbage?{PHONE}") == "…"


def test_the_development_servers_log_has_no_query_values():
    # What django.core.servers.basehttp.WSGIRequestHandler.log_message logs for each request runserver answers,
    # through the handler settings.LOGGING gives that logger.
    logger = logging.getLogger("django.server")
    [handler] = [h for h in logger.handlers if any(isinstance(f, RedactQueryFilter) for f in h.filters)]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        logger.info('"%s" %s %s', f"GET /customers/search?api_key={KEY}&customer_id=1001 HTTP/1.1", "200", "52")
    finally:
        handler.setStream(previous)
    assert stream.getvalue().endswith('] "GET /customers/search?api_key=…&customer_id=… HTTP/1.1" 200 52\n')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorns_access_log_has_no_query_values_or_keys(tmp_path):
    """gunicorn started as the README says (`gunicorn config.wsgi` from the repository's root), which reads
    gunicorn.conf.py; its access log (standard output) after lookups with PII and keys in their URLs."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESS_LOG": str(tmp_path / "access.log"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/no-such-page?phone={PHONE}", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # not up yet; a loaded machine boots slowly
                assert process.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
        requests.get(f"{base}/customers/search?api_key={KEY}&customer_id=1001", timeout=10)
        requests.get(
            f"{base}/api/v1/customers?email=sean%40example.com&driver_license=D4161227",
            headers={"X-API-Key": KEY, "Referer": f"{base}/admin/customers/customer/?q={PHONE}"},
            timeout=10,
        )
        requests.post(
            f"{base}/api/v1/customers/search",
            json={"driver_license": "D4161227", "medical_card_number": "MMJ77301948", "phone": PHONE},
            headers={"X-API-Key": KEY},
            timeout=10,
        )
        log = tmp_path / "access.log"
        deadline = time.monotonic() + 10
        while log.read_text().count("\n") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        text = log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert "/customers/search?api_key=…&customer_id=…" in text
    assert "/api/v1/customers?email=…&driver_license=…" in text
    assert '"POST /api/v1/customers/search HTTP/1.1"' in text  # the way for PII: the values in the body
    for secret in (KEY, PHONE, "sean", "example.com", "D4161227", "MMJ77301948"):
        assert secret not in text
