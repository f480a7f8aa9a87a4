"""`.env.example` documents every variable the settings read, and works as its header says: copied to `.env`,
the service answers on loopback without a warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"


def test_every_setting_variable_is_in_env_example():
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', settings_source))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", EXAMPLE.read_text(), re.MULTILINE))
    assert read, "no variables found in settings"
    assert read - documented == set()


class _DotEnv(environ.Env):
    """django-environ's reader of `.env`, filling a dict of its own instead of os.environ."""

    ENVIRON: dict[str, str] = {}


def example_environment() -> dict[str, str]:
    """The environment a process has when `.env` is the example: what django-environ reads from it (as the
    settings read `.env`), over the test run's environment without our own variables."""
    _DotEnv.ENVIRON = {}
    _DotEnv.read_env(str(EXAMPLE), overwrite=True)
    ours = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", EXAMPLE.read_text(), re.MULTILINE))
    base = {k: v for k, v in os.environ.items() if k not in ours}
    return {**base, **_DotEnv.ENVIRON}


def test_a_dotenv_copied_from_the_example_serves_loopback_with_no_warning(tmp_path):
    env = example_environment()
    assert env["DEBUG"] == "true"
    assert env["DATABASE_URL"].startswith("sqlite:///var/")
    script = (
        "import django, os, sys\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('check', fail_level='WARNING')\n"
        "from django.test import Client\n"
        "for host in ('127.0.0.1:8000', 'localhost:8000'):\n"
        "    status = Client(HTTP_HOST=host).get('/api/schema/').status_code\n"
        "    print(host, status)\n"
    )
    # From another directory: relative paths in the example must not depend on where a command runs.
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr
    assert "W003" not in result.stdout + result.stderr
    assert "127.0.0.1:8000 200" in result.stdout
    assert "localhost:8000 200" in result.stdout
