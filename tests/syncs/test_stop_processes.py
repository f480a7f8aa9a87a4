"""Real processes stopped as a deploy, Ctrl-C or systemd stops them (SIGTERM or SIGINT to the process group, or
SIGTERM to the main process as scripts/run sends it), against the POS sandbox on loopback: the running sync is
recorded `interrupted` with its checkpoint within seconds, the store is free at once (the lease is left at its
600 s), and the next sync, whatever its kind, carries on from there. `qcluster` exits within STOP_BOUND."""

from __future__ import annotations

import json
import os
import signal
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from syncs.cluster import STOP_SECONDS
from tests.syncs.processes import (
    create_store_sql,
    database_for_subprocesses,
    kill_group,
    manage,
    rows,
    start_manage,
    vendor_json,
    wait_exit,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# How long a stopped process may take to exit, measured from the signal: qcluster's own bound (STOP_SECONDS,
# 10 s) plus room for a busy 2-core machine. A sync_customers run exits in well under a second.
STOP_BOUND = STOP_SECONDS + 5
CUSTOMERS = 3000  # LeafLogix pages of 100: 30 pages


@pytest.fixture
def world(tmp_path):
    """The sandbox (in this process, on loopback), a database of its own for the subprocesses, and their env."""
    from pos_sandbox import SandboxServer

    server = SandboxServer(port=0, customers=CUSTOMERS, seed=7, faults="slow=60ms").start()
    url, drop = database_for_subprocesses(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LOG_LEVEL": "INFO",
        "QUEUE_CACHE_DIR": str(tmp_path / "queue-cache"),
        "Q_WORKERS": "2",
    }
    env.pop("SYNC_LEASE_SECONDS", None)  # the default 600 s: nothing here may wait for it
    assert manage(env, "migrate", "--no-input").returncode == 0
    try:
        yield server, url, env
    finally:
        server.stop()
        if drop is not None:
            drop()


class PageSpy:
    """Records the listing pages asked for, and calls `on_page(page)` as each is asked for."""

    def __init__(self, server) -> None:
        self.pages: list[int] = []
        self.on_page = lambda page: None
        self._dispatch = server.app.dispatch
        server.app.dispatch = self

    def __call__(self, method, target, headers, body):
        if "customers-paginated" in target:
            page = int(parse_qs(urlsplit(target).query)["PageNumber"][0])
            self.pages.append(page)
            self.on_page(page)
        return self._dispatch(method, target, headers, body)


def syncs(url: str) -> list[dict]:
    columns = ["id", "store", "status", "kind", "error_type", "error_message", "pages", "checkpoint", "resumed_from"]
    found = rows(
        url,
        "SELECT s.id, st.catalog_id, s.status, s.kind, s.error_type, s.error_message, s.pages, s.checkpoint,"
        " s.resumed_from_id FROM syncs_customersync s JOIN stores_store st ON st.id = s.store_id ORDER BY s.id",
    )
    out = [dict(zip(columns, row, strict=True)) for row in found]
    for sync in out:
        if isinstance(sync["checkpoint"], str):
            sync["checkpoint"] = json.loads(sync["checkpoint"])
    return out


def mirror_equals_pos(server, url: str, catalog_id: str) -> None:
    stored = rows(
        url,
        "SELECT c.customer_id, c.raw FROM customers_customer c JOIN stores_store st ON st.id = c.store_id"
        f" WHERE st.catalog_id = '{catalog_id}'",
    )
    mirror = {cid: vendor_json(raw) for cid, raw in stored}
    assert len(mirror) == len(stored) == CUSTOMERS  # nothing duplicated
    for raw in server.vendor_records("leaflogix"):
        assert mirror.pop(str(raw["customerId"])) == raw  # nothing lost, nothing stale
    assert not mirror


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sync_customers_stopped_by_a_signal_to_its_group_records_interrupted_and_the_next_sync_resumes_at_once(
    world, tmp_path, signum, code
):
    server, url, env = world
    assert (
        manage(env, "shell", "-c", create_store_sql("stop", "leaflogix", server.vendor_url("leaflogix"))).returncode
        == 0
    )
    spy = PageSpy(server)
    process: dict[str, object] = {}

    def on_page(page: int) -> None:
        if page == 6 and "sent" not in process:
            process["sent"] = True
            # While the sandbox takes its 60 ms over page 6: pages 1-5 are committed.
            threading.Timer(0.01, os.killpg, (process["pid"], signum)).start()

    spy.on_page = on_page
    first = start_manage(
        env, "sync_customers", "--store", "stop", "--full", "--no-progress", log=tmp_path / "first.log"
    )
    process["pid"] = first.pid
    try:
        returncode, _ = wait_exit(first, timeout=60)
    finally:
        kill_group(first)
    log = (tmp_path / "first.log").read_text()
    assert returncode == code, log
    assert f"Stopped by {signal.Signals(signum).name}" in log

    [stopped] = syncs(url)
    assert (stopped["status"], stopped["error_type"]) == ("interrupted", "Interrupted"), log
    assert stopped["pages"] == 5
    assert stopped["checkpoint"]["position"]["page"] == 6
    fetched_first = list(spy.pages)
    spy.pages.clear()

    # At once (the lease is 600 s), and an incremental: it finishes the interrupted full sync from page 6.
    second = manage(env, "sync_customers", "--store", "stop", "--no-progress")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"(carried on from sync #{stopped['id']})" in second.stdout

    _, resumed = syncs(url)
    assert (resumed["status"], resumed["kind"], resumed["resumed_from"]) == ("finished", "full", stopped["id"])
    assert spy.pages[0] == 6
    assert len(set(fetched_first) & set(spy.pages)) <= 1  # at most the page in flight is fetched twice
    mirror_equals_pos(server, url, "stop")


def test_qcluster_stops_within_seconds_on_sigterm_with_syncs_running_and_queued(world, tmp_path):
    server, url, env = world
    shell = ";".join(
        [
            *(create_store_sql(f"q{i}", "leaflogix", server.vendor_url("leaflogix")) for i in range(3)),
            "from stores.models import Store",
            "from syncs.services import sync_trigger",
            "[sync_trigger(store=s, kind='full', trigger='manual') for s in Store.objects.order_by('pk')]",
        ]
    )
    assert manage(env, "shell", "-c", shell).returncode == 0
    spy = PageSpy(server)

    def running_with_pages(minimum: int) -> list[dict]:
        active = [s for s in syncs(url) if s["status"] == "in_progress" and s["pages"] >= minimum]
        return active

    # 1. Two workers run two syncs, the third waits in the queue; SIGTERM to the process group, as systemd sends.
    cluster = start_manage(env, "qcluster", log=tmp_path / "qcluster-1.log")
    try:
        wait_for(
            "two syncs running with 3 pages each", lambda: len(running_with_pages(3)) == 2, timeout=90, alive=cluster
        )
        os.killpg(cluster.pid, signal.SIGTERM)
        returncode, took = wait_exit(cluster, timeout=STOP_BOUND)
    finally:
        kill_group(cluster)
    log = (tmp_path / "qcluster-1.log").read_text()
    assert returncode == 0, log
    assert took < STOP_BOUND
    first, second, queued = syncs(url)
    for sync in (first, second):
        assert (sync["status"], sync["error_type"]) == ("interrupted", "Interrupted"), log
        assert "SIGTERM" in sync["error_message"]
        assert sync["pages"] >= 3
        assert sync["checkpoint"]["position"]["page"] == sync["pages"] + 1
    assert queued["status"] == "pending"
    # The queued sync's task went back to the queue, ready now rather than after the broker's retry delay;
    # the interrupted tasks' results were saved.
    # "Now" with a few seconds' margin: a task handed back is locked until the moment it was handed back, which on
    # SQLite (text with microseconds) compared greater than CURRENT_TIMESTAMP (whole seconds) within that second.
    # The broker's retry delay, for a task not handed back, is far longer.
    soon = "datetime('now', '+5 seconds')" if url.startswith("sqlite") else "CURRENT_TIMESTAMP + interval '5 seconds'"
    [(ready,)] = rows(url, f"SELECT COUNT(*) FROM django_q_ormq WHERE lock <= {soon}")
    [(held,)] = rows(url, f"SELECT COUNT(*) FROM django_q_ormq WHERE lock > {soon}")
    assert (ready, held) == (1, 0), log
    results = rows(url, "SELECT name, success FROM django_q_task ORDER BY name")
    assert results == [(f"customer-sync-{first['id']}", True), (f"customer-sync-{second['id']}", True)]

    # 2. The next start runs the queued sync; SIGTERM to the main process only, as scripts/run sends it.
    cluster = start_manage(env, "qcluster", log=tmp_path / "qcluster-2.log")
    try:
        wait_for("the queued sync running", lambda: running_with_pages(2), timeout=90, alive=cluster)
        os.kill(cluster.pid, signal.SIGTERM)
        returncode, took = wait_exit(cluster, timeout=STOP_BOUND)
    finally:
        kill_group(cluster)
    log = (tmp_path / "qcluster-2.log").read_text()
    assert returncode == 0, log
    assert took < STOP_BOUND
    *_, third = syncs(url)
    assert (third["id"], third["status"]) == (queued["id"], "interrupted"), log
    assert third["checkpoint"]["position"]["page"] == third["pages"] + 1

    # 3. Each store's next sync (a scheduled incremental, say) starts at once and finishes the full sync.
    for catalog_id, stopped in zip(["q0", "q1", "q2"], [first, second, third], strict=True):
        spy.pages.clear()
        done = manage(env, "sync_customers", "--store", catalog_id, "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr
        last = syncs(url)[-1]
        assert (last["status"], last["kind"], last["resumed_from"]) == ("finished", "full", stopped["id"])
        assert spy.pages[0] == stopped["pages"] + 1
        mirror_equals_pos(server, url, catalog_id)
