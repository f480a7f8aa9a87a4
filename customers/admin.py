"""Admin for customers: POS-owned fields are read-only."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from customers.models import Customer

POS_OWNED = [
    "store",
    "customer_id",
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
    "notes",
    "street",
    "city",
    "state",
    "postal_code",
    "loyalty_points",
    "pos_created_at",
    "pos_updated_at",
]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["customer_id", "first_name", "last_name", "email", "phone", "store", "customer_type", "active"]
    list_filter = ["store", "store__pos_vendor", "customer_type", "active"]
    search_fields = ["first_name", "last_name", "email", "phone", "customer_id", "drivers_license"]
    list_select_related = ["store"]
    readonly_fields = [*POS_OWNED, "raw_json", "synced_at", "created_at", "updated_at"]
    exclude = ["raw"]
    show_full_result_count = False

    @admin.display(description="raw vendor JSON")
    def raw_json(self, obj: Customer) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.raw, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Customers come from the POS (sync or the API's create), never typed in here.
        return False
