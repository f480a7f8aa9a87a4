"""Fixtures for the sync engine: an in-memory POS that honours the client contract, and helpers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pos_integrations.errors import PosError
from pos_integrations.records import CustomerPage, CustomerRecord, RecordError
from stores.models import Store
from tests.factories import BASE_TIME, make_record
from tests.syncs import processes

__all__ = ["BASE_TIME", "FakePos", "make_record"]


class FakePos:
    """A POS holding records in memory, listed oldest-modified first in pages, with faults on demand.

    `faults` maps a fetch number (1-based, counting every page request) to an exception to raise
    instead of answering. `after_page` hooks run after a page is handed out (to change data mid-sync).
    `strict_since` makes modified-since exclusive (`>`), as some vendors do.
    """

    def __init__(self, records: list[CustomerRecord] | None = None, *, page_size: int = 10) -> None:
        self.records: dict[str, CustomerRecord] = {r.customer_id: r for r in records or []}
        self.page_size = page_size
        self.overlap = timedelta(seconds=60)
        self.strict_since = False
        self.order = "updated"  # or "id": a stable order that modifications do not change
        self._version = 0
        self._listing_key: tuple[Any, ...] | None = None
        self._listing: list[CustomerRecord] = []
        self.clock_offset = timedelta(0)  # the POS clock minus ours
        self.faults: dict[int, PosError] = {}
        self.bad_records: dict[int, list[RecordError]] = {}  # page number -> errors added to it
        self.after_page: dict[int, Callable[[FakePos], None]] = {}
        self.fetches: list[dict[str, Any]] = []  # every page request: {"page", "since"}
        self.lookups: list[str] = []
        self.sleeps: list[float] = []
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)

    # --- data changes, timestamped by the POS clock ------------------------------------------
    def pos_now(self) -> datetime:
        return self.now() + self.clock_offset

    def modify(self, customer_id: str, **changes: Any) -> CustomerRecord:
        record = dataclasses.replace(self.records[customer_id], pos_updated_at=self.pos_now(), **changes)
        self.records[customer_id] = record
        self._version += 1
        return record

    def add(self, record: CustomerRecord) -> None:
        self.records[record.customer_id] = record
        self._version += 1

    def delete(self, customer_id: str) -> None:
        del self.records[customer_id]
        self._version += 1

    # --- the client contract -----------------------------------------------------------------
    def client(self, **kwargs: Any) -> FakeClient:
        return FakeClient(self, sleep=kwargs.get("sleep"))

    def listing(self, since: datetime | None) -> list[CustomerRecord]:
        # Cached while the data is unchanged, so the fake's own memory stays out of the engine's measurements.
        key = (id(self.records), len(self.records), self.order, self._version)
        if self._listing_key != key:
            if self.order == "id":
                self._listing = sorted(self.records.values(), key=lambda r: r.customer_id)
            else:
                self._listing = sorted(self.records.values(), key=lambda r: (r.pos_updated_at, r.customer_id))
            self._listing_key = key
        rows = self._listing
        if since is None:
            return rows
        if self.strict_since:
            return [r for r in rows if r.pos_updated_at > since]
        return [r for r in rows if r.pos_updated_at >= since]


class FakeClient:
    def __init__(self, pos: FakePos, *, sleep: Callable[[float], None] | None) -> None:
        self.pos = pos
        self.overlap = pos.overlap
        self.sleep = sleep

    def iter_customers(
        self, modified_since: datetime | None = None, *, start: dict[str, Any] | None = None
    ) -> Iterator[CustomerPage]:
        if start is not None:
            position = dict(start)
            if position.get("done"):
                return
        else:
            position = {"page": 1, "since": modified_since.isoformat() if modified_since else None}
        while True:
            self.pos.fetches.append(dict(position))
            fault = self.pos.faults.pop(len(self.pos.fetches), None)
            if fault is not None:
                raise fault
            since = datetime.fromisoformat(position["since"]) if position["since"] else None
            rows = self.pos.listing(since)
            page = position["page"]
            chunk = rows[(page - 1) * self.pos.page_size : page * self.pos.page_size]
            done = page * self.pos.page_size >= len(rows)
            after = {**position, "page": page + 1} if not done else {**position, "done": True}
            errors = list(self.pos.bad_records.get(page, []))
            yield CustomerPage(records=list(chunk), errors=errors, position=after)
            hook = self.pos.after_page.pop(page, None)
            if hook is not None:
                hook(self.pos)
            if done:
                return
            position = after

    def get_customer(self, customer_id: str) -> CustomerRecord | None:
        self.pos.lookups.append(customer_id)
        return self.pos.records.get(customer_id)


@pytest.fixture
def fake_pos(monkeypatch: pytest.MonkeyPatch) -> FakePos:
    """An in-memory POS every store's `pos_client()` talks to; starts with 25 customers."""
    pos = FakePos([make_record(i) for i in range(25)])
    monkeypatch.setattr(Store, "pos_client", lambda self, **kwargs: pos.client(**kwargs))
    return pos


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The engine's waits are recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("syncs.engine._sleep", waits.append)
    return waits


@pytest.fixture
def sentry_events() -> Iterator[list[dict[str, Any]]]:
    """Sentry initialised as settings.py does, with events collected here instead of sent."""
    import sentry_sdk

    from config.sentry import scrub_event

    events: list[dict[str, Any]] = []

    def keep(event: dict[str, Any], hint: dict[str, Any]) -> None:
        events.append(scrub_event(event, hint))  # type: ignore[arg-type]
        return None

    sentry_sdk.init(dsn="https://public@sentry.invalid/1", before_send=keep, include_local_variables=False)
    yield events
    sentry_sdk.init(dsn=None)


@pytest.fixture
def sandbox_store() -> Iterator[Callable[..., tuple[Any, Store]]]:
    """Start the POS sandbox (real HTTP on a free loopback port) and make a store of one vendor on it."""
    from pos_sandbox import SANDBOX_CREDENTIALS, SandboxServer

    servers: list[Any] = []

    def start(vendor: str = "treez", *, customers: int = 1000, seed: int = 1, faults: str | None = None):
        server = SandboxServer(port=0, customers=customers, seed=seed, faults=faults).start()
        servers.append(server)
        store = Store.objects.create(
            name=f"Sandbox {vendor}",
            catalog_id=f"sandbox-{vendor}-{len(servers)}",
            pos_vendor=vendor,
            pos_base_url=server.vendor_url(vendor),
            pos_credentials=dict(SANDBOX_CREDENTIALS[vendor]),
        )
        return server, store

    yield start
    for server in servers:
        server.stop()


# A full sync of the store `crash`, as an operator runs it.
CRASH_SYNC = ("sync_customers", "--store", "crash", "--full", "--no-progress")


@dataclasses.dataclass
class ProcessSyncs:
    """Syncs run as `manage.py` processes (to be killed, then run again) of the store `crash` on a sandbox's
    LeafLogix, in a database of their own that this test reads with SQL; the sync lease is 1 s."""

    server: Any
    url: str
    env: dict[str, str]
    started: list[subprocess.Popen] = dataclasses.field(default_factory=list)

    def start(self) -> subprocess.Popen:
        """A full sync in a process of its own (to be killed), its output discarded."""
        process = processes.start_manage(self.env, *CRASH_SYNC)
        self.started.append(process)
        return process

    def killed_sync_pages(self) -> int:
        """The pages the killed sync had committed; it is still in progress (until its lease runs out)."""
        [(status, committed)] = processes.rows(self.url, "SELECT status, pages FROM syncs_customersync")
        assert status == "in_progress"
        return committed

    def resume_after_the_lease(self) -> None:
        """Past the killed sync's lease, a full sync finds it abandoned, resumes from its checkpoint, finishes."""
        time.sleep(1.1)
        second = processes.manage(self.env, *CRASH_SYNC)
        assert second.returncode == 0, second.stdout + second.stderr
        syncs = processes.rows(
            self.url, "SELECT id, status, error_type, resumed_from_id FROM syncs_customersync ORDER BY id"
        )
        assert [s[1:3] for s in syncs] == [("failed", "Abandoned"), ("finished", "")]
        assert syncs[1][3] == syncs[0][0]  # resumed from the dead one's checkpoint

    def assert_mirror_equals_pos(self, count: int) -> None:
        """The mirror holds each of the POS's `count` customers once, with exactly the POS's vendor JSON."""
        stored = processes.rows(self.url, "SELECT customer_id, raw FROM customers_customer")
        mirror = {cid: processes.vendor_json(raw) for cid, raw in stored}
        assert len(mirror) == len(stored) == count  # nothing duplicated
        for raw in self.server.vendor_records("leaflogix"):
            assert mirror.pop(str(raw["customerId"])) == raw  # nothing lost, nothing stale
        assert not mirror


@pytest.fixture
def process_syncs(tmp_path: Path) -> Iterator[Callable[..., ProcessSyncs]]:
    """Make ProcessSyncs on a sandbox server, with SYNC_PAGES_IN_FLIGHT pages in flight: the database migrated
    and the store created by `manage.py` processes; at the end, what is left running killed, the database
    dropped."""
    made: list[ProcessSyncs] = []
    url, drop = processes.database_for_subprocesses(tmp_path)

    def make(server: Any, *, pages_in_flight: int) -> ProcessSyncs:
        assert not made, "one database a test"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SYNC_LEASE_SECONDS": "1",
            "LOG_LEVEL": "WARNING",
            "SYNC_PAGES_IN_FLIGHT": str(pages_in_flight),
        }
        assert processes.manage(env, "migrate", "--no-input").returncode == 0
        store = processes.create_store_sql("crash", "leaflogix", server.vendor_url("leaflogix"))
        created = processes.manage(env, "shell", "-c", store)
        assert created.returncode == 0, created.stderr
        made.append(ProcessSyncs(server=server, url=url, env=env))
        return made[0]

    try:
        yield make
    finally:
        for syncs in made:
            for process in syncs.started:
                processes.kill_group(process)
                process.wait(timeout=10)
        if drop is not None:
            drop()
