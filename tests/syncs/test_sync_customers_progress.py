"""`manage.py sync_customers` in a terminal: a progress bar with a total where the POS reports the listing's size,
a count with its rate where it does not, and the sync's log lines on lines of their own above the bar."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)

LOG_LINE = re.compile(r"INFO syncs\.engine sync \d+ store=\S+ vendor=\w+ kind=full trigger=manual started")


@contextlib.contextmanager
def terminal() -> Iterator[io.StringIO]:
    """stderr as one stream shared by the bar and the log handler, as a terminal is. (Inside the test itself:
    pytest puts its own sys.stderr back when a test's call begins.)"""
    screen = io.StringIO()
    handler = logging.StreamHandler(screen)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    previous_level, previous_stderr = root.level, sys.stderr
    sys.stderr = screen  # the command's stderr, and what makes the handler a console handler
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield screen
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        sys.stderr = previous_stderr


def run(catalog_id: str) -> None:
    call_command("sync_customers", "--store", catalog_id, "--full", stdout=io.StringIO())


def assert_log_lines_stand_alone(screen: str) -> None:
    starts = [m.start() for m in LOG_LINE.finditer(screen)]
    assert starts, screen[-2000:]
    for start in starts:
        line_start = max(screen.rfind("\n", 0, start), screen.rfind("\r", 0, start))
        before = screen[line_start + 1 : start]
        # The log line begins a line (its timestamp first), not after the bar's text.
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", before), repr(
            screen[max(0, start - 120) : start + 40]
        )


def test_a_pos_that_reports_its_total_gets_a_bar_to_it(sandbox_store):
    _, store = sandbox_store("flowhub", customers=1200)
    with terminal() as out:
        run(store.catalog_id)
    screen = out.getvalue()
    assert "1200/1200" in screen
    assert "100%" in screen
    assert_log_lines_stand_alone(screen)


def test_a_pos_without_a_total_gets_a_count_and_its_rate(sandbox_store):
    _, store = sandbox_store("treez", customers=120)
    with terminal() as out:
        run(store.catalog_id)
    screen = out.getvalue()
    assert re.search(r"120 customers \[[\d:]+, *[\d.]+ customers/s", screen), screen[-500:]
    assert "/120" not in screen
    assert_log_lines_stand_alone(screen)
