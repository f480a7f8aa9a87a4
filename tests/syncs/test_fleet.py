"""Three `manage.py qcluster` processes on one Redis broker and one database, for real: every store's schedule fired
three times per slot, one store's tasks lost as a dying worker loses them, one whole cluster killed mid-run. Each
store gets exactly one run per slot. Runs on scripts/test's Redis pass (REDIS_URL set)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_q.signing import SignedPackage

from tests.syncs.processes import ROOT, database_for_subprocesses, manage, rows

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

VENDORS = ["treez", "leaflogix", "flowhub", "blaze"]
CUSTOMERS = 200
LOST = "fleet-blaze"  # the store whose first run's tasks all die with a worker
INTERVAL = timedelta(minutes=5)
QUEUE = "django_q:customer_sync:q"


def wait_until(what: str, check: Callable[[], Any], *, timeout: float = 60, hold: float = 0) -> Any:
    """Poll `check` until it has been truthy for `hold` seconds on end; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    since = None
    while True:
        result = check()
        now = time.monotonic()
        if not result:
            since = None
        elif since is None:
            since = now
        if result and now - since >= hold:
            return result
        if now > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def fleet_redis() -> Iterator[Any]:
    """A Redis database of the fleet's own on the pass's server (the test process's cache uses database 0)."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: runs on scripts/test's Redis pass (scripts/with-redis.sh sets REDIS_URL)")
    import redis

    url = settings.REDIS_URL.rsplit("/", 1)[0] + "/3"
    client = redis.from_url(url)
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


@pytest.fixture
def fleet(tmp_path: Path, fleet_redis: tuple[str, Any]) -> Iterator[dict[str, Any]]:
    """A database and a Redis of their own, four stores on a slow POS sandbox; the clusters started are killed."""
    from pos_sandbox import SANDBOX_CREDENTIALS, SandboxServer

    server = SandboxServer(port=0, customers=CUSTOMERS, seed=7, faults="slow=40ms").start()
    url, drop = database_for_subprocesses(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": fleet_redis[0],
        "Q_WORKERS": "2",
        "SYNC_LEASE_SECONDS": "3",  # a killed cluster's syncs are abandoned, and reaped, quickly
        "LOG_LEVEL": "INFO",
        # The test fires the schedules itself, as several clusters' schedulers would (`fire`), at the moments
        # it chooses; the clusters' own schedulers (every 30 s) would fire slot B in the middle of slot A's checks.
        "Q_SCHEDULER": "false",
    }
    clusters: list[subprocess.Popen[bytes]] = []
    try:
        migrated = manage(env, "migrate", "--no-input")
        assert migrated.returncode == 0, migrated.stderr
        stores = repr([(f"fleet-{v}", v, server.vendor_url(v), dict(SANDBOX_CREDENTIALS[v])) for v in VENDORS])
        setup = (
            "from stores.models import Store\n"
            f"for catalog_id, vendor, base_url, credentials in {stores}:\n"
            "    Store.objects.create(name=catalog_id, catalog_id=catalog_id, pos_vendor=vendor, pos_base_url=base_url,"
            " pos_credentials=credentials, sync_interval_minutes=5).schedule_customer_sync()\n"
        )
        created = manage(env, "shell", "-c", setup)
        assert created.returncode == 0, created.stderr
        yield {"env": env, "url": url, "redis": fleet_redis[1], "tmp": tmp_path, "clusters": clusters}
    finally:
        for cluster in clusters:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait(timeout=10)
        server.stop()
        if drop is not None:
            drop()


def start_cluster(fleet: dict[str, Any], n: int) -> subprocess.Popen[bytes]:
    log = (fleet["tmp"] / f"qcluster-{n}.log").open("ab")
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        env=fleet["env"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the cluster and its worker processes die together, as a machine does
    )
    fleet["clusters"].append(cluster)
    return cluster


def fire(fleet: dict[str, Any], due: datetime, *, copies: int = 3) -> None:
    """Every store's schedule due at `due`, fired by django-q2's scheduler as `copies` clusters' schedulers that
    each fire it (the double fire the claims absorb): the task pushed `copies` times, all with the same due time."""
    script = (
        "import datetime\n"
        "from django_q.models import Schedule\n"
        "from django_q.scheduler import scheduler\n"
        "from stores.models import SYNC_TASK\n"
        f"due = datetime.datetime.fromisoformat({due.isoformat()!r})\n"
        f"for _ in range({copies}):\n"
        "    Schedule.objects.filter(func=SYNC_TASK).update(next_run=due)\n"
        "    scheduler()\n"
        f"Schedule.objects.filter(func=SYNC_TASK).update(next_run=due + datetime.timedelta(minutes=5))\n"
    )
    fired = manage(fleet["env"], "shell", "-c", script)
    assert fired.returncode == 0, fired.stderr


def drop_tasks_of(fleet: dict[str, Any], catalog_id: str) -> int:
    """Take every queued task off Redis and put back all but the store's: they died with the worker holding them."""
    store_id = rows(fleet["url"], f"SELECT id FROM stores_store WHERE catalog_id = '{catalog_id}'")[0][0]
    client = fleet["redis"]
    payloads = client.lrange(QUEUE, 0, -1)
    client.delete(QUEUE)
    kept = [p for p in payloads if SignedPackage.loads(p)["args"] != (store_id,)]
    if kept:
        client.rpush(QUEUE, *kept)
    return len(payloads) - len(kept)


def settled(fleet: dict[str, Any], *, stale: float = 2) -> bool:
    """Nothing queued and no sync alive: none pending, and none in progress with a heartbeat of the last `stale`
    seconds (a killed cluster's syncs stay in progress, their heartbeat gone stale). Callers wait for it to
    hold a while: a cluster takes tasks off Redis ahead of its busy workers, before they show as pending."""
    if fleet["redis"].llen(QUEUE):
        return False
    recent = (
        f"CURRENT_TIMESTAMP - interval '{stale} seconds'"
        if fleet["url"].startswith("postgres")
        else f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-{stale} seconds')"
    )
    sql = (
        "SELECT count(*) FROM syncs_customersync "
        f"WHERE status = 'pending' OR (status = 'in_progress' AND heartbeat_at > {recent})"
    )
    return rows(fleet["url"], sql)[0][0] == 0


def test_three_clusters_on_one_broker_give_exactly_one_run_per_store_per_slot(fleet):
    first = datetime.now(UTC) - INTERVAL - timedelta(seconds=1)  # slot A; slot B is the next interval's
    fire(fleet, first)
    assert drop_tasks_of(fleet, LOST) == 3

    clusters = [start_cluster(fleet, n) for n in range(3)]
    for n in range(3):
        wait_until(f"cluster {n}", lambda n=n: "running" in (fleet["tmp"] / f"qcluster-{n}.log").read_text())
    # One whole cluster dies while the others work through the slot's copies.
    wait_until("a sync in progress", lambda: rows(fleet["url"], "SELECT count(*) FROM syncs_customersync")[0][0])
    os.killpg(clusters[2].pid, signal.SIGKILL)
    wait_until("slot A done", lambda: settled(fleet), hold=1.5)

    store_ids = dict(rows(fleet["url"], "SELECT catalog_id, id FROM stores_store"))
    claimed = {row[0] for row in rows(fleet["url"], "SELECT store_id FROM syncs_scheduledslot")}
    unclaimed = {catalog_id for catalog_id, store_id in store_ids.items() if store_id not in claimed}
    assert LOST in unclaimed  # (a store whose three copies all died with the killed cluster would be too)
    # The catch-up, as three clusters' every-minute schedules run it at once, a grace after slot A was due.
    sweep = (
        "import datetime\n"
        "from syncs.slots import sync_catch_up_missed\n"
        f"print(len(sync_catch_up_missed(now=datetime.datetime.fromisoformat({first.isoformat()!r})"
        " + datetime.timedelta(seconds=61))))\n"
    )
    sweeps = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", sweep], env=fleet["env"], cwd=ROOT, stdout=subprocess.PIPE
        )
        for _ in range(3)
    ]
    caught_up = sorted(int(s.communicate(timeout=60)[0].split()[-1]) for s in sweeps)
    assert caught_up == [0, 0, len(unclaimed)]  # one sweep queued them, once; the others found them claimed
    # Done, and past the lease of the killed cluster's syncs (3 s since their last heartbeat).
    wait_until("the catch-up done", lambda: settled(fleet, stale=4), hold=1.5)

    fire(fleet, first + INTERVAL)  # slot B, fired three times as well
    wait_until("slot B done", lambda: settled(fleet), hold=1.5)

    slot_a, slot_b = (datetime.fromtimestamp(t.timestamp() // 300 * 300, tz=UTC) for t in (first, first + INTERVAL))
    claims = rows(
        fleet["url"],
        "SELECT s.catalog_id, c.slot_start, c.catch_up, c.sync_id FROM syncs_scheduledslot c "
        "JOIN stores_store s ON s.id = c.store_id ORDER BY s.catalog_id, c.slot_start",
    )
    normalized = [(store, _utc(slot), catch_up, sync) for store, slot, catch_up, sync in claims]
    assert [(store, slot, bool(catch_up)) for store, slot, catch_up, _ in normalized] == [
        (f"fleet-{v}", slot, f"fleet-{v}" in unclaimed and slot == slot_a)
        for v in sorted(VENDORS)
        for slot in (slot_a, slot_b)
    ]
    syncs = rows(
        fleet["url"],
        "SELECT s.catalog_id, c.id, c.status, c.error_type, c.trigger FROM syncs_customersync c "
        "JOIN stores_store s ON s.id = c.store_id ORDER BY c.id",
    )
    # Exactly one run per store per slot: the claims name distinct syncs, and there are no others.
    assert sorted(sync for *_, sync in normalized) == sorted(sync_id for _, sync_id, *_ in syncs)
    assert {trigger for *_, trigger in syncs} == {"schedule"}
    by_id = {sync_id: (status, error) for _, sync_id, status, error, _ in syncs}
    for _, slot, _, sync in normalized:
        # Slot A's run finished, or died with the killed cluster (abandoned, then resumed by slot B's run).
        expected = [("finished", "")] if slot == slot_b else [("finished", ""), ("failed", "Abandoned")]
        assert by_id[sync] in expected
    # The copies were delivered and skipped: slot B's twelve tasks (on the two clusters left) made four runs.
    logs = "".join((fleet["tmp"] / f"qcluster-{n}.log").read_text() for n in range(3))
    assert logs.count("already claimed (fired or delivered twice); skipped") >= 8
    counts = rows(
        fleet["url"],
        "SELECT s.catalog_id, count(*) FROM customers_customer c JOIN stores_store s ON s.id = c.store_id "
        "GROUP BY s.catalog_id ORDER BY s.catalog_id",
    )
    assert counts == [(f"fleet-{v}", CUSTOMERS) for v in sorted(VENDORS)]


def _utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
