"""The values a customer sync's state takes (its model, syncs.models.CustomerSync, and the engine use them)."""

from __future__ import annotations

from django.db import models


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
