"""The sandbox as people start it (`manage.py pos_sandbox`, `python -m pos_sandbox`), and what it imports."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "manage.py": [sys.executable, "manage.py", "pos_sandbox"],
    "python -m": [sys.executable, "-m", "pos_sandbox"],
}


def _read_until(proc: subprocess.Popen[str], marker: str, seconds: float = 60) -> list[str]:
    """The lines the process prints up to and including `marker`, within a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
            if line.startswith(marker):
                return
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith(marker):
            return seen
    raise AssertionError(f"no {marker!r} within {seconds}s; got {seen}")


@pytest.mark.parametrize("how", sorted(COMMANDS))
def test_serves_every_vendor_until_ctrl_c(how: str) -> None:
    proc = subprocess.Popen(
        [*COMMANDS[how], "--port", "0", "--customers", "50", "--seed", "3", "--faults", "treez:5xx=1"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _read_until(proc, "Ctrl-C to stop.")
        assert lines[0] == "POS sandbox: 50 customers per vendor, seed 3"
        urls = {line.split()[0]: line.split()[1] for line in lines[1:-1]}
        assert set(urls) == {"leaflogix", "treez", "flowhub", "covasoft", "blaze", "control", "faults"}
        assert "(api_key=sandbox-leaflogix-key)" in lines[1]
        state = requests.get(urls["control"], timeout=10).json()
        assert (state["seed"], state["customers_per_vendor"]) == (3, 50)
        assert state["faults"]["effective"]["treez"]["rate_5xx"] == 1.0
        who = requests.get(f"{urls['leaflogix']}/whoami", auth=("sandbox-leaflogix-key", ""), timeout=10)
        assert who.status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "Stopping." in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--customers", "-1"], "--customers must be between 0 and 5,000,000"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--faults", "square:5xx=0.1"], "--faults: unknown vendor 'square'"),
        (["--faults", "5xx=lots"], "--faults: 5xx: 'lots' is not a rate"),
    ],
)
def test_bad_flags_are_refused_before_serving(flags: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("pos_sandbox", *flags)
    done = subprocess.run(
        [*COMMANDS["python -m"], *flags], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert message in done.stderr


def test_a_port_in_use_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"cannot listen on 127.0.0.1:{port}"):
            call_command("pos_sandbox", "--port", str(port), "--customers", "1")


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_sandbox_imports_neither_the_clients_nor_django() -> None:
    # An oracle for the clients must not share their code; `python -m pos_sandbox` needs no Django.
    every_module = (
        "import pkgutil, importlib, pos_sandbox\n"
        "for m in pkgutil.walk_packages(pos_sandbox.__path__, 'pos_sandbox.'):\n"
        "    if '.management' not in m.name and m.name != 'pos_sandbox.apps':\n"
        "        importlib.import_module(m.name)"
    )
    loaded = _loaded_after(every_module)
    assert {"pos_sandbox.server", "pos_sandbox.vendors.treez", "pos_sandbox.cli"} <= loaded
    assert not {m for m in loaded if m.split(".")[0] in ("pos_integrations", "django")}


def test_production_processes_do_not_load_the_sandbox() -> None:
    # Django imports the package for its command; nothing of the sandbox itself may come with it.
    serving = "import django; django.setup()\nimport config.urls, config.wsgi"
    loaded = {m for m in _loaded_after(serving) if m.startswith("pos_sandbox")}
    assert loaded == {"pos_sandbox", "pos_sandbox.apps"}
