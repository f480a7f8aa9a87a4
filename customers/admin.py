"""Admin for customers: a read-only window on the POS mirror, searchable the way staff ask for people, and the
POS records the mirror could not store."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from customers.models import POS_FIELDS, Customer, RejectedRecord, licence_key, phone_digits

POS_NOTE = (
    "The POS is the source of truth: these fields are overwritten by every sync. "
    "Change them in the store's POS, then run a sync."
)
MIN_PHONE_DIGITS = 4


def mask(value: str, visible: int = 4) -> str:
    """All but the last `visible` characters hidden: lists must not spread licence numbers."""
    if not value:
        return ""
    if len(value) <= visible:
        return "•" * len(value)
    return "•" * (len(value) - visible) + value[-visible:]


def format_phone(digits: str) -> str:
    if len(digits) == 10:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return digits


class MedicalCardFilter(admin.SimpleListFilter):
    title = "medical card"
    parameter_name = "medical_card"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("expired", "Expired"), ("valid", "Valid"), ("none", "No card")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer] | None:
        today = timezone.localdate()
        if self.value() == "expired":
            return queryset.filter(medical_card_expiration__lt=today)
        if self.value() == "valid":
            return queryset.filter(medical_card_expiration__gte=today)
        if self.value() == "none":
            return queryset.filter(medical_card_number="")
        return None


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "customer_id",
        "store_link",
        "email",
        "phone_display",
        "customer_type",
        "licence_masked",
        "medical_card_masked",
        "active",
        "pos_updated_at",
    ]
    list_display_links = ["name", "customer_id"]
    list_filter = ["store", "store__pos_vendor", "customer_type", "active", MedicalCardFilter]
    # Names and email by substring; phone and licence are matched on their normalised form in
    # get_search_results, so "(555) 123-4567", "+1 555.123.4567" and "5551234567" all find the same person.
    search_fields = ["first_name", "last_name", "email", "=customer_id"]
    search_help_text = "Name, email, phone (any format), POS id, driver's licence or medical card number."
    list_select_related = ["store"]
    list_per_page = 50
    show_full_result_count = False
    ordering = ["-id"]
    readonly_fields = [
        "store_link",
        "customer_id",
        *POS_FIELDS,
        "raw_json",
        "synced_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (
            "Owned by the POS",
            {
                "description": POS_NOTE,
                "fields": [
                    ("store_link", "customer_id"),
                    ("first_name", "last_name"),
                    ("email", "phone"),
                    ("birthday", "gender"),
                    ("customer_type", "active"),
                    ("drivers_license", "drivers_license_expiration"),
                    ("medical_card_number", "medical_card_expiration"),
                    "loyalty_points",
                    "notes",
                    ("street", "city"),
                    ("state", "postal_code"),
                    ("pos_created_at", "pos_updated_at"),
                ],
            },
        ),
        ("Vendor JSON, as received", {"fields": ["raw_json"]}),
        ("Mirror", {"fields": ["synced_at", "created_at", "updated_at"]}),
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        base = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return queryset, may_have_duplicates
        extra = Q()
        digits = phone_digits(term)
        # Only when the term is mostly a phone number: "Apt 4" must not match every phone with a 4.
        if len(digits) >= MIN_PHONE_DIGITS and len(digits) * 2 >= len(term.replace(" ", "")):
            extra |= Q(phone__contains=digits)
        key = licence_key(term)
        if key:
            for value in {key, term}:
                extra |= Q(drivers_license__iexact=value) | Q(medical_card_number__iexact=value)
        if extra:
            queryset = queryset | base.filter(extra)
        return queryset, may_have_duplicates

    # --- columns ------------------------------------------------------------------------------------

    @admin.display(description="name", ordering="last_name")
    def name(self, obj: Customer) -> str:
        return f"{obj.first_name} {obj.last_name}".strip() or "(no name)"

    @admin.display(description="store", ordering="store__name")
    def store_link(self, obj: Customer) -> str:
        url = reverse("admin:stores_store_change", args=[obj.store_id])
        return format_html('<a href="{}">{}</a>', url, obj.store.name)

    @admin.display(description="phone", ordering="phone")
    def phone_display(self, obj: Customer) -> str:
        return format_phone(obj.phone)

    @admin.display(description="driver's licence")
    def licence_masked(self, obj: Customer) -> str:
        return mask(obj.drivers_license)

    @admin.display(description="medical card")
    def medical_card_masked(self, obj: Customer) -> str:
        return mask(obj.medical_card_number)

    @admin.display(description="raw vendor JSON")
    def raw_json(self, obj: Customer) -> str:
        return format_html('<pre class="cf-json">{}</pre>', json.dumps(obj.raw, indent=2, sort_keys=True))

    # --- the mirror is read-only here ---------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Customers come from the POS (sync or the API's create), never typed in here.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Every field belongs to the POS or the sync; an edit here would be overwritten by the next sync.
        return False


def pretty_json(value: Any) -> str:
    """A JSON value, indented, for a read-only admin field."""
    return format_html('<pre class="cf-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, default=str))


def origin_link(obj: RejectedRecord) -> str:
    """A link to the run that fetched a rejected record (a sync), or what handed it over otherwise."""
    if obj.origin_type is None or obj.origin_id is None:
        return obj.get_source_display()
    kind = obj.origin_type
    url = reverse(f"admin:{kind.app_label}_{kind.model}_change", args=[obj.origin_id])
    return format_html('<a href="{}">{} #{}</a>', url, kind.name, obj.origin_id)


# Evidence of what the POS sent, for staff to read: never added or edited here.
@admin.register(RejectedRecord)
class RejectedRecordAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "store_link", "source", "origin_display", "customer_id", "reason"]
    list_display_links = ["id", "created_at"]
    list_filter = ["source", "store", "store__pos_vendor"]
    list_select_related = ["store", "origin_type"]
    search_fields = ["=customer_id", "reason"]
    search_help_text = "POS id (exact) or words of the reason."
    show_full_result_count = False
    ordering = ["-id"]
    readonly_fields = (
        "store_link",
        "source",
        "origin_display",
        "customer_id",
        "reason",
        "payload_pretty",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="store", ordering="store__name")
    def store_link(self, obj: RejectedRecord) -> str:
        url = reverse("admin:stores_store_change", args=[obj.store_id])
        return format_html('<a href="{}">{}</a>', url, obj.store.name)

    @admin.display(description="from")
    def origin_display(self, obj: RejectedRecord) -> str:
        return origin_link(obj)

    @admin.display(description="payload")
    def payload_pretty(self, obj: RejectedRecord) -> str:
        return pretty_json(obj.payload)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser  # type: ignore[union-attr]
