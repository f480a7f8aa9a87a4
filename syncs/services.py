"""Writes about customer syncs: create (single flight), enqueue, retry, reap abandoned ones (a sync runs with
CustomerSync.do_process)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from stores.models import SYNC_CLUSTER, SYNC_TASK, Store
from syncs.choices import RESUME_AFTER
from syncs.models import CustomerSync, SyncKind, SyncStatus, SyncTrigger
from syncs.selectors import RESUME_MAX_AGE, abandoned_syncs, resumable_sync, running_sync

logger = logging.getLogger("syncs.services")


def sync_reap_abandoned(*, store: Store | None = None) -> int:
    """Mark active syncs whose heartbeat is older than the lease as failed (abandoned); how many were."""
    lease = settings.SYNC_LEASE_SECONDS
    reaped = abandoned_syncs(store=store).update(
        status=SyncStatus.FAILED,
        finished_at=timezone.now(),
        error_type="Abandoned",
        error_message=f"No heartbeat for more than {lease} s (the worker died or hung); the next sync resumes.",
    )
    if reaped:
        where = f" for store={store.catalog_id}" if store else ""
        logger.warning("marked %d abandoned sync(s) failed%s", reaped, where)
    return reaped


def sync_create(
    *, store: Store, kind: str = SyncKind.INCREMENTAL, trigger: str = SyncTrigger.MANUAL
) -> tuple[CustomerSync, bool]:
    """A new pending sync of the store, or the running one and False. Where the store's last sync ended part-way,
    the new one carries on from its checkpoint (selectors.resumable_sync); after an unfinished full sync it is
    that full sync's continuation, whatever `kind` asked for.

    The database's one-active-sync-per-store constraint is the lock: of concurrent callers exactly one
    insert succeeds, the others get the sync it created.
    """
    if kind not in SyncKind.values:
        raise ValueError(f"unknown sync kind {kind!r}")
    if trigger not in SyncTrigger.values:
        raise ValueError(f"unknown sync trigger {trigger!r}")
    sync_reap_abandoned(store=store)
    for _ in range(3):
        resume = resumable_sync(store=store, kind=kind)
        carried = (
            {
                "resumed_from": resume,
                "kind": resume.kind,  # an unfinished full sync is finished first, whatever was asked
                "cursor_from": resume.cursor_from,
                "cursor_bound": resume.cursor_bound,
                "checkpoint": {k: v for k, v in resume.checkpoint.items() if k != RESUME_AFTER},
            }
            if resume is not None
            else {}
        )
        try:
            with transaction.atomic():
                sync = CustomerSync.objects.create(
                    **{"store": store, "kind": kind, "trigger": trigger, "status": SyncStatus.PENDING, **carried}
                )
        except IntegrityError:
            running = running_sync(store=store)
            if running is not None:
                return running, False
            continue  # it finished between our insert and our look: try again
        return sync, True
    raise RuntimeError(f"could not create a sync for store {store.pk}")


def sync_trigger(*, store: Store, kind: str = SyncKind.INCREMENTAL, trigger: str) -> tuple[CustomerSync, bool]:
    """Create a pending sync and queue it for the sync workers, or return the running one and False."""
    sync, created = sync_create(store=store, kind=kind, trigger=trigger)
    if created:
        # Queued once the row is committed (at once outside a transaction): a worker must find it.
        transaction.on_commit(lambda: sync_enqueue(sync=sync))
    return sync, created


def sync_enqueue(*, sync: CustomerSync) -> None:
    """Queue a pending sync on the sync cluster; if the queue refuses, the sync is failed so it blocks nothing."""
    try:
        async_task(
            SYNC_TASK,
            sync.store_id,
            kind=sync.kind,
            trigger=sync.trigger,
            sync_id=sync.pk,
            cluster=SYNC_CLUSTER,
            task_name=f"customer-sync-{sync.pk}",
        )
    except Exception as exc:
        CustomerSync.objects.filter(pk=sync.pk, status=SyncStatus.PENDING).update(
            status=SyncStatus.FAILED,
            finished_at=timezone.now(),
            error_type="EnqueueFailed",
            error_message=f"The task queue refused the sync: {type(exc).__name__}",
        )
        raise


def sync_interrupt_pending(*, sync: CustomerSync, by: str) -> bool:
    """A sync stopped before it started (a signal between its creation and its claim) ends `interrupted` rather
    than blocking its store as pending until the lease runs out; True if it was still pending. A sync already
    running is the engine's to record."""
    return bool(
        CustomerSync.objects.filter(pk=sync.pk, status=SyncStatus.PENDING).update(
            status=SyncStatus.INTERRUPTED,
            finished_at=timezone.now(),
            error_type="Interrupted",
            error_message=f"Stopped by {by} before it started.",
        )
    )


def sync_resume_deferred(*, now: datetime | None = None) -> list[CustomerSync]:
    """Queue the continuation of each store's sync that stopped for a long rate limit (syncs.engine's
    RateLimitDeferred: the POS asked for a wait longer than SYNC_RATE_LIMIT_HOLD_SECONDS) once that wait is over;
    the new pending syncs. Run by the every-minute catch-up. Only where that sync is still the store's latest (a
    sync since, of any trigger, carried it on already) and the store still syncs; the new sync carries on from its
    checkpoint (sync_create), and the single-flight index makes a second catch-up's attempt a no-op."""
    now = now or timezone.now()
    stopped = CustomerSync.objects.filter(
        status=SyncStatus.FAILED,
        error_type="RateLimited",
        finished_at__gte=now - RESUME_MAX_AGE,
        store__sync_enabled=True,
    ).select_related("store")
    queued: list[CustomerSync] = []
    for sync in stopped:
        resume_after = sync.checkpoint.get(RESUME_AFTER)
        if not isinstance(resume_after, str) or datetime.fromisoformat(resume_after) > now:
            continue
        latest = CustomerSync.objects.filter(store_id=sync.store_id).order_by("-created_at", "-id").first()
        if latest is None or latest.pk != sync.pk:
            continue
        resumed, created = sync_trigger(store=sync.store, kind=sync.kind, trigger=SyncTrigger.SCHEDULE)
        if created:
            logger.info(
                "store=%s: sync %s stopped for the POS's rate limit until %s; carried on as sync %s",
                sync.store.catalog_id,
                sync.pk,
                resume_after,
                resumed.pk,
            )
            queued.append(resumed)
    return queued


def sync_retry(*, sync: CustomerSync) -> tuple[CustomerSync, bool]:
    """Queue a new sync of the same store and kind (staff's "retry"), or return the running one and False."""
    return sync_trigger(store=sync.store, kind=sync.kind, trigger=SyncTrigger.ADMIN)


@dataclass(slots=True)
class ScheduleChanges:
    """What `sync_schedules_apply` did."""

    created: int = 0
    updated: int = 0
    removed: int = 0
    kept: int = 0


def _schedule_state() -> dict[str, tuple[Any, ...]]:
    from django_q.models import Schedule

    return {
        s.name: (s.func, s.args, s.kwargs, s.schedule_type, s.minutes, s.repeats, s.cluster, s.intended_date_kwarg)
        for s in Schedule.objects.filter(func=SYNC_TASK)
    }


def sync_schedules_apply() -> ScheduleChanges:
    """Exactly one customer-sync schedule per store with sync enabled, none for the others (idempotent)."""
    from django_q.models import Schedule

    before = _schedule_state()
    wanted = set()
    for store in Store.objects.order_by("pk"):
        if store.schedule_customer_sync() is not None:
            wanted.add(store.schedule_name)
    Schedule.objects.filter(func=SYNC_TASK).exclude(name__in=wanted).delete()
    after = _schedule_state()
    changes = ScheduleChanges()
    for name in set(before) | set(after):
        if name not in after:
            changes.removed += 1
        elif name not in before:
            changes.created += 1
        elif before[name] != after[name]:
            changes.updated += 1
        else:
            changes.kept += 1
    return changes
