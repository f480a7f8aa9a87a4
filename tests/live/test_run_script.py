"""`scripts/run` twice never breaks the first: the second refuses before changing anything and names what is in
the way; the demo's login and key keep working, and a later run prints the same ones. When one part of a run
stops, the run says which and stops the rest."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.live.conftest import ROOT, LiveRun, run_environment, wait_until

pytestmark = pytest.mark.slow


def check_ports_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_ports", ROOT / "scripts" / "check_ports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def second_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def logs_in(run: LiveRun, password: str) -> bool:
    """The admin's login form accepts the password (a real POST with its CSRF token)."""
    session = requests.Session()
    login = f"{run.web_url}/admin/login/"
    session.get(login, timeout=10)
    answer = session.post(
        login,
        data={
            "username": "admin",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        allow_redirects=False,
        timeout=10,
    )
    return answer.status_code == 302 and answer.headers["Location"] == "/admin/"


def key_works(run: LiveRun, key: str) -> bool:
    return requests.get(f"{run.web_url}/api/v1/syncs", headers={"X-API-Key": key}, timeout=10).status_code == 200


def test_a_second_run_on_the_same_database_refuses_and_changes_nothing(demo_run: LiveRun):
    key, password = demo_run.api_key, demo_run.password
    result = second_run(demo_run.env)
    assert result.returncode == 1
    assert f"another scripts/run (pid {demo_run.process.pid}) already serves this database" in result.stderr
    assert "Demo ready" not in result.stdout  # the demo did not run again
    demo_run.alive()
    assert key_works(demo_run, key)
    assert logs_in(demo_run, password)


def test_a_second_run_on_other_data_names_what_holds_its_ports(demo_run: LiveRun, tmp_path):
    database = tmp_path / "other.sqlite3"
    env = run_environment(tmp_path, database=database, web_port=demo_run.web_port, sandbox_port=demo_run.sandbox_port)
    result = second_run(env)
    assert result.returncode == 1
    assert "nothing was started or changed" in result.stderr
    assert f"port {demo_run.web_port} (the web server) is in use by pid" in result.stderr
    assert "manage.py runserver" in result.stderr
    assert f"port {demo_run.sandbox_port} (the POS sandbox) is in use by pid" in result.stderr
    assert "manage.py pos_sandbox" in result.stderr
    assert not database.exists()  # not even migrated
    demo_run.alive()
    assert key_works(demo_run, demo_run.api_key)


def test_when_a_part_stops_the_run_says_which_and_a_later_run_prints_the_same_login(
    start_run: Callable[..., LiveRun], tmp_path
):
    first = start_run()
    key, password = first.api_key, first.password
    holders = check_ports_module().holders(first.sandbox_port)
    assert len(holders) == 1, holders
    sandbox_pid = int(holders[0].split(":")[0].removeprefix("pid "))
    subprocess.run(["kill", str(sandbox_pid)], check=True)
    assert first.process.wait(timeout=60) == 1
    assert f"scripts/run: the POS sandbox (pid {sandbox_pid}) stopped" in first.log()
    assert "stopping the rest" in first.log()

    # Later, on the same database: the login and key printed the first time, still working.
    database = first.env["DATABASE_URL"].removeprefix("sqlite:///")
    again = start_run(database=Path(database))
    assert (again.api_key, again.password) == (key, password)
    assert "(unchanged)" in again.log()
    assert key_works(again, key)
    assert logs_in(again, password)


# scripts/run gives its parts 15 s to stop; qcluster takes at most 10 (syncs.cluster.STOP_SECONDS), the others
# less than one. The bound adds room for a busy 2-core machine.
RUN_STOP_BOUND = 20.0


def test_sigterm_stops_every_part_within_seconds_and_the_running_sync_is_recorded_interrupted(
    start_run: Callable[..., LiveRun],
):
    run = start_run()
    headers = {"X-API-Key": run.api_key}
    # Every POS answer takes 2 s: the full sync below is still running when the run is stopped.
    sandbox = f"http://127.0.0.1:{run.sandbox_port}/_control/faults"
    requests.post(sandbox, json={"spec": "slow=2s"}, timeout=10).raise_for_status()
    queued = requests.post(
        f"{run.web_url}/api/v1/syncs",
        json={"catalog_id": "greenleaf-berkeley", "kind": "full"},
        headers=headers,
        timeout=10,
    )
    assert queued.status_code == 202, queued.text
    sync_id = queued.json()["sync"]["id"]

    def running() -> bool:
        answer = requests.get(
            f"{run.web_url}/api/v1/syncs", params={"catalog_id": "greenleaf-berkeley"}, headers=headers, timeout=10
        )
        return answer.json()["syncs"][0]["last_sync"]["status"] == "in_progress"

    wait_until("the sync running", running, timeout=60, alive=run.alive)

    started = time.monotonic()
    os.kill(run.process.pid, signal.SIGTERM)  # the script alone, as `kill PID` or a supervisor sends it
    assert run.process.wait(timeout=RUN_STOP_BOUND + 10) == 143
    took = time.monotonic() - started
    assert took < RUN_STOP_BOUND, run.log()[-3000:]
    wait_until("every part gone", lambda: not group_alive(run.process.pid), timeout=5, alive=lambda: None)

    database = run.env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        status, error = conn.execute(
            "SELECT status, error_message FROM syncs_customersync WHERE id = ?", (sync_id,)
        ).fetchone()
    assert status == "interrupted", run.log()[-3000:]
    assert "SIGTERM" in error


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
