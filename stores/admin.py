"""Admin for stores and API keys."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from stores.forms import CREDENTIAL_FIELDS, StoreAdminForm
from stores.models import ApiKey, Store


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    form = StoreAdminForm
    list_display = ["name", "catalog_id", "pos_vendor", "sync_enabled", "sync_interval_minutes", "customer_count"]
    list_filter = ["pos_vendor", "sync_enabled"]
    search_fields = ["name", "catalog_id"]
    readonly_fields = ["created_at", "updated_at", "credential_keys"]
    fieldsets = [
        (None, {"fields": ["name", "catalog_id"]}),
        ("POS connection", {"fields": ["pos_vendor", "pos_base_url", "credential_keys"]}),
        ("POS credentials (write-only)", {"fields": [*CREDENTIAL_FIELDS, "clear_credentials"]}),
        ("Sync", {"fields": ["sync_enabled", "sync_interval_minutes"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Store]:
        return super().get_queryset(request).annotate(_customer_count=Count("customers"))

    @admin.display(description="customers", ordering="_customer_count")
    def customer_count(self, obj: Store) -> int:
        return getattr(obj, "_customer_count", 0)

    @admin.display(description="stored credentials")
    def credential_keys(self, obj: Store) -> str:
        return ", ".join(sorted(obj.pos_credentials)) or "none"

    def save_model(self, request: HttpRequest, obj: Store, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        obj.schedule_customer_sync()


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "all_stores", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["all_stores", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    filter_horizontal = ["stores"]
    fields = ["name", "prefix", "all_stores", "stores", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # The secret must be shown exactly once: keys are created with `manage.py create_api_key`.
        return False
