"""Scheduled upkeep of the customers app (django-q2; the schedule is kept by customers.apps on migrate)."""

from __future__ import annotations

import logging

from customers.pii_access import access_events_prune

logger = logging.getLogger(__name__)
PRUNE_TASK = "customers.tasks.prune_access_log"
PRUNE_SCHEDULE_NAME = "prune-access-log"


def prune_access_log() -> int:
    deleted = access_events_prune()
    logger.info("Pruned %d personal data access events", deleted)
    return deleted
