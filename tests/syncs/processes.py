"""Real processes for the sync tests: a database other processes can open, `manage.py` runs, reading rows."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def database_for_subprocesses(tmp_path: Path) -> tuple[str, Callable[[], None] | None]:
    """A database of its own (an SQLite file, or a new PostgreSQL database) that other processes can open, and
    what drops it (None for SQLite)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{tmp_path / 'crash.sqlite3'}", None
    import psycopg

    name = f"crash_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    base = url.rsplit("/", 1)[0]

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"{base}/{name}", drop


def manage(env: dict[str, str], *args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def start_manage(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen:
    """`manage.py ARGS` in a process group of its own (so that it can be signalled as systemd does: the group)."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,
    )


def rows(url: str, sql: str) -> list[tuple]:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql).fetchall()


def wait_for(what: str, check: Callable[[], Any], *, timeout: float, alive: subprocess.Popen | None = None) -> Any:
    """Poll `check` until it returns something truthy; AssertionError naming `what` after `timeout` seconds or
    when `alive` has exited meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the process exited ({alive.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def wait_exit(process: subprocess.Popen, *, timeout: float) -> tuple[int, float]:
    """Wait for the process to exit; its return code and how long it took. Killed (with its group) on timeout."""
    started = time.monotonic()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=10)
        raise AssertionError(f"still running {timeout:.0f} s after the signal; killed") from None
    return code, time.monotonic() - started


def kill_group(process: subprocess.Popen) -> None:
    """Leave nothing behind: SIGKILL the process's group, if it still has one."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)


def create_store_sql(catalog_id: str, vendor: str, url: str) -> str:
    """Python for `manage.py shell -c` that creates a store of the sandbox's vendor at `url`."""
    return (
        "from stores.models import Store;"
        "from pos_sandbox import SANDBOX_CREDENTIALS as C;"
        f"Store.objects.create(name='{catalog_id}', catalog_id='{catalog_id}', pos_vendor='{vendor}',"
        f"pos_base_url='{url}', pos_credentials=dict(C['{vendor}']), sync_enabled=False)"
    )


def vendor_json(stored: str) -> Any:
    """A customer's `raw` column as read with SQL: the vendor JSON, encrypted at rest (customers.fields), in clear."""
    import json

    from customers import crypto
    from customers.fields import RAW_PURPOSE

    assert stored.startswith("cf1."), "the vendor JSON is stored encrypted"
    return json.loads(crypto.decrypt(stored, purpose=RAW_PURPOSE))
