"""Admin for API keys (the store admin, which shows and starts syncs, is `syncs.store_admin`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from stores.models import ApiKey


def time_cell(value: datetime | None) -> str:
    """A time in a list column: the admin's format (to the second, with its zone), wrapping only after the date."""
    if value is None:
        return "—"
    date, _, time = date_format(localtime(value), "DATETIME_FORMAT").partition(" ")
    return format_html('{} <span style="white-space: nowrap">{}</span>', date, time)


class PosVendorFilter(admin.ChoicesFieldListFilter):
    """The list filter on a store's vendor (`store__pos_vendor`), titled in plain words."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "POS vendor"


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
