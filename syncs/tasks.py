"""django-q2 tasks (they only call services)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from stores.models import Store
from syncs.interrupt import SyncInterrupted
from syncs.models import CustomerSync, SyncKind, SyncStatus, SyncTrigger
from syncs.services import sync_create, sync_interrupt_pending, sync_resume_deferred
from syncs.slots import sync_catch_up_missed, sync_slot_claim

logger = logging.getLogger("syncs.tasks")


def sync_store_customers(
    store_id: int,
    *,
    kind: str = SyncKind.INCREMENTAL,
    trigger: str = SyncTrigger.SCHEDULE,
    sync_id: int | None = None,
    scheduled_for: str | None = None,
) -> dict[str, Any]:
    """Run a store's customer sync: the queued one (`sync_id`), or a new one unless a sync is already running.

    A scheduled run (the schedule passes the time it was due, `scheduled_for`) first claims its slot: a slot
    claimed before is skipped (syncs.slots). A stop of the task queue (SIGTERM: syncs.cluster) interrupts it: the
    sync is recorded `interrupted` with its checkpoint and the task ends with that status, so that its worker can
    go."""
    sync: CustomerSync | None = None
    try:
        if sync_id is not None:
            sync = CustomerSync.objects.select_related("store").filter(pk=sync_id).first()
            if sync is None or sync.status != SyncStatus.PENDING:
                status = sync.status if sync else "missing"
                logger.info("customer sync task: sync %s is %s, not pending; skipped", sync_id, status)
                return {"sync_id": sync_id, "status": status, "skipped": True}
        else:
            store = Store.objects.filter(pk=store_id).first()
            if store is None:
                logger.warning("customer sync task: store %s does not exist; skipped", store_id)
                return {"store_id": store_id, "skipped": True, "reason": "no such store"}
            if trigger == SyncTrigger.SCHEDULE and not store.sync_enabled:
                logger.info("customer sync task: store=%s has sync disabled; skipped", store.catalog_id)
                return {"store_id": store_id, "skipped": True, "reason": "sync disabled"}
            if trigger == SyncTrigger.SCHEDULE:
                due = datetime.fromisoformat(scheduled_for) if scheduled_for else timezone.now()
                claim = sync_slot_claim(store=store, scheduled_for=due, kind=kind)
                if claim.sync is None:
                    return {"store_id": store_id, "skipped": True, "reason": "slot already claimed"}
                sync, created = claim.sync, claim.created
            else:
                sync, created = sync_create(store=store, kind=kind, trigger=trigger)
            if not created:
                logger.info(
                    "customer sync task: store=%s already has sync %s %s; skipped",
                    store.catalog_id,
                    sync.pk,
                    sync.status,
                )
                return {"store_id": store_id, "sync_id": sync.pk, "status": sync.status, "skipped": True}
        logger.info(
            "customer sync task: sync %s store=%s kind=%s trigger=%s starting",
            sync.pk,
            sync.store.catalog_id,
            sync.kind,
            sync.trigger,
        )
        sync = sync.do_process()
    except SyncInterrupted as stop:
        if sync is None:
            logger.warning("customer sync task for store %s: stopped by %s before a sync began", store_id, stop)
            return {"store_id": store_id, "status": SyncStatus.INTERRUPTED, "skipped": True}
        sync_interrupt_pending(sync=sync, by=stop.signal_name)  # stopped before the engine took it
        sync.refresh_from_db()
    logger.info(
        "customer sync task: sync %s store=%s ended %s (fetched=%d created=%d updated=%d unchanged=%d invalid=%d)",
        sync.pk,
        sync.store.catalog_id,
        sync.status,
        sync.fetched,
        sync.created,
        sync.updated,
        sync.unchanged,
        sync.invalid,
    )
    return {
        "sync_id": sync.pk,
        "store_id": sync.store_id,
        "status": sync.status,
        **sync.counts(),
        "error_type": sync.error_type,
    }


def sync_catch_up() -> dict[str, Any]:
    """Every minute (its own schedule): queue once the due scheduled run of each store whose task was lost, and
    the continuation of each sync stopped for a long rate limit whose wait is over."""
    queued = sync_catch_up_missed()
    resumed = sync_resume_deferred()
    return {"caught_up": [sync.pk for sync in queued], "resumed": [sync.pk for sync in resumed]}
