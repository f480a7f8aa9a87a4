"""The store admin: POS connection with write-only secrets, sync controls, recent syncs.

It lives with the syncs, not in `stores`, because a store's page is its sync control panel: it shows the
store's syncs and starts them, and dependencies point from syncs to stores, never back. Registered by
`syncs.admin`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from pos_integrations.errors import PosError
from pos_integrations.vendors import CredentialsError
from stores.admin import PosVendorFilter, ReadOnlyAdminMixin
from stores.forms import CREDENTIAL_FIELDS, StoreAdminForm, credential_label, credential_vendors
from stores.models import Store
from syncs.dashboard import ago, format_duration, store_with_sync_state
from syncs.models import CustomerSync, SyncKind, SyncTrigger

RECENT_SYNCS = 10


def _when(value: datetime | None) -> str:
    return date_format(localtime(value), "DATETIME_FORMAT") if value else ""


def status_badge(status: str | None, label: str | None = None) -> str:
    """A coloured sync status (styles in templates/admin/base_site.html)."""
    if not status:
        return format_html('<span class="cf-status cf-status--none">{}</span>', "never synced")
    return format_html('<span class="cf-status cf-status--{}">{}</span>', status, label or status.replace("_", " "))


CREDENTIALS_HELP = (
    "Secrets are encrypted at rest and never shown back. A blank field keeps the stored value; keys the chosen "
    "POS does not use are dropped. Each field says which POS uses it."
)


class RecentSyncFormSet(BaseInlineFormSet):
    """Only the store's latest syncs: the full history is one click away in the sync list."""

    def get_queryset(self) -> Any:
        if not hasattr(self, "_recent"):
            self._recent = list(super().get_queryset()[:RECENT_SYNCS])
            for sync in self._recent:
                # Each row's label is str(sync), which reads the store: reuse ours rather than one query a row.
                sync.store = self.instance
        return self._recent


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """An inline that only shows rows: the parent's page never adds, changes or deletes them."""

    extra = 0
    max_num = 0
    can_delete = False


class RecentSyncInline(ReadOnlyInline):
    model = CustomerSync
    formset = RecentSyncFormSet
    verbose_name_plural = f"Recent syncs (latest {RECENT_SYNCS})"
    readonly_fields = (
        "sync_link",
        "status_display",
        "kind",
        "trigger",
        "started_at",
        "duration_display",
        "counts",
        "error",
    )
    fields = readonly_fields
    ordering = ["-created_at", "-id"]

    @admin.display(description="sync")
    def sync_link(self, obj: CustomerSync) -> str:
        url = reverse("admin:syncs_customersync_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)

    @admin.display(description="status")
    def status_display(self, obj: CustomerSync) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="duration")
    def duration_display(self, obj: CustomerSync) -> str:
        return format_duration(obj.duration)

    @admin.display(description="fetched / created / updated / invalid")
    def counts(self, obj: CustomerSync) -> str:
        return f"{obj.fetched} / {obj.created} / {obj.updated} / {obj.invalid}"

    @admin.display(description="error")
    def error(self, obj: CustomerSync) -> str:
        return obj.error_message[:140]


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    form = StoreAdminForm
    change_form_template = "admin/stores/store/change_form.html"
    list_display = [
        "name",
        "catalog_id",
        "vendor",
        "sync_schedule",
        "last_sync",
        "last_success_at",
        "customers_link",
    ]
    list_filter = [("pos_vendor", PosVendorFilter), "sync_enabled"]
    search_fields = ["name", "catalog_id"]
    readonly_fields = ["created_at", "updated_at", "credential_keys", "last_sync", "last_success_at", "customers_link"]
    inlines = [RecentSyncInline]
    actions = ["sync_now", "full_resync", "test_connection"]
    fieldsets = [
        (None, {"fields": ["name", "catalog_id"]}),
        ("POS connection", {"fields": ["pos_vendor", "pos_base_url", "time_zone", "credential_keys"]}),
        (
            "POS credentials (write-only)",
            {"fields": [*CREDENTIAL_FIELDS, "clear_credentials"], "description": CREDENTIALS_HELP},
        ),
        ("Sync", {"fields": ["sync_enabled", "sync_interval_minutes", "last_sync", "last_success_at"]}),
        ("History", {"fields": ["customers_link", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Store]:
        return store_with_sync_state(super().get_queryset(request))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, Any]:
        # A store's syncs, rejected records and customers are never deleted on their own (their admins say
        # so), but a deleted store takes them along: that needs only the right to delete the store.
        from customers.models import Customer, RejectedRecord

        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        own = {m._meta.verbose_name for m in (CustomerSync, RejectedRecord, Customer)}
        return deleted, counts, set(perms_needed) - own, protected

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # Which vendors use each credential field: the form's script shows only the chosen vendor's.
        context["credential_vendors"] = {f"cred_{key}": vendors for key, vendors in credential_vendors().items()}
        return super().render_change_form(request, context, *args, **kwargs)

    # --- columns ------------------------------------------------------------------------------------

    @admin.display(description="POS vendor", ordering="pos_vendor")
    def vendor(self, obj: Store) -> str:
        return obj.get_pos_vendor_display()

    @admin.display(description="sync", ordering="sync_interval_minutes")
    def sync_schedule(self, obj: Store) -> str:
        return f"every {obj.sync_interval_minutes} min" if obj.sync_enabled else "off"

    @admin.display(description="last sync", ordering="last_sync_at")
    def last_sync(self, obj: Store) -> str:
        sync_id = getattr(obj, "last_sync_id", None)
        badge = status_badge(getattr(obj, "last_sync_status", None))
        if sync_id is None:
            return badge
        url = reverse("admin:syncs_customersync_change", args=[sync_id])
        failures = getattr(obj, "failures_in_row", 0)
        return format_html(
            '<a href="{}">{}</a><br><small title="{}">{}</small>{}',
            url,
            badge,
            _when(getattr(obj, "last_sync_at", None)),
            ago(getattr(obj, "last_sync_at", None)),
            format_html("<br><small>{} failures in a row</small>", failures) if failures > 1 else "",
        )

    @admin.display(description="last success", ordering="last_success_at")
    def last_success_at(self, obj: Store) -> str:
        when = getattr(obj, "last_success_at", None)
        if when is None:
            return "never"
        return format_html('<span title="{}">{}</span>', _when(when), ago(when))

    @admin.display(description="customers", ordering="customer_count")
    def customers_link(self, obj: Store) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:customers_customer_changelist") + f"?store__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, getattr(obj, "customer_count", 0))

    @admin.display(description="stored credentials")
    def credential_keys(self, obj: Store) -> str:
        # Names only: the values never leave the server.
        return ", ".join(sorted(credential_label(key) for key in obj.pos_credentials)) or "none"

    # --- saving keeps the django-q2 schedule in step -------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Store, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        obj.schedule_customer_sync()

    def delete_model(self, request: HttpRequest, obj: Store) -> None:
        self._delete_schedules([obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        self._delete_schedules(list(queryset))
        super().delete_queryset(request, queryset)

    @staticmethod
    def _delete_schedules(stores: list[Store]) -> None:
        from django_q.models import Schedule

        # The schedule's name derives from the pk, which is gone after the delete: remove it first.
        Schedule.objects.filter(name__in=[s.schedule_name for s in stores]).delete()

    # --- actions ------------------------------------------------------------------------------------

    def has_sync_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def _trigger(self, request: HttpRequest, stores: QuerySet[Store] | list[Store], kind: str) -> None:
        from syncs.services import sync_trigger

        for store in stores:
            sync, created = sync_trigger(store=store, kind=kind, trigger=SyncTrigger.ADMIN)
            url = reverse("admin:syncs_customersync_change", args=[sync.pk])
            if created:
                self.message_user(
                    request,
                    format_html('{} sync <a href="{}">#{}</a> of {} queued.', kind.capitalize(), url, sync.pk, store),
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    format_html(
                        '{} already has sync <a href="{}">#{}</a> {}; not starting another.',
                        store,
                        url,
                        sync.pk,
                        sync.get_status_display().lower(),
                    ),
                    messages.WARNING,
                )

    @admin.action(description="Sync now (incremental)", permissions=["sync"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        self._trigger(request, queryset, SyncKind.INCREMENTAL)

    @admin.action(description="Full resync", permissions=["sync"])
    def full_resync(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        self._trigger(request, queryset, SyncKind.FULL)

    @admin.action(description="Test POS connection", permissions=["sync"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        for store in queryset:
            self._check_connection(request, store)

    def _check_connection(self, request: HttpRequest, store: Store) -> None:
        try:
            result = store.pos_client().check_connection()
        except (PosError, CredentialsError) as exc:
            # PosError messages are written to be shown: no secrets, no customer data.
            self.message_user(request, f"{store}: connection failed — {exc}", messages.ERROR)
        else:
            self.message_user(request, f"{store}: connection OK — {result}", messages.SUCCESS)

    # --- the same actions as buttons on a store's page -------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        def view(name: str, func: Any) -> URLPattern:
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(require_POST(func)),
                name=f"stores_store_{name.replace('-', '_')}",
            )

        return [
            view("sync-now", self.sync_now_view),
            view("full-resync", self.full_resync_view),
            view("test-connection", self.test_connection_view),
            *super().get_urls(),
        ]

    def _button_store(self, request: HttpRequest, object_id: str) -> Store:
        store = get_object_or_404(Store, pk=object_id)
        if not self.has_sync_permission(request, store):
            raise PermissionDenied
        return store

    def _back(self, store: Store) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:stores_store_change", args=[store.pk]))

    def sync_now_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        store = self._button_store(request, object_id)
        self._trigger(request, [store], SyncKind.INCREMENTAL)
        return self._back(store)

    def full_resync_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        store = self._button_store(request, object_id)
        self._trigger(request, [store], SyncKind.FULL)
        return self._back(store)

    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        store = self._button_store(request, object_id)
        self._check_connection(request, store)
        return self._back(store)
