"""Runs of pulling a store's customers from its POS; the records a run could not store are customers.RejectedRecord."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.db.models import Q
from django.utils import timezone

from stores.models import Store
from syncs.choices import ACTIVE_STATUSES, SyncKind, SyncStatus, SyncTrigger
from syncs.engine import Progress, process_sync

__all__ = [
    "ACTIVE_STATUSES",
    "CustomerSync",
    "CustomerSyncQuerySet",
    "ScheduledSlot",
    "SyncKind",
    "SyncStatus",
    "SyncTrigger",
]


class CustomerSyncQuerySet(models.QuerySet["CustomerSync"]):
    def running(self) -> CustomerSyncQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def failed(self) -> CustomerSyncQuerySet:
        return self.filter(status=SyncStatus.FAILED)

    def finished(self) -> CustomerSyncQuerySet:
        return self.filter(status=SyncStatus.FINISHED)


class CustomerSync(models.Model):
    """One run of pulling a store's customers from its POS."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="customer_syncs")
    status = models.CharField(max_length=20, choices=SyncStatus.choices, default=SyncStatus.PENDING)
    kind = models.CharField(max_length=20, choices=SyncKind.choices, default=SyncKind.INCREMENTAL)
    trigger = models.CharField(max_length=20, choices=SyncTrigger.choices, default=SyncTrigger.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cursor_from = models.DateTimeField(
        null=True, blank=True, help_text="The POS modification time this sync started from (null: everything)."
    )
    cursor_bound = models.DateTimeField(
        null=True, blank=True, help_text="The upper bound frozen when the sync started."
    )
    cursor_to = models.DateTimeField(null=True, blank=True, help_text="The cursor this sync reached.")
    checkpoint = models.JSONField(
        default=dict, blank=True, help_text="Where the POS listing stood at the last committed page."
    )
    pages = models.PositiveIntegerField(default=0)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(
        default=0, help_text="Customers a full sync marked inactive (gone from the POS or merged)."
    )
    error_type = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    resumed_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resumed_by",
        help_text="The failed or interrupted sync whose checkpoint this one carried on from.",
    )
    # The POS records this sync could not store (the mirror's writer keeps them, with the sync as their origin).
    record_errors = GenericRelation(
        "customers.RejectedRecord",
        content_type_field="origin_type",
        object_id_field="origin_id",
        related_query_name="sync",
    )

    objects = CustomerSyncQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="one_active_sync_per_store",
            ),
        ]
        indexes = [
            models.Index(fields=["store", "-created_at"], name="sync_store_recent"),
            models.Index(fields=["status", "-created_at"], name="sync_status_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} sync #{self.pk} of {self.store.catalog_id} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def counts(self) -> dict[str, int]:
        """What the sync did to the customers, by outcome (the API and the task's result show these)."""
        return {
            "fetched": self.fetched,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "deactivated": self.deactivated,
        }

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def do_process(self, *, progress: Progress | None = None) -> CustomerSync:
        """Run this pending sync in this process to `finished` or `failed` (syncs.engine); `progress` is called
        with the sync after each page. A sync no longer pending is left as it is. Returns it, refreshed."""
        return process_sync(self, progress=progress)

    # ---- its state changes, made by the engine: each is one conditional UPDATE of this row ----------

    def claim(self) -> bool:
        """pending -> in_progress, atomically: of the workers handed this sync, exactly one gets True."""
        now = timezone.now()
        claimed = CustomerSync.objects.filter(pk=self.pk, status=SyncStatus.PENDING).update(
            status=SyncStatus.IN_PROGRESS, started_at=now, heartbeat_at=now
        )
        if claimed:
            self.status, self.started_at, self.heartbeat_at = SyncStatus.IN_PROGRESS, now, now
        return bool(claimed)

    def save_if_running(self, fields: Iterable[str]) -> bool:
        """Save these fields if the sync is still in progress; False when it is not (it was marked failed as
        abandoned while we worked: no longer ours to write)."""
        values = {name: getattr(self, name) for name in fields}
        return bool(CustomerSync.objects.filter(pk=self.pk, status=SyncStatus.IN_PROGRESS).update(**values))

    def previous_cursor(self) -> datetime | None:
        """Where the store's last finished sync reached (an incremental sync starts there, minus the overlap)."""
        previous = CustomerSync.objects.finished().filter(store_id=self.store_id).order_by("-finished_at", "-id")
        return previous.values_list("cursor_to", flat=True).first()


class ScheduledSlot(models.Model):
    """A store's scheduled run for one schedule interval (its slot), claimed by the worker that runs it.

    The unique (store, slot_start) is what makes a schedule fired twice (django-q2's scheduler on several
    clusters can) or a task delivered twice run once; a slot whose task was lost (Redis keeps no receipt for a
    task a dying worker held) has no row, which is how the catch-up finds it."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="scheduled_slots")
    slot_start = models.DateTimeField(help_text="Start of the interval bucket (the interval counted from the epoch).")
    claimed_at = models.DateTimeField(default=timezone.now)
    catch_up = models.BooleanField(default=False, help_text="Claimed by the catch-up of a run that never started.")
    sync = models.ForeignKey(
        CustomerSync,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The sync the slot started (or the one already running then).",
    )

    class Meta:
        ordering = ["-slot_start", "-id"]
        constraints = [models.UniqueConstraint(fields=["store", "slot_start"], name="one_claim_per_store_slot")]
        indexes = [models.Index(fields=["claimed_at"], name="slot_claimed_at")]

    def __str__(self) -> str:
        return f"slot {self.slot_start:%Y-%m-%d %H:%M:%S} of store {self.store_id}"
