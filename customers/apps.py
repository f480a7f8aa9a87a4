import datetime as dt
from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils import timezone


class CustomersConfig(AppConfig):
    name = "customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_prune_schedule, sender=self, dispatch_uid="customers.prune_schedule")


def ensure_prune_schedule(**kwargs: Any) -> None:
    """The daily schedule that prunes old access events, made once (idempotent: every migrate)."""
    from django_q.models import Schedule

    from customers.tasks import PRUNE_SCHEDULE_NAME, PRUNE_TASK

    using = kwargs.get("using", "default")
    # First run at the next 04:00 UTC, a quiet hour, not at the first start of a cluster.
    now = timezone.now()
    first = (now + dt.timedelta(days=1)).replace(hour=4, minute=0, second=0, microsecond=0)
    Schedule.objects.using(using).get_or_create(
        name=PRUNE_SCHEDULE_NAME,
        defaults={"func": PRUNE_TASK, "schedule_type": Schedule.DAILY, "repeats": -1, "next_run": first},
    )
