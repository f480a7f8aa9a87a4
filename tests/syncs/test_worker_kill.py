"""A worker process killed (SIGKILL, as the OOM killer or `kill -9` does) while it waits for a task does not
stall its cluster: the worker is replaced and the cluster goes on taking tasks. (multiprocessing's Queue.get holds
the queue's read lock while it waits, so a dead idle worker used to keep it, and every worker of the cluster
waited behind it forever: syncs.cluster releases it.)"""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.syncs.processes import database_for_subprocesses, kill_group, manage, rows, start_manage, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_workers_killed_while_waiting_for_a_task_leave_the_cluster_taking_tasks(tmp_path):
    url, drop = database_for_subprocesses(tmp_path)
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "INFO", "Q_WORKERS": "2", "Q_SCHEDULER": "false"}
    env.pop("REDIS_URL", None)  # the database broker: this is about the cluster's own processes
    log = tmp_path / "qcluster.log"
    cluster = None
    try:
        assert manage(env, "migrate", "--no-input").returncode == 0
        cluster = start_manage(env, "qcluster", log=log)

        def workers() -> list[int]:
            return [int(pid) for pid in re.findall(r"ready for work at (\d+)", log.read_text())]

        wait_for("two workers", lambda: len(workers()) == 2 and "running" in log.read_text(), timeout=60)
        first = workers()
        for pid in first:  # both idle, waiting for a task: one of them holds the queue's read lock
            os.kill(pid, signal.SIGKILL)
        wait_for("both replaced", lambda: len(workers()) == 4, timeout=30, alive=cluster)
        queued = manage(env, "shell", "-c", "from django_q.tasks import async_task; async_task('math.floor', 2.5)")
        assert queued.returncode == 0, queued.stderr
        done = wait_for(
            "the task done",
            lambda: rows(url, "SELECT result, success FROM django_q_task"),
            timeout=30,
            alive=cluster,
        )
        assert [bool(success) for _, success in done] == [True]
        assert "died waiting for a task; the task queue's read lock released" in log.read_text()
    finally:
        if cluster is not None:
            kill_group(cluster)
            cluster.wait(timeout=10)
        if drop is not None:
            drop()
