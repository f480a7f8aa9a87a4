"""The values a customer sync's state takes (its model, syncs.models.CustomerSync, and the engine use them)."""

from __future__ import annotations

from django.db import models


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    FAILED = "failed", "Failed"
    # Stopped on purpose (SIGTERM or SIGINT: a deploy, Ctrl-C, the service stopped) with its checkpoint saved;
    # not a failure, and the next sync carries on from it.
    INTERRUPTED = "interrupted", "Interrupted"
    FINISHED = "finished", "Finished"


ACTIVE_STATUSES = (SyncStatus.PENDING, SyncStatus.IN_PROGRESS)
# A sync that ended part-way: the next one may carry on from its checkpoint (syncs.selectors.resumable_sync).
UNFINISHED_STATUSES = (SyncStatus.FAILED, SyncStatus.INTERRUPTED)
# How a sync that stopped for a long rate limit says when to carry on: a key of its checkpoint, the time (ISO 8601)
# its POS is to be asked again (syncs.engine.RateLimitDeferred; syncs.services.sync_resume_deferred).
RESUME_AFTER = "resume_after"


class SyncKind(models.TextChoices):
    INCREMENTAL = "incremental", "Incremental"
    FULL = "full", "Full"


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual (command line)"
    ADMIN = "admin", "Admin"
    API = "api", "API"
    DEMO = "demo", "Demo"
