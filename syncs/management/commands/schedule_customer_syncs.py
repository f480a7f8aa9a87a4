"""Make every store's django-q2 schedule match its settings."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from syncs.services import sync_schedules_apply


class Command(BaseCommand):
    help = (
        "Create, update or remove each store's customer-sync schedule to match its settings: exactly one per "
        "store with sync enabled, none otherwise (also drops schedules of deleted stores). Idempotent."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            result = sync_schedules_apply()
        self.stdout.write(
            self.style.SUCCESS(
                f"Schedules: {result.kept} unchanged, {result.created} created, {result.updated} updated, "
                f"{result.removed} removed."
            )
        )
