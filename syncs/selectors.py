"""Reads about customer syncs (services write, selectors read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from stores.models import ApiKey, Store
from stores.selectors import store_list_for_key
from syncs.choices import UNFINISHED_STATUSES
from syncs.models import CustomerSync, SyncKind, SyncStatus

# Failures after which the next sync must start over instead of resuming at the checkpoint.
NOT_RESUMABLE_ERRORS = frozenset({"InvalidRecordThreshold", "MissingCustomersGuard"})
# A checkpoint older than this is not trusted: a POS listing position may not stay valid for days.
RESUME_MAX_AGE = timedelta(hours=24)


def running_sync(*, store: Store) -> CustomerSync | None:
    """The store's pending or in-progress sync, if any."""
    return CustomerSync.objects.running().filter(store=store).order_by("-id").first()


def resumable_sync(*, store: Store, kind: str) -> CustomerSync | None:
    """The store's latest sync when it ended part-way (failed, interrupted, killed) and a new sync asked for as
    `kind` should carry on from its checkpoint instead of starting over.

    Whatever comes next carries an unfinished sync on: a full sync's progress is never thrown away by the
    incremental that a schedule runs after it (the new sync finishes the full one first, as a full sync of the
    same window: see sync_create), and an incremental one's by the next incremental. Only a full sync asked
    for after an unfinished incremental starts over, since it covers everything anyway.

    Only the very latest sync qualifies (a later success makes it moot), recent, with a committed checkpoint
    and a failure that does not ask for a fresh start. A resumed sync that ended again without committing a
    page is not resumed once more, so a position the POS no longer accepts cannot wedge a store, unless it was
    rate limited again.
    """
    latest = CustomerSync.objects.filter(store=store).exclude(status__in=[SyncStatus.PENDING, SyncStatus.IN_PROGRESS])
    latest_sync = latest.order_by("-created_at", "-id").first()
    if latest_sync is None or latest_sync.status not in UNFINISHED_STATUSES:
        return None
    if latest_sync.kind != kind and latest_sync.kind != SyncKind.FULL:
        return None
    if latest_sync.error_type in NOT_RESUMABLE_ERRORS or not latest_sync.checkpoint.get("position"):
        return None
    if latest_sync.cursor_bound is None or latest_sync.started_at is None:
        return None
    if latest_sync.started_at < timezone.now() - RESUME_MAX_AGE:
        return None
    if latest_sync.resumed_from_id is not None and latest_sync.pages == 0 and latest_sync.error_type != "RateLimited":
        return None  # (a POS still rate limiting says nothing against the position: that one is carried on)
    return latest_sync


def abandoned_syncs(*, store: Store | None = None) -> QuerySet[CustomerSync]:
    """Active syncs whose lease ran out: no heartbeat within it (or, never started, created before it)."""
    cutoff = timezone.now() - timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    condition = Q(status__in=[SyncStatus.PENDING, SyncStatus.IN_PROGRESS]) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    if store is not None:
        condition &= Q(store=store)
    return CustomerSync.objects.filter(condition)


def stall_cutoff(*, now: datetime | None = None) -> datetime:
    """An in-progress sync whose last heartbeat is older than this is stalled (SYNC_STALL_SECONDS)."""
    return (now or timezone.now()) - timedelta(seconds=settings.SYNC_STALL_SECONDS)


def stalled_syncs(*, now: datetime | None = None) -> QuerySet[CustomerSync]:
    """In-progress syncs with no heartbeat (no page written, no wait begun) for longer than SYNC_STALL_SECONDS;
    annotated with `last_beat` (the heartbeat, or the start when there was none)."""
    return (
        CustomerSync.objects.filter(status=SyncStatus.IN_PROGRESS)
        .annotate(last_beat=Coalesce("heartbeat_at", "started_at", "created_at", output_field=DateTimeField()))
        .filter(last_beat__lt=stall_cutoff(now=now))
    )


@dataclass(frozen=True, slots=True)
class StoreSyncStatus:
    """A store with its latest sync, whatever its outcome, and when a sync last finished well."""

    store: Store
    last_sync: CustomerSync | None
    last_finished_at: datetime | None


def store_sync_status_list(*, api_key: ApiKey, store: Store | None = None) -> list[StoreSyncStatus]:
    """Each store the key reaches (or just `store`), by catalog_id, with its sync status: two queries, however
    many stores."""
    stores: QuerySet[Store] = (
        store_list_for_key(api_key=api_key) if store is None else Store.objects.filter(pk=store.pk)
    )
    recent = CustomerSync.objects.filter(store=OuterRef("pk")).order_by("-created_at", "-id")
    stores = stores.annotate(
        latest_sync_id=Subquery(recent.values("id")[:1]),
        last_finished_at=Subquery(
            CustomerSync.objects.filter(store=OuterRef("pk"), status=SyncStatus.FINISHED)
            .order_by("-finished_at")
            .values("finished_at")[:1]
        ),
    ).order_by("catalog_id")
    rows = list(stores)
    syncs = CustomerSync.objects.in_bulk([s.latest_sync_id for s in rows if s.latest_sync_id])
    return [
        StoreSyncStatus(
            store=s,
            last_sync=syncs.get(s.latest_sync_id) if s.latest_sync_id else None,
            last_finished_at=s.last_finished_at,
        )
        for s in rows
    ]
