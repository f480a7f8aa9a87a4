"""Fixtures for the admin tests: fake sync services, and a headless Chromium that screenshots failures."""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stores.models import Store
from syncs.models import CustomerSync, SyncStatus

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class FakeSyncServices:
    """Stands in for syncs.services: records calls and creates pending syncs like the real ones."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def sync_trigger(
        self, *, store: Store, kind: str = "incremental", trigger: str = "admin"
    ) -> tuple[CustomerSync, bool]:
        self.calls.append(("sync_trigger", {"store": store, "kind": kind, "trigger": trigger}))
        running = CustomerSync.objects.running().filter(store=store).first()
        if running:
            return running, False
        return CustomerSync.objects.create(store=store, kind=kind, trigger=trigger, status=SyncStatus.PENDING), True

    def sync_retry(self, *, sync: CustomerSync) -> tuple[CustomerSync, bool]:
        self.calls.append(("sync_retry", {"sync": sync}))
        return self.sync_trigger(store=sync.store, kind=sync.kind, trigger="admin")


@pytest.fixture
def sync_services(monkeypatch: pytest.MonkeyPatch) -> FakeSyncServices:
    """Patch syncs.services (or stand one in while the sync engine is not there yet)."""
    fake = FakeSyncServices()
    try:
        module = importlib.import_module("syncs.services")
    except ImportError:
        module = types.ModuleType("syncs.services")
        monkeypatch.setitem(sys.modules, "syncs.services", module)
    monkeypatch.setattr(module, "sync_trigger", fake.sync_trigger, raising=False)
    monkeypatch.setattr(module, "sync_retry", fake.sync_retry, raising=False)
    return fake


# --- browser ------------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per module: launching it is the slow part."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/install-browser.sh installs it)")
    # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse ORM
    # calls from the test ("async context"); the test itself is plain synchronous code, so allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context per test; a full-page screenshot lands in test-artifacts/ when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def count_queries(django_assert_max_num_queries: Any) -> Any:
    """Queries one GET of `url` takes once warm (caches such as content types filled), checking it answers 200."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(client: Any, url: str) -> int:
        assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        return len(ctx)

    return count


@pytest.fixture(autouse=True)
def fast_password_hasher(settings: Any) -> None:
    """Every admin test logs a user in; the production hasher's deliberate slowness only costs time here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
