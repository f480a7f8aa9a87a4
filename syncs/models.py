"""Runs of pulling a store's customers from its POS, and the records each run had to reject."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.db import models
from django.db.models import Q

from stores.models import Store


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    FAILED = "failed", "Failed"
    FINISHED = "finished", "Finished"


ACTIVE_STATUSES = (SyncStatus.PENDING, SyncStatus.IN_PROGRESS)


class SyncKind(models.TextChoices):
    INCREMENTAL = "incremental", "Incremental"
    FULL = "full", "Full"


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual (command line)"
    ADMIN = "admin", "Admin"
    API = "api", "API"
    DEMO = "demo", "Demo"


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
        related_name="+",
        help_text="The failed sync whose checkpoint this one carried on from.",
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

    def do_process(self, *, progress: Callable[[CustomerSync], None] | None = None) -> CustomerSync:
        """Run this (pending) sync in this process; see syncs.engine."""
        from syncs.engine import run_sync

        return run_sync(sync=self, progress=progress)


class SyncRecordError(models.Model):
    """A POS record a sync could not take, kept with the reason and the payload for staff to see."""

    sync = models.ForeignKey(CustomerSync, on_delete=models.CASCADE, related_name="record_errors")
    customer_id = models.CharField(max_length=64, blank=True, help_text="The POS id, where the record had one.")
    reason = models.TextField()
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "rejected POS record"

    def __str__(self) -> str:
        return f"{self.customer_id or '?'}: {self.reason[:80]}"
