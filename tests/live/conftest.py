"""The live tests' fixtures. `scripts/run` for real: the sandbox, the web server and the task queue as a user starts
them, on a free pair of loopback ports and a database of the test's own; the README's examples and the run
script's promises are checked against it over HTTP. And `database`: one of the test's own for processes it
starts."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.live.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
# Variables of ours the test run has set (pytest_env) that a user's shell would not: scripts/run must run as
# it does for them. DEBUG is dropped so scripts/run's own default (true) applies.
OURS = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
START_SECONDS = 240  # a fresh run installs nothing here, but migrates, seeds and syncs on a busy 2-core machine


def wait_until(what: str, check: Callable[[], Any], *, timeout: float, alive: Callable[[], None]) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive()
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


@dataclass
class LiveRun:
    """One `scripts/run`, its output in a file."""

    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    web_port: int
    sandbox_port: int

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def printed(self, pattern: str) -> str:
        found = re.search(pattern, self.log())
        assert found, f"scripts/run did not print {pattern!r}:\n{self.log()[-3000:]}"
        return found[1]

    @property
    def api_key(self) -> str:
        return self.printed(r"API key:\s+(\S+)")

    @property
    def password(self) -> str:
        return self.printed(r"staff login: admin / (\S+)")

    def alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"scripts/run exited with {self.process.returncode}:\n{self.log()[-4000:]}")

    def wait_ready(self) -> None:
        """Until the health check answers 200 (web server, database and task queue up) and the demo's first
        syncs are done."""
        wait_until(
            "the health check",
            lambda: requests.get(f"{self.web_url}/health/", timeout=5).status_code == 200,
            timeout=START_SECONDS,
            alive=self.alive,
        )
        headers = {"X-API-Key": self.api_key}

        def synced() -> bool:
            syncs = requests.get(f"{self.web_url}/api/v1/syncs", headers=headers, timeout=10).json()["syncs"]
            states = [(s["last_sync"] or {}).get("status") for s in syncs]
            return len(syncs) == 5 and all(state == "finished" for state in states)

        wait_until("the demo's first syncs", synced, timeout=START_SECONDS, alive=self.alive)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM as a user's terminal would send; everything the run started is gone afterwards."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # anything it left behind


def run_environment(tmp: Path, *, database: Path, web_port: int, sandbox_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OURS | {"DATABASE_URL"}}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        QUEUE_CACHE_DIR=str(tmp / "queue-cache"),
        WEB_PORT=str(web_port),
        SANDBOX_PORT=str(sandbox_port),
        SANDBOX_CUSTOMERS="200",
    )
    return env


def run_script(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`scripts/run` in a session of its own (so that it and everything it starts can be stopped together)."""
    log = log_path.open("ab")
    return subprocess.Popen(
        [str(ROOT / "scripts" / "run")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.fixture(scope="session")
def start_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveRun]]:
    """Start `scripts/run` (each call its own ports and, unless given, its own database); all stopped at the end."""
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("scripts/run runs on SQLite whatever the suite's database: these run on the SQLite pass")
    runs: list[LiveRun] = []

    def start(*, database: Path | None = None, ready: bool = True) -> LiveRun:
        tmp = tmp_path_factory.mktemp("run")
        web_port, sandbox_port = free_port(), free_port()
        env = run_environment(
            tmp, database=database or tmp / "db.sqlite3", web_port=web_port, sandbox_port=sandbox_port
        )
        log_path = tmp / "run.log"
        run = LiveRun(run_script(env, log_path), log_path, env, web_port, sandbox_port)
        runs.append(run)
        if ready:
            run.wait_ready()
        return run

    yield start
    for run in runs:
        run.stop()


@pytest.fixture(scope="session")
def demo_run(start_run: Callable[..., LiveRun]) -> LiveRun:
    """One `scripts/run` with its demo synced, shared by the tests that only read from it."""
    return start_run()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A database of the test's own that other processes open: an SQLite file, or a new PostgreSQL database when
    the suite runs on PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'live.sqlite3'}"
        return
    import psycopg

    name = f"live_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{url.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
