"""Scheduled runs, exactly one per store per schedule interval (services; syncs.tasks calls them).

django-q2's scheduler can fire a schedule twice when several clusters share a broker (an exception later in its
batch rolls `next_run` back after the task was pushed; SQLite has no row lock), a task can be delivered twice,
and Redis drops a task that a dying worker held (it keeps no receipt). So a scheduled run first claims its slot,
the store's interval bucket holding the time the run was due, in the database: the unique (store, slot_start)
lets one claim through and the others are skipped and logged. A slot whose due time passed without a claim is
caught up once, by the every-minute catch-up schedule: only the store's latest due run, so a store that missed
many slots (workers down for an hour) runs once, not in a burst.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from stores.models import SYNC_TASK, Store
from syncs.models import CustomerSync, ScheduledSlot, SyncKind, SyncTrigger
from syncs.services import sync_create, sync_enqueue

logger = logging.getLogger("syncs.slots")

# Claims are kept this long (the dashboard and the fleet benchmark read runs per slot from them), then deleted.
CLAIM_RETENTION = timedelta(days=7)


def slot_start(*, at: datetime, interval_minutes: int) -> datetime:
    """The start of the interval bucket holding `at`: buckets of the interval, counted from the Unix epoch, so every
    process computes the same slot from the same due time."""
    seconds = max(interval_minutes, 1) * 60
    return datetime.fromtimestamp(at.timestamp() // seconds * seconds, tz=UTC)


@dataclass(frozen=True, slots=True)
class SlotClaim:
    """What claiming a slot gave: `sync` is None when the slot was already claimed; `created` is False when the
    slot's run is a sync of the store that was already running."""

    slot_start: datetime
    sync: CustomerSync | None
    created: bool


def sync_slot_claim(
    *, store: Store, scheduled_for: datetime, kind: str = SyncKind.INCREMENTAL, catch_up: bool = False
) -> SlotClaim:
    """Claim the store's slot holding `scheduled_for` and create its pending sync, both or neither; a slot claimed
    before, or older than one claimed, is left alone (SlotClaim.sync is None)."""
    slot = slot_start(at=scheduled_for, interval_minutes=store.sync_interval_minutes)
    if ScheduledSlot.objects.filter(store=store, slot_start__gt=slot).exists():
        # A copy of an older slot's task arriving after a later slot ran (a late delivery): never run backwards.
        logger.info(
            "scheduled sync of store=%s for the slot from %s: a later slot has run; skipped",
            store.catalog_id,
            slot.isoformat(),
        )
        return SlotClaim(slot, None, False)
    try:
        # One transaction: a worker that dies between the claim and the sync leaves neither behind.
        with transaction.atomic():
            claim = ScheduledSlot.objects.create(store=store, slot_start=slot, catch_up=catch_up)
            sync, created = sync_create(store=store, kind=kind, trigger=SyncTrigger.SCHEDULE)
            claim.sync = sync
            claim.save(update_fields=["sync"])
    except IntegrityError:
        if not ScheduledSlot.objects.filter(store=store, slot_start=slot).exists():
            raise
        logger.info(
            "scheduled sync of store=%s for the slot from %s: already claimed (fired or delivered twice); skipped",
            store.catalog_id,
            slot.isoformat(),
        )
        return SlotClaim(slot, None, False)
    return SlotClaim(slot, sync, created)


def sync_catch_up_missed(*, now: datetime | None = None) -> list[CustomerSync]:
    """Queue, once, the latest due run of each scheduled store whose slot nobody claimed within
    SYNC_CATCH_UP_GRACE_SECONDS of its due time (its task was lost); the new pending syncs.

    The catch-up claims the slot itself and queues the claimed sync by id, so a late copy of the lost task is
    skipped, and the catch-up's own task, lost as well, is not caught up again (the sync is reaped after its
    lease and the next slot runs). A store that has claimed any slot since the due time has run since: nothing
    to catch up. A schedule still due (next_run passed) is the scheduler's to fire, not ours.
    """
    from django_q.models import Schedule

    now = now or timezone.now()
    grace = timedelta(seconds=settings.SYNC_CATCH_UP_GRACE_SECONDS)
    ScheduledSlot.objects.filter(claimed_at__lt=now - CLAIM_RETENTION).delete()
    schedules = {
        s.name: s
        for s in Schedule.objects.filter(func=SYNC_TASK, schedule_type=Schedule.MINUTES, next_run__gt=now).exclude(
            repeats=0
        )
    }
    due: list[tuple[Store, datetime]] = []
    for store in Store.objects.filter(sync_enabled=True).order_by("pk"):
        schedule = schedules.get(store.schedule_name)
        if schedule is None or schedule.next_run is None or schedule.minutes != store.sync_interval_minutes:
            continue  # not scheduled, or its schedule not yet in line with the store (schedule_customer_syncs)
        last_due = schedule.next_run - timedelta(minutes=store.sync_interval_minutes)
        if last_due + grace <= now:
            due.append((store, last_due))
    if not due:
        return []
    claims = ScheduledSlot.objects.filter(
        store_id__in=[store.pk for store, _ in due], claimed_at__gte=min(last_due for _, last_due in due)
    )
    last_claimed: dict[int, datetime] = {}
    for store_id, claimed_at in claims.values_list("store_id", "claimed_at"):
        last_claimed[store_id] = max(claimed_at, last_claimed.get(store_id, claimed_at))
    queued: list[CustomerSync] = []
    for store, last_due in due:
        if store.pk in last_claimed and last_claimed[store.pk] >= last_due:
            continue
        claim = sync_slot_claim(store=store, scheduled_for=last_due, catch_up=True)
        if claim.sync is None or not claim.created:
            continue
        logger.warning(
            "scheduled sync of store=%s due %s never started (its task was lost): caught up once as sync %s",
            store.catalog_id,
            last_due.isoformat(),
            claim.sync.pk,
        )
        sync = claim.sync
        transaction.on_commit(lambda sync=sync: sync_enqueue(sync=sync))  # type: ignore[misc]
        queued.append(sync)
    return queued
