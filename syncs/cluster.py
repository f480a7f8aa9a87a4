"""django-q2's cluster with a prompt stop: `manage.py qcluster` (syncs/management/commands/qcluster.py) runs this.

django-q2 (1.11) on its own does not stop on SIGTERM sent to its process group, as systemd sends it (Ctrl-C
sends SIGINT the same way): its Sentinel process leaves SIGTERM at the default and dies at once, while the main
process, handling the signal, sets the stop event and waits for an acknowledgement the dead Sentinel never
gives; the workers die mid-task, so their syncs stay `in progress` until the lease runs out. Sent to the main
process alone (as scripts/run did), the Sentinel stops fetching, then waits for the workers to run every task
already fetched, each sync to its end.

Here, whichever process of the cluster gets SIGTERM or SIGINT (or all of them):
- the Sentinel survives it (a SIGTERM to it is passed on to the main process, which stops the cluster);
- stopping, the Sentinel stops the pusher and sends SIGTERM to every worker: a worker running a sync
  interrupts it (syncs.interrupt: the sync is recorded `interrupted` with its checkpoint, the task ends with
  that result) and goes; an idle one goes at once;
- tasks fetched from the broker but not started are given back to the broker, so the syncs queued behind
  the running ones run at the next start instead of waiting for the broker's `retry` to pass;
- the pusher and the monitor ignore SIGTERM (the Sentinel stops them in order, so that the interrupted
  tasks' results are saved) and leave when the Sentinel is gone;
- whatever still runs after STOP_SECONDS is killed;
- a worker killed (SIGKILL) while it waits for a task does not stall the cluster: multiprocessing's Queue.get
  holds the queue's read lock while it waits, so the dead worker would keep it and every other worker of the
  cluster wait behind it forever (the fleet benchmark found a cluster that took no task again after a kill);
  the workers read the queue through `_TaskQueueReader`, which records who holds the lock, and the Sentinel,
  replacing a dead worker that held it, releases it.
The library's files are not changed: these are subclasses and django-q2's own signals.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import current_process
from multiprocessing.reduction import ForkingPickler as _ForkingPickler
from types import FrameType
from typing import Any

from django_q.brokers import Broker, get_broker
from django_q.cluster import Cluster, Sentinel, get_mp_context, setproctitle
from django_q.monitor import monitor
from django_q.pusher import pusher
from django_q.signals import post_execute_in_worker, post_spawn, pre_execute
from django_q.signing import SignedPackage
from django_q.status import Stat
from django_q.worker import worker

from syncs import interrupt

logger = logging.getLogger("syncs.cluster")

# The whole stop takes at most this long (then what still runs is killed); interrupting a sync takes well
# under a second: the page in flight is dropped and one UPDATE records the sync.
STOP_SECONDS = 10.0
_POLL = 0.1


def give_back(broker: Broker, task: dict[str, Any]) -> None:
    """Return a task fetched from the broker but never started, so that another start runs it at once."""
    package = {k: v for k, v in task.items() if k not in ("ack_id", "cluster")}
    broker.enqueue(SignedPackage.dumps(package))
    ack_id = task.get("ack_id")
    if ack_id is not None:
        broker.acknowledge(ack_id)
    logger.info("task %s was not started; given back to the queue", task.get("name"))


def _leave_with_parent(on_orphan: Callable[[], None]) -> None:
    """Call `on_orphan` (in a thread of this process) once the process that started this one is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        on_orphan()

    threading.Thread(target=watch, name="leave-with-parent", daemon=True).start()


# --- the workers: django-q2's own worker function, with a SIGTERM handler installed through its signals -------


@dataclass
class _WorkerState:
    enabled: bool = False  # set by PromptCluster before it forks: only its workers act on the signals below
    stopping: bool = False
    running: str | None = None  # the task in hand


_worker = _WorkerState()


def _on_worker_sigterm(signum: int, frame: FrameType | None) -> None:
    _worker.stopping = True
    if _worker.running is None:
        raise SystemExit(0)  # waiting for work: leave
    interrupt.deliver(signum)  # SyncInterrupted: the engine records the sync `interrupted`; the task ends


def _worker_spawned(sender: Any, proc_name: str, **kwargs: Any) -> None:
    if not _worker.enabled:
        return
    interrupt.reset()
    signal.signal(signal.SIGTERM, _on_worker_sigterm)

    def orphaned() -> None:  # the Sentinel was killed: stop as if told to, and make sure to go
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os._exit(1)

    _leave_with_parent(orphaned)


def _before_task(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    if not _worker.enabled:
        return
    if _worker.stopping:  # fetched while the cluster stops: not started, given back (a signal may not cut that)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        give_back(get_broker(), task)
        raise SystemExit(0)
    _worker.running = task.get("name") or "?"


def _after_task(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    _worker.running = None


post_spawn.connect(_worker_spawned, dispatch_uid="syncs.cluster.worker_spawned")
pre_execute.connect(_before_task, dispatch_uid="syncs.cluster.before_task")
post_execute_in_worker.connect(_after_task, dispatch_uid="syncs.cluster.after_task")


# --- the pusher and the monitor: django-q2's functions, deaf to SIGTERM, gone with the Sentinel ---------------


def _steady(target: Callable[..., None], *args: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _leave_with_parent(lambda: os._exit(0))
    target(*args)


def steady_pusher(*args: Any) -> None:
    _steady(pusher, *args)


def steady_monitor(*args: Any) -> None:
    _steady(monitor, *args)


# --- the task queue as the workers read it ---------------------------------------------------------------------


class _TaskQueueReader:
    """The cluster's task queue (django_q.queues.Queue) as a worker reads it: Queue.get, with the pid of the
    worker holding the queue's read lock kept in `holder` (shared memory, no lock of its own) while it waits."""

    def __init__(self, task_queue: Any, holder: Any) -> None:
        self.task_queue = task_queue
        self.holder = holder

    def get(self) -> Any:
        q = self.task_queue
        with q._rlock:
            self.holder.value = os.getpid()
            try:
                data = q._recv_bytes()
            finally:
                self.holder.value = 0
        q._sem.release()
        q.size.increment(-1)
        return _ForkingPickler.loads(data)


# --- the Sentinel --------------------------------------------------------------------------------------------


class PromptSentinel(Sentinel):
    """django-q2's Sentinel, surviving SIGTERM and stopping its processes within STOP_SECONDS."""

    pool: list[Any]

    def __init__(
        self,
        stop_event: Any,
        start_event: Any,
        cluster_id: Any,
        broker: Broker | None = None,
        timeout: int | None = None,
        start: bool = True,
    ) -> None:
        super().__init__(stop_event, start_event, cluster_id, broker, timeout, start=False)
        signal.signal(signal.SIGTERM, self._on_sigterm)  # the library leaves the default here: death
        self.queue_reader = get_mp_context().RawValue("i", 0)  # the worker holding the task queue's read lock
        if start:
            self.start()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        # The main process holds the stop event (setting it from here, inside a wait on it, would deadlock).
        if os.getppid() == self.parent_pid:
            os.kill(self.parent_pid, signal.SIGTERM)
        else:  # the main process is gone: stop alone
            raise SystemExit(1)

    def spawn_pusher(self) -> Any:
        return self.spawn_process(steady_pusher, self.task_queue, self.event_out, self.broker)

    def spawn_worker(self) -> None:
        reader = _TaskQueueReader(self.task_queue, self.queue_reader)
        self.spawn_process(worker, reader, self.result_queue, get_mp_context().Value("f", -1), self.timeout)

    def reincarnate(self, process: Any) -> None:
        if process in self.pool and process.pid and self.queue_reader.value == process.pid:
            # It died waiting for a task, holding the read lock: without this no worker would get one again.
            self.queue_reader.value = 0
            self.task_queue._rlock.release()
            logger.warning("worker %s died waiting for a task; the task queue's read lock released", process.name)
        super().reincarnate(process)

    def spawn_monitor(self) -> Any:
        return self.spawn_process(steady_monitor, self.result_queue, self.broker)

    def stop(self) -> None:
        name = current_process().name
        logger.info("%s stopping the cluster: interrupting running tasks", name)
        deadline = time.monotonic() + STOP_SECONDS
        Stat(self).save()
        self.event_out.set()  # the pusher stops after its current fetch
        for process in self.pool:
            _signal(process, signal.SIGTERM)  # a running sync is interrupted; an idle worker goes
        # What the pusher fetched and no worker started is taken back, until the pusher is gone and the queue
        # empty (taking makes room for a pusher blocked on a full queue).
        taken: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                item = self.task_queue.get(timeout=_POLL)
            except queue.Empty:
                if not self.pusher.is_alive():
                    break
                continue
            if isinstance(item, dict):
                taken.append(item)
        for task in taken:
            try:
                give_back(self.broker, task)
            except Exception:
                logger.exception("could not give task %s back to the queue", task.get("name"))
        for _ in self.pool:
            self.task_queue.put("STOP")  # for a worker that finished its interruption and waits for work
        self.task_queue.close()
        self.task_queue.join_thread()
        self.pool = _wait_for(self.pool, deadline)
        for process in [*self.pool, self.pusher]:
            if process.is_alive():
                logger.error("%s did not stop within %.0f s; killed", process.name, STOP_SECONDS)
                process.kill()
        self.pool = []
        # The monitor saves the results the workers left (an interrupted sync's too), then stops.
        self.result_queue.put("STOP")
        self.result_queue.close()
        self.result_queue.join_thread()
        if _wait_for([self.monitor], deadline + 2.0):
            logger.error("the monitor did not stop; killed")
            self.monitor.kill()
        Stat(self).save()
        logger.info("%s stopped the cluster", name)


def _signal(process: Any, signum: int) -> None:
    try:
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


def _wait_for(processes: list[Any], deadline: float) -> list[Any]:
    """Wait until these processes have ended or the deadline passed; those still alive."""
    alive = [p for p in processes if p.is_alive()]
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL)
        alive = [p for p in alive if p.is_alive()]
    return alive


# --- the cluster (the main process) --------------------------------------------------------------------------


class PromptCluster(Cluster):
    """django-q2's Cluster running PromptSentinel; stops within STOP_SECONDS on SIGTERM or SIGINT."""

    def __init__(self, broker: Broker | None = None) -> None:
        super().__init__(broker)  # installs the SIGTERM and SIGINT handlers that call stop()
        self._stopping = False
        _worker.enabled = True  # inherited by the workers forked from here on

    def start(self) -> int:
        """django-q2's Cluster.start, with PromptSentinel as the Sentinel."""
        if setproctitle:
            setproctitle.setproctitle(f"qcluster {current_process().name} {self.name}")
        self.stop_event = get_mp_context().Event()
        self.start_event = get_mp_context().Event()
        self.sentinel = get_mp_context().Process(
            target=PromptSentinel,
            name=f"Process-{self.cluster_id.hex}",
            args=(self.stop_event, self.start_event, self.cluster_id, self.broker, self.timeout),
        )
        self.sentinel.start()
        logger.info("Q Cluster %s starting (stops within %.0f s on SIGTERM or SIGINT)", self.name, STOP_SECONDS)
        # Polled rather than waited on (as in the library): a signal during a wait would deadlock.
        while self.start_event is not None and not self.start_event.is_set():
            if not self.sentinel.is_alive():
                if self.sentinel.exitcode == 0 or self._stopping:
                    break
                raise RuntimeError(f"Q Cluster {self.name} failed to start: sentinel exited {self.sentinel.exitcode}")
            time.sleep(_POLL)
        return int(self.pid)

    def stop(self) -> bool:
        if self.sentinel is None or self._stopping:
            return False  # a second signal while stopping: the stop under way is bounded
        self._stopping = True
        if not self.sentinel.is_alive():
            return False
        logger.info("Q Cluster %s stopping", self.name)
        self.stop_event.set()
        self.sentinel.join(STOP_SECONDS + 5.0)
        if self.sentinel.is_alive():
            logger.error("Q Cluster %s: the sentinel did not stop; killed", self.name)
            self.sentinel.kill()
            self.sentinel.join(5.0)
        logger.info("Q Cluster %s has stopped", self.name)
        self.start_event = None
        self.stop_event = None
        return True


__all__ = ["STOP_SECONDS", "PromptCluster", "PromptSentinel", "give_back"]
