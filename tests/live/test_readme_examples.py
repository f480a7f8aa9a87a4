"""The README's curl examples run as printed against `scripts/run` (only the port differs: the test's own), and
answer what the README shows: the same keys and values, except ids, times and counts, which vary by run."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from tests.live.conftest import ROOT, LiveRun

pytestmark = pytest.mark.slow

README_URL = "http://127.0.0.1:8000"
# Values that differ from run to run: compared by type only (a string where the README shows a string...).
VOLATILE = {
    "id",
    "customer_id",
    "next",
    "trigger",
    "created_at",
    "started_at",
    "finished_at",
    "last_finished_at",
    "synced_at",
    "pos_created_at",
    "pos_updated_at",
    "duration_seconds",
    "fetched",
    "created",
    "updated",
    "unchanged",
    "invalid",
    "deactivated",
}
ANY = "..."  # a value the README elides; as a key ("...": "..."): the object has more keys than shown


@dataclass
class Example:
    command: str
    expected: str
    line: int


def readme_examples() -> list[Example]:
    """Each `$ curl` of the README's console blocks, with the answer shown after it in the block or, when the
    block has none, in the JSON block right after."""
    text = (ROOT / "README.md").read_text()
    blocks = [
        (m.group(1), m.group(2), text[: m.start()].count("\n") + 1)
        for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)
    ]
    examples = []
    for index, (kind, body, line) in enumerate(blocks):
        if kind != "console":
            continue
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command = lines[i][2:]
            i += 1
            # A command goes on after a trailing backslash, or while a quote is open (a multi-line -d '...').
            while i < len(lines) and (command.endswith("\\") or command.count("'") % 2):
                command += "\n" + lines[i]
                i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            if not command.startswith("curl "):
                continue
            answer = "\n".join(output).strip()
            if not answer and index + 1 < len(blocks) and blocks[index + 1][0] == "json":
                answer = blocks[index + 1][1].strip()
            examples.append(Example(command, answer, line))
    return examples


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` differs from what the README shows."""
    key = path.rsplit(".", 1)[-1].split("[")[0]
    if expected == ANY:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or 'answer'}: expected an object, got {actual!r}"]
        out = []
        shown = {k for k in expected if k != ANY}
        if ANY not in expected and set(actual) != shown:
            out.append(f"{path or 'answer'}: keys {sorted(actual)} instead of {sorted(shown)}")
        for name in shown:
            if name not in actual:
                out.append(f"{path}.{name}: missing")
            else:
                out.extend(differences(expected[name], actual[name], f"{path}.{name}"))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} item(s), got {actual!r}"[:300]]
        return [
            d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in differences(e, a, f"{path}[{i}]")
        ]
    if key in VOLATILE:
        same_type = type(expected) is type(actual) or {type(expected), type(actual)} <= {int, float}
        return [] if same_type else [f"{path}: {actual!r} is not like {expected!r}"]
    return [] if expected == actual else [f"{path}: {actual!r} instead of {expected!r}"]


def test_the_readme_has_curl_examples_with_answers():
    examples = readme_examples()
    assert len(examples) >= 10
    for example in examples:
        assert example.expected, f"README line {example.line}: `{example.command[:60]}` shows no answer"
        json.loads(example.expected)


def test_the_readme_examples_work_verbatim_on_the_demo(demo_run: LiveRun):
    problems = []
    for example in readme_examples():
        command = example.command.replace(README_URL, demo_run.web_url)
        assert command != example.command, f"README line {example.line}: not against {README_URL}"
        result = subprocess.run(
            ["bash", "-c", command],
            env={"PATH": "/usr/bin:/bin", "KEY": demo_run.api_key},
            capture_output=True,
            text=True,
            timeout=60,
        )
        where = f"README line {example.line} `{example.command.splitlines()[0][:70]}`"
        if result.returncode != 0:
            problems.append(f"{where}: curl exited {result.returncode}: {result.stderr}")
            continue
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            problems.append(f"{where}: not JSON: {result.stdout[:300]!r}")
            continue
        problems.extend(f"{where}: {d}" for d in differences(json.loads(example.expected), answer))
    assert not problems, "\n".join(problems)
