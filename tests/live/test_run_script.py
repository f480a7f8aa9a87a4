"""`scripts/run` twice never breaks the first: the second refuses before changing anything and names what is in
the way; the demo's login and key keep working, and a later run prints the same ones. When one part of a run
stops, the run says which and stops the rest."""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.live.conftest import ROOT, LiveRun, run_environment

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
