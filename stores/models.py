"""Stores (a dispensary and its POS connection) and the API keys of REST clients."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from pos_integrations.parsing import time_zone
from pos_integrations.records import DEFAULT_TIME_ZONE
from pos_integrations.vendors import VENDOR_LABELS, CredentialsError, validate_credentials
from stores.fields import EncryptedJSONField

if TYPE_CHECKING:
    from django_q.models import Schedule

    from pos_integrations.base import PosClient

SYNC_TASK = "syncs.tasks.sync_store_customers"
SYNC_CLUSTER = "customer_sync"
# Every minute: queue once the scheduled run of any store whose task was lost (syncs.slots.sync_catch_up_missed).
SYNC_CATCH_UP_TASK = "syncs.tasks.sync_catch_up"
SYNC_CATCH_UP_SCHEDULE = "customer-sync-catch-up"
# The schedule hands each run the time it was due, which names the run's slot (syncs.models.ScheduledSlot).
SCHEDULED_FOR_KWARG = "scheduled_for"


class PosVendor(models.TextChoices):
    LEAFLOGIX = "leaflogix", VENDOR_LABELS["leaflogix"]
    TREEZ = "treez", VENDOR_LABELS["treez"]
    FLOWHUB = "flowhub", VENDOR_LABELS["flowhub"]
    COVASOFT = "covasoft", VENDOR_LABELS["covasoft"]
    BLAZE = "blaze", VENDOR_LABELS["blaze"]


def validate_time_zone(value: str) -> None:
    """An IANA time zone name, e.g. America/Los_Angeles."""
    try:
        time_zone(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a known time zone (e.g. America/Los_Angeles).") from None


class Store(models.Model):
    """One dispensary location and the POS it runs on."""

    name = models.CharField(max_length=200)
    catalog_id = models.SlugField(
        max_length=100, unique=True, help_text="The id REST clients use for this store, e.g. greenleaf-oakland."
    )
    pos_vendor = models.CharField(max_length=20, choices=PosVendor.choices)
    pos_base_url = models.URLField(
        blank=True, help_text="Leave blank for the vendor's production API; the sandbox and tests point elsewhere."
    )
    pos_credentials = EncryptedJSONField(
        blank=True, default=dict, help_text="The vendor's secrets, encrypted at rest and never shown back."
    )
    time_zone = models.CharField(
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text=(
            "The store's IANA time zone. Where a POS sends a calendar date as an instant at the store's local "
            "midnight (Blaze's dates of birth), the date is read in this zone. Default America/Los_Angeles: real "
            "Blaze dates of birth sit at 07:00 or 08:00 UTC, midnight on the US west coast."
        ),
    )
    sync_enabled = models.BooleanField(default=True)
    sync_interval_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.catalog_id})"

    def clean(self) -> None:
        try:
            validate_credentials(self.pos_vendor, self.pos_credentials)
        except CredentialsError as exc:
            raise ValidationError({"pos_credentials": str(exc)}) from exc

    @property
    def schedule_name(self) -> str:
        return f"customer-sync:store-{self.pk}"

    def pos_client(self, **kwargs: Any) -> PosClient:
        """This store's POS client, built from its own vendor, URL and credentials, with the deadlines and the
        rate limiter of the settings (`kwargs`: get_client's)."""
        from pos_integrations import Deadlines, get_client
        from stores.ratelimit import rate_limits

        kwargs.setdefault("rate_limits", rate_limits())
        kwargs.setdefault(
            "deadlines",
            Deadlines(
                lookup=settings.POS_LOOKUP_DEADLINE_SECONDS,
                connection=settings.POS_CONNECTION_TEST_DEADLINE_SECONDS,
                create=settings.POS_CREATE_DEADLINE_SECONDS,
                page=settings.POS_SYNC_PAGE_DEADLINE_SECONDS,
            ),
        )
        kwargs.setdefault("pages_in_flight", settings.SYNC_PAGES_IN_FLIGHT)
        return get_client(
            self.pos_vendor,
            base_url=self.pos_base_url or None,
            credentials=self.pos_credentials,
            store_label=self.catalog_id,
            time_zone=self.time_zone or None,
            **kwargs,
        )

    def schedule_customer_sync(self) -> Schedule | None:
        """Create or update this store's django-q2 schedule (exactly one); remove it when sync is disabled."""
        from django_q.models import Schedule

        with transaction.atomic():
            existing = list(Schedule.objects.select_for_update().filter(name=self.schedule_name).order_by("id"))
            if not self.sync_enabled or self.pk is None:
                Schedule.objects.filter(pk__in=[s.pk for s in existing]).delete()
                return None
            wanted = {
                "func": SYNC_TASK,
                "args": repr(self.pk),
                "kwargs": "{'trigger': 'schedule'}",
                "schedule_type": Schedule.MINUTES,
                "minutes": self.sync_interval_minutes,
                "repeats": -1,
                "cluster": SYNC_CLUSTER,
                "intended_date_kwarg": SCHEDULED_FOR_KWARG,
            }
            ensure_catch_up_schedule()
            if not existing:
                return Schedule.objects.create(name=self.schedule_name, next_run=self.first_run(), **wanted)
            schedule, extra = existing[0], existing[1:]
            if extra:
                Schedule.objects.filter(pk__in=[s.pk for s in extra]).delete()
            changed = [name for name, value in wanted.items() if getattr(schedule, name) != value]
            if changed:
                for name in changed:
                    setattr(schedule, name, wanted[name])
                if "minutes" in changed:
                    schedule.next_run = self.first_run()
                schedule.save()
            return schedule

    def first_run(self, *, now: datetime | None = None) -> datetime:
        """When a new schedule of this store first runs: the latest time, not after now, at the store's phase in
        its interval, so it runs at once and then every interval from there. The phases of stores with one
        interval are spread evenly over it (the golden-ratio sequence of their ids), so a fleet's syncs do not
        all come due at the same moment; each store's runs keep to one slot per interval (syncs.slots)."""
        now = now or timezone.now()
        seconds = max(self.sync_interval_minutes, 1) * 60
        phase = ((self.pk or 0) * GOLDEN_RATIO_FRACTION) % 1 * seconds
        at = now.timestamp() // seconds * seconds + phase
        return datetime.fromtimestamp(at if at <= now.timestamp() else at - seconds, tz=UTC)


GOLDEN_RATIO_FRACTION = 0.6180339887498949  # consecutive ids land far apart, and any n of them about evenly


def ensure_catch_up_schedule() -> None:
    """The one schedule (every minute, on the sync cluster) that catches up scheduled runs whose task was lost."""
    from django_q.models import Schedule

    wanted = {"func": SYNC_CATCH_UP_TASK, "schedule_type": Schedule.MINUTES, "minutes": 1, "cluster": SYNC_CLUSTER}
    schedule, created = Schedule.objects.get_or_create(name=SYNC_CATCH_UP_SCHEDULE, defaults=wanted)
    if not created and any(getattr(schedule, name) != value for name, value in wanted.items()):
        Schedule.objects.filter(pk=schedule.pk).update(**wanted)


def hash_api_key(raw_key: str) -> str:
    """SHA-256 of a key: keys are long random strings, so a fast hash is enough and lookups stay cheap."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiScope(models.TextChoices):
    """What an API key may do. Without `pii`, licence and medical card numbers and birthdays are masked in its
    answers (it may still look customers up by them)."""

    CUSTOMERS_READ = "customers:read", "Read customers (list, search, fetch)"
    CUSTOMERS_WRITE = "customers:write", "Create customers"
    SYNCS = "syncs", "See and start syncs"
    PII = "pii", "See licence and medical card numbers and birthdays unmasked"


def all_api_scopes() -> list[str]:
    """Every scope: what a key could do before keys had scopes."""
    return list(ApiScope.values)


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A REST client's key. Only a hash of the secret is stored; the secret is shown once, at creation."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=12, unique=True, help_text="The visible start of the key.")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    all_stores = models.BooleanField(default=False, help_text="Reaches every store, present and future.")
    stores = models.ManyToManyField(Store, blank=True, related_name="api_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(
        default=all_api_scopes,
        help_text="What the key may do: customers:read, customers:write, syncs, pii (unmasked personal data).",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def clean(self) -> None:
        super().clean()
        unknown = sorted(set(self.scopes or []) - set(ApiScope.values)) if isinstance(self.scopes, list) else None
        if unknown is None or unknown:
            raise ValidationError({"scopes": f"Scopes are a list of: {', '.join(ApiScope.values)}."})


class PosRateBucket(models.Model):
    """One POS credential's rate budget (pos_integrations.ratelimit) when no Redis is configured: read and written
    by stores.ratelimit on a connection of its own, one tiny transaction per request."""

    key = models.CharField(max_length=64, primary_key=True, help_text="The vendor and a hash of the credential.")
    state = models.JSONField(default=dict)

    class Meta:
        db_table = "stores_pos_rate_bucket"

    def __str__(self) -> str:
        return self.key
