"""Admin for syncs and the records they rejected; history is read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from syncs.models import CustomerSync, SyncRecordError


class SyncRecordErrorInline(admin.TabularInline):
    model = SyncRecordError
    fields = ["customer_id", "reason", "payload"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Sync history is evidence: staff can read it, never edit it.
@admin.register(CustomerSync)
class CustomerSyncAdmin(admin.ModelAdmin):
    list_display = ["id", "store", "status", "kind", "trigger", "started_at", "finished_at", "fetched", "invalid"]
    list_filter = ["status", "kind", "trigger", "store__pos_vendor"]
    search_fields = ["store__name", "store__catalog_id", "error_message"]
    list_select_related = ["store"]
    date_hierarchy = "created_at"
    inlines = [SyncRecordErrorInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SyncRecordError)
class SyncRecordErrorAdmin(admin.ModelAdmin):
    list_display = ["sync", "customer_id", "reason", "created_at"]
    list_select_related = ["sync", "sync__store"]
    search_fields = ["customer_id", "reason"]
    list_filter = ["sync__store"]
    readonly_fields = ["sync", "customer_id", "reason", "payload", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
