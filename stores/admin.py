"""Admin for API keys (the store admin, which shows and starts syncs, is `syncs.store_admin`)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from stores.models import ApiKey


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
