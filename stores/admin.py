"""Admin for API keys, and the pieces every app's admin shares (the store admin, which shows and starts syncs, is
`syncs.store_admin`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from stores.models import ApiKey, ApiScope


def time_cell(value: datetime | None) -> str:
    """A time in a list column: the admin's format (to the second, with its zone), wrapping only after the date."""
    if value is None:
        return "—"
    date, _, time = date_format(localtime(value), "DATETIME_FORMAT").partition(" ")
    return format_html('{} <span style="white-space: nowrap">{}</span>', date, time)


class ReadOnlyAdminMixin:
    """For a ModelAdmin or an inline whose objects staff only read: never added, changed or deleted here (the
    view permission still shows them)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StoreLinkMixin:
    """A ModelAdmin's `store_link` column (for list_display or readonly_fields): the object's store, linked to
    its page (list_select_related should name the store)."""

    @admin.display(description="store", ordering="store__name")
    def store_link(self, obj: Any) -> str:
        url = reverse("admin:stores_store_change", args=[obj.store_id])
        return format_html('<a href="{}">{}</a>', url, obj.store.name)


class PosVendorFilter(admin.ChoicesFieldListFilter):
    """The list filter on a store's vendor (`store__pos_vendor`), titled in plain words."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "POS vendor"


class ApiKeyForm(forms.ModelForm):
    """The key's scopes as one checkbox each."""

    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Without “pii”, licence and medical card numbers and birthdays are masked in the key's answers.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "all_stores", "stores", "scopes", "revoked_at"]

    def clean_scopes(self) -> list[str]:
        chosen = set(self.cleaned_data["scopes"])
        return [scope for scope in ApiScope.values if scope in chosen]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "all_stores", "scope_list", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["all_stores", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    filter_horizontal = ["stores"]
    fields = ["name", "prefix", "all_stores", "stores", "scopes", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="Scopes")
    def scope_list(self, key: ApiKey) -> str:
        return ", ".join(key.scopes) or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # The secret must be shown exactly once: keys are created with `manage.py create_api_key`.
        return False
