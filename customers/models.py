"""A store's customers, mirrored from its POS, and the POS records the mirror could not take."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from customers.fields import (
    CARD_PURPOSE,
    IDEMPOTENCY_RESPONSE_PURPOSE,
    LICENCE_PURPOSE,
    RAW_PURPOSE,
    REJECTED_PAYLOAD_PURPOSE,
    BlindIndexField,
    EncryptedJSONField,
    EncryptedTextField,
    IndexKeyIdField,
    PiiDigestField,
    card_indexes,
    licence_indexes,
    number_key,
)
from stores.models import ApiKey, Store

_NON_DIGITS = re.compile(r"\D")


def phone_digits(value: str | None) -> str:
    """The digits of a phone number; a leading US country code is dropped from 11-digit numbers."""
    digits = _NON_DIGITS.sub("", value or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def licence_key(value: str | None) -> str:
    """A licence (or medical card) number as compared: upper case, without spaces or dashes."""
    return number_key(value)


def text_key(value: str) -> str:
    """A name or an email as compared: lower case, without surrounding spaces."""
    return value.strip().lower()


# The canonical fields a POS owns, in one order: syncs write them, the admin shows them read-only.
POS_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
    "gender",
    "drivers_license",
    "drivers_license_expiration",
    "medical_card_number",
    "medical_card_expiration",
    "customer_type",
    "active",
    "banned",
    "merged_into_customer_id",
    "notes",
    "street",
    "city",
    "state",
    "postal_code",
    "loyalty_points",
    "pos_created_at",
    "pos_updated_at",
)


class CustomerType(models.TextChoices):
    RECREATIONAL = "recreational", "Recreational"
    MEDICAL = "medical", "Medical"


class Gender(models.TextChoices):
    MALE = "M", "Male"
    FEMALE = "F", "Female"
    OTHER = "X", "Other / non-binary"
    UNKNOWN = "", "Unknown"


# The conditions of the partial blind-index indexes. A lookup repeats its index's condition (licence_index_in):
# SQLite uses a partial index only for a query whose WHERE holds the index's condition term for term.
LICENCE_HELD = Q(drivers_license_index__gt="")
CARD_HELD = Q(medical_card_number_index__gt="")


def licence_index_in(indexes: Sequence[str]) -> Q:
    """Customers whose licence's blind index is one of `indexes` (served by the partial customer_licence_held)."""
    return Q(drivers_license_index__in=indexes) & LICENCE_HELD


def card_index_in(indexes: Sequence[str]) -> Q:
    """Customers whose card number's blind index is one of `indexes` (served by customer_card_held)."""
    return Q(medical_card_number_index__in=indexes) & CARD_HELD


class CustomerQuerySet(models.QuerySet["Customer"]):
    """Named, side-effect-free filters; each is served by an index."""

    def active(self) -> CustomerQuerySet:
        return self.filter(active=True)

    def for_store(self, store: Store) -> CustomerQuerySet:
        return self.filter(store=store)

    def name_like(self, text: str) -> CustomerQuerySet:
        """Customers whose first or last name starts with each word of `text`, ignoring case."""
        words = [word.lower() for word in text.split()]
        if not words:
            return self
        qs = self.alias(_fn=Lower("first_name"), _ln=Lower("last_name"))
        for word in words:
            qs = qs.filter(Q(_fn__startswith=word) | Q(_ln__startswith=word))
        return qs

    def first_name_equal(self, name: str) -> CustomerQuerySet:
        return self.alias(_first=Lower("first_name")).filter(_first=text_key(name))

    def last_name_equal(self, name: str) -> CustomerQuerySet:
        return self.alias(_last=Lower("last_name")).filter(_last=text_key(name))

    def email_equal(self, email: str) -> CustomerQuerySet:
        return self.alias(_email=Lower("email")).filter(_email=text_key(email))

    def phone_equal(self, phone: str) -> CustomerQuerySet:
        digits = phone_digits(phone)
        return self.filter(phone=digits) if digits else self.none()

    def birthday_on(self, birthday: date) -> CustomerQuerySet:
        return self.filter(birthday=birthday)

    def licence_equal(self, licence: str) -> CustomerQuerySet:
        """Customers with this licence number (as compared: licence_key), through its blind index; during a
        rotation of the index key, under the old key or the new."""
        indexes = licence_indexes(licence)
        return self.filter(licence_index_in(indexes)) if indexes else self.none()

    def card_number_equal(self, card: str) -> CustomerQuerySet:
        """Customers with this medical card number (compared like a licence), through its blind index."""
        indexes = card_indexes(card)
        return self.filter(card_index_in(indexes)) if indexes else self.none()

    def active_equal(self, active: bool) -> CustomerQuerySet:
        """Active customers (True) or inactive ones (False)."""
        return self.filter(active=active)

    def banned_equal(self, banned: bool) -> CustomerQuerySet:
        """Customers the POS bans (True) or does not (False)."""
        return self.filter(banned=banned)

    def modified_after(self, when: Any) -> CustomerQuerySet:
        return self.filter(pos_updated_at__gt=when)

    def unseen_since(self, mark: datetime) -> CustomerQuerySet:
        """Customers held since before `mark` whom no write has stamped since (the POS did not list them)."""
        return self.filter(created_at__lt=mark).filter(Q(synced_at__lt=mark) | Q(synced_at__isnull=True))

    def customer_id_equal(self, customer_id: str) -> CustomerQuerySet:
        """Customers with this POS id (one per store at most)."""
        return self.filter(customer_id=customer_id.strip())

    def search(self, text: str) -> CustomerQuerySet:
        """Free text: an email address, a phone number (7+ digits) or the starts of names."""
        text = text.strip()
        if "@" in text:
            return self.email_equal(text)
        digits = phone_digits(text)
        if len(digits) >= 7 and len(digits) >= len(text.replace(" ", "")) * 0.6:
            return self.phone_equal(text)
        return self.name_like(text) if text else self.none()


class Customer(models.Model):
    """A store's customer as its POS knows it; the POS is the source of truth for these fields."""

    # No index of its own: the unique (store, customer_id) constraint leads with the store and serves it.
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="customers", db_index=False)
    customer_id = models.CharField(max_length=64, help_text="The POS's own id for this customer.")
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    email = models.CharField(max_length=254, blank=True, help_text="As the POS gave it (it may be malformed).")
    phone = models.CharField(max_length=20, blank=True, help_text="Digits only.")
    birthday = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=1, choices=Gender.choices, blank=True)
    # Encrypted at rest (customers.fields, customers.crypto); looked up by their blind indexes below.
    drivers_license = EncryptedTextField(purpose=LICENCE_PURPOSE, max_length=64, blank=True)
    drivers_license_expiration = models.DateField(null=True, blank=True)
    medical_card_number = EncryptedTextField(purpose=CARD_PURPOSE, max_length=64, blank=True)
    medical_card_expiration = models.DateField(null=True, blank=True)
    customer_type = models.CharField(max_length=20, choices=CustomerType.choices, default=CustomerType.RECREATIONAL)
    active = models.BooleanField(default=True)
    banned = models.BooleanField(default=False, help_text="Banned at the POS (false where the vendor has no ban flag).")
    merged_into_customer_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The POS merged this customer into the one with this POS id (same store): inactive here.",
    )
    notes = models.TextField(blank=True)
    street = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=120, blank=True)
    state = models.CharField(max_length=64, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    loyalty_points = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal(0))
    pos_created_at = models.DateTimeField(null=True, blank=True)
    pos_updated_at = models.DateTimeField(null=True, blank=True, help_text="The POS's own last-modified time.")
    raw = EncryptedJSONField(
        purpose=RAW_PURPOSE, default=dict, blank=True, help_text="The vendor's JSON, as received (encrypted at rest)."
    )
    # Computed on save (and by the writer): keyed blind indexes of the two numbers, a keyed digest of the three
    # encrypted values (what the writer compares to tell a changed record), and the id of the index key they
    # were computed with (rotate_pii_keys re-indexes the rows made with another).
    drivers_license_index = BlindIndexField(source="drivers_license", purpose=LICENCE_PURPOSE)
    medical_card_number_index = BlindIndexField(source="medical_card_number", purpose=CARD_PURPOSE)
    pii_digest = PiiDigestField()
    pii_index_key = IndexKeyIdField()
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        # Staff see licence and medical card numbers (and the vendor JSON's copies) masked until they press
        # "Reveal", which needs this and is audited (customers.AccessEvent).
        permissions = [
            ("reveal_customer_pii", "Can reveal licence and medical card numbers"),
            # Erasure (customers.erasure) removes the person from the mirror for good: its own permission.
            ("erase_customer", "Can erase a customer from the mirror"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["store", "customer_id"], name="customer_unique_per_store"),
        ]
        # Name lookups have their own indexes per database (migrations 0002-0004): pattern-ops indexes on
        # PostgreSQL serve both equality and prefix search; SQLite gets plain LOWER() indexes. Each index
        # slows every sync write, so none is kept twice.
        indexes = [
            models.Index(Lower("email"), name="customer_email_ci"),
            models.Index(fields=["phone"], name="customer_phone"),
            models.Index(fields=["birthday", "id"], name="customer_birthday_id"),
            # Partial: most customers have no card number and some no licence; their "" is never looked up.
            models.Index(fields=["drivers_license_index"], name="customer_licence_held", condition=LICENCE_HELD),
            models.Index(fields=["medical_card_number_index"], name="customer_card_held", condition=CARD_HELD),
            models.Index(fields=["store", "pos_updated_at"], name="customer_store_updated"),
            # The API pages by id, within a store or across all: keyset pages stay cheap however deep.
            models.Index(fields=["store", "id"], name="customer_store_id"),
            models.Index(fields=["customer_id"], name="customer_pos_id"),
            models.Index(fields=["pos_updated_at"], name="customer_updated"),
            models.Index(fields=["id"], condition=Q(active=False), name="customer_inactive"),
            models.Index(fields=["id"], condition=Q(banned=True), name="customer_banned"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip() or "(no name)"
        return f"{name} · {self.customer_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and _ENCRYPTED_SOURCES.intersection(update_fields):
            kwargs["update_fields"] = {*update_fields, *_DERIVED}  # the indexes follow what they are made of
        super().save(*args, **kwargs)

    def to_peak_customer(self) -> dict[str, Any]:
        """The one canonical representation the platform uses; the API returns exactly this."""
        store = self.store
        return peak_customer((*(getattr(self, name) for name in PEAK_COLUMNS), store.catalog_id, store.pos_vendor))


_ENCRYPTED_SOURCES = frozenset({"drivers_license", "medical_card_number", "raw"})
_DERIVED = ("drivers_license_index", "medical_card_number_index", "pii_digest", "pii_index_key")


# What the canonical representation reads, in the order peak_customer unpacks a row: these columns of a customer
# (every POS field, our id and the last sync time), then its store's catalog_id and pos_vendor. Lists read exactly
# these as plain rows (customers.selectors), which costs far less than model instances.
PEAK_COLUMNS: tuple[str, ...] = ("id", "customer_id", *POS_FIELDS, "synced_at")
PEAK_KEYS: tuple[str, ...] = (*PEAK_COLUMNS, "catalog_id", "pos_vendor")


def peak_customer(row: Sequence[Any]) -> dict[str, Any]:
    """The canonical representation of a customer from a row of PEAK_KEYS. Dates and times may be objects or
    already in their final text (formatted by the database: customers.selectors.PeakDate, PeakTimestamp)."""
    (
        pk, customer_id, first_name, last_name, email, phone, birthday, gender, drivers_license,
        drivers_license_expiration, medical_card_number, medical_card_expiration, customer_type, active, banned,
        merged_into_customer_id, notes, street, city, state, postal_code, loyalty_points, pos_created_at,
        pos_updated_at, synced_at,
        catalog_id, pos_vendor,
    ) = row  # fmt: skip
    return {
        "id": pk,
        "customer_id": customer_id,
        "catalog_id": catalog_id,
        "pos_vendor": pos_vendor,
        "first_name": first_name,
        "last_name": last_name,
        "email": email or None,
        "phone": phone or None,
        "birthday": _iso(birthday),
        "gender": gender or None,
        "drivers_license": drivers_license or None,
        "drivers_license_expiration": _iso(drivers_license_expiration),
        "medical_card_number": medical_card_number or None,
        "medical_card_expiration": _iso(medical_card_expiration),
        "customer_type": customer_type,
        "active": active,
        "banned": banned,
        "merged_into_customer_id": merged_into_customer_id or None,
        "address": {"street": street, "city": city, "state": state, "postal_code": postal_code},
        "loyalty_points": _number(loyalty_points),
        "notes": notes,
        "pos_created_at": iso_timestamp(pos_created_at),
        "pos_updated_at": iso_timestamp(pos_updated_at),
        "synced_at": iso_timestamp(synced_at),
    }


def _iso(value: date | str | None) -> str | None:
    """YYYY-MM-DD; text already in that form (formatted by the database, see customers.selectors.PeakDate) as it is."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def iso_timestamp(value: Any) -> str | None:
    """The one format of times in answers: ISO 8601 (RFC 3339) in UTC, to the second (truncated), with a "Z":
    2026-11-24T10:00:04Z. Text already in that form (formatted by the database, see
    customers.selectors.PeakTimestamp) as it is."""
    if value is None or isinstance(value, str):
        return value
    return str(value.astimezone(UTC).isoformat(timespec="seconds")).replace("+00:00", "Z")


def _number(value: Decimal | int | float | None) -> int | float:
    if value is None:
        return 0
    d = Decimal(value)
    return int(d) if d == d.to_integral_value() else float(d)


class RecordSource(models.TextChoices):
    """What handed the mirror's writer a POS record."""

    SYNC = "sync", "Sync"
    LOOKUP = "lookup", "Live lookup"
    CREATE = "create", "Create"


class RejectedRecord(models.Model):
    """A POS record the mirror's writer (customers.writer) could not store, kept with the reason and the payload
    for staff to see; the rest of what came with it was written."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="rejected_records")
    source = models.CharField(max_length=20, choices=RecordSource.choices)
    # The run that fetched it, where it came in one (a sync: syncs.CustomerSync.record_errors). A generic relation,
    # so that this app needs no knowledge of the apps that write through it (they depend on us, not the reverse).
    origin_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    origin_id = models.PositiveBigIntegerField(null=True, blank=True)
    origin = GenericForeignKey("origin_type", "origin_id")
    customer_id = models.CharField(max_length=64, blank=True, help_text="The POS id, where the record had one.")
    reason = models.TextField()
    payload = EncryptedJSONField(
        purpose=REJECTED_PAYLOAD_PURPOSE,
        null=True,
        blank=True,
        help_text="The record as the POS sent it (encrypted at rest: it holds licence and card numbers).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "rejected POS record"
        indexes = [models.Index(fields=["origin_type", "origin_id", "id"], name="rejected_record_origin")]

    def __str__(self) -> str:
        return f"{self.customer_id or '?'}: {self.reason[:80]}"


class IdempotencyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class IdempotencyRecord(models.Model):
    """A create request made with an Idempotency-Key: a retry replays `response` instead of creating again."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the request body, canonicalised.")
    status = models.CharField(max_length=20, choices=IdempotencyStatus.choices, default=IdempotencyStatus.IN_PROGRESS)
    response = EncryptedJSONField(
        purpose=IDEMPOTENCY_RESPONSE_PURPOSE,
        null=True,
        blank=True,
        help_text="The outcome to replay, once completed (encrypted at rest: the customer as created).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Until when the request working on it holds the key (settings.IDEMPOTENCY_LEASE_SECONDS from when it began):
    # a request that died mid-create leaves it in progress, and a retry takes it over once this has passed.
    # Null (kept before leases existed): created_at plus the lease.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Two concurrent requests with one key: the second insert fails, and that request gets 409.
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique_per_api_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class AccessChannel(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"


# On PostgreSQL the access events' GIN index holds their customers' ids in blocks of 2**6 (migration 0015).
ID_BLOCK_SHIFT = 6


class CustomerIdsField(models.JSONField):
    """A JSON list of customer ids (AccessEvent.customer_ids), with the lookup `includes`: the rows whose list
    holds one id (an int), on PostgreSQL (jsonb `@>`, served by the GIN index of the ids' blocks) and SQLite
    (`json_each`)."""


@CustomerIdsField.register_lookup
class IncludesId(models.Lookup):
    """`customer_ids__includes=42`: the list holds 42 (a null in it, an erased customer, matches nothing)."""

    lookup_name = "includes"
    prepare_rhs = False

    def get_prep_lookup(self) -> int:
        # A string from an admin URL too; anything but an id fails here (ValueError), before any SQL.
        value = int(self.rhs)
        if not -(2**63) <= value < 2**63:
            raise ValueError("Not a customer id.")
        return value

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[str | int, ...]]:
        lhs, params = self.process_lhs(compiler, connection)
        # The column's SQL is Django's; the id is a parameter.
        exists = f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = %s)"  # noqa: S608
        return exists, (*params, self.rhs)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[str | int, ...]]:
        # The index finds the rows listing an id of the same block (`access_id_blocks`, migration 0015: one entry
        # for a run of neighbouring ids); of those, the rows listing this one.
        lhs, params = self.process_lhs(compiler, connection)
        block, exact = f"[{self.rhs >> ID_BLOCK_SHIFT}]", f"[{self.rhs}]"
        return f"(access_id_blocks({lhs}) @> %s::jsonb AND {lhs} @> %s::jsonb)", (*params, block, *params, exact)


class AccessEvent(models.Model):
    """Someone saw customers' personal data unmasked: an API answer to a key with the `pii` scope, or the admin's
    customer page. One row per request, however many customers it showed (their ids in `customer_ids`; "who saw
    this customer" is `customer_ids__includes`, on PostgreSQL served by a GIN index of the ids' blocks, migration
    0015). Which fields (of any of them), never their values.

    Its foreign keys are not constraints in the database (`db_constraint=False`): a row costs no lock on the key
    and no check; deleting a key or a user through the ORM still sets theirs to NULL. Customer ids are no key at
    all: erasure nulls the erased one's in the lists (customers.pii_access.access_events_unlink); a customer
    deleted otherwise (with their store) leaves an id that names no row."""

    customer_ids = CustomerIdsField(
        default=list, help_text="The customers shown: our ids, in the answer's order; null for one since erased."
    )
    channel = models.CharField(max_length=10, choices=AccessChannel.choices)
    api_key = models.ForeignKey(
        ApiKey,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # access_key_at
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # access_user_at
    )
    fields = models.CharField(max_length=200, help_text="The personal fields shown, comma-separated.")
    request_id = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=200, blank=True, help_text="The request's path, without its query.")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "personal data access"
        verbose_name_plural = "personal data accesses"
        ordering = ["-at", "-id"]
        # Partial: an API event has no user, an admin one no key. (PostgreSQL's GIN index of customer_ids' blocks
        # is made by migration 0015 alone: SQLite has no such index.)
        indexes = [
            models.Index(fields=["api_key", "-at"], name="access_key_at", condition=Q(api_key__isnull=False)),
            models.Index(fields=["user", "-at"], name="access_user_at", condition=Q(user__isnull=False)),
            models.Index(fields=["at"], name="access_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.fields} at {self.at:%Y-%m-%d %H:%M:%S}"

    @property
    def who(self) -> str:
        if self.api_key_id is not None:
            return f"API key {self.api_key}" if self.api_key else "API key (deleted)"
        if self.user_id is not None:
            return f"staff {self.user}" if self.user else "staff (deleted)"
        return "—"


class ErasureSuppression(models.Model):
    """A store's POS id erased from the mirror: the writer (customers.writer) skips its records, so later syncs,
    live lookups and creates do not bring the person back. Keyed by a blind index of ``<store id>:<POS id>``
    (customers.erasure), never the id in clear; `sealed_ref` holds the same text encrypted, so that
    rotate_pii_keys can re-index under a new index key (the old one may then go)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", db_index=False)
    index = models.CharField(max_length=64, help_text="Blind index of the store and POS id (customers.erasure).")
    sealed_ref = models.TextField(help_text="The store and POS id, encrypted: what a re-index reads.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "erasure suppression"
        # The writer looks a page's indexes up in one statement: this unique B-tree (store, index) serves it.
        constraints = [models.UniqueConstraint(fields=["store", "index"], name="erasure_suppression_unique")]

    def __str__(self) -> str:
        return f"suppression #{self.pk}"


class CustomerErasure(models.Model):
    """A person erased from the mirror: where, when, by whom and how much was removed; never who (no name or
    id). The suppression that keeps them out is linked."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    via = models.CharField(max_length=200, help_text='"admin", or "command (OS user …)".')
    suppression = models.ForeignKey(
        ErasureSuppression, on_delete=models.SET_NULL, null=True, blank=True, related_name="erasures"
    )
    counts = models.JSONField(default=dict, help_text="How many of each kind of record were removed or scrubbed.")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "customer erasure"

    def __str__(self) -> str:
        return f"erasure #{self.pk} at {self.at:%Y-%m-%d %H:%M:%S}"
