"""Admin for syncs (with the records they rejected) and the sync-health dashboard; history is read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.forms import BaseGenericInlineFormSet
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from customers.admin import pretty_json
from customers.models import RejectedRecord
from stores.admin import PosVendorFilter, ReadOnlyAdminMixin, StoreLinkMixin, time_cell
from syncs.choices import UNFINISHED_STATUSES
from syncs.dashboard import CHART_DAYS, changelist_url, format_duration, store_health_list
from syncs.models import CustomerSync, SyncStatus
from syncs.store_admin import status_badge  # also registers the store admin

RECORD_ERRORS_SHOWN = 50

# The index, the header's "Sync health" link and the breadcrumbs lead everywhere; the navigation sidebar's
# 300 px are what the customer and sync lists need to show their key columns on a 1366 px screen.
admin.site.enable_nav_sidebar = False


class FirstRecordErrorsFormSet(BaseGenericInlineFormSet):
    """A sync may reject thousands of records: show the first ones and link to the rest."""

    @classmethod
    def get_default_prefix(cls) -> str:
        return "record_errors"  # the sync's relation, as the page's styles know it

    def get_queryset(self) -> Any:
        if not hasattr(self, "_first"):
            self._first = list(super().get_queryset()[:RECORD_ERRORS_SHOWN])
        return self._first


class RecordErrorInline(ReadOnlyAdminMixin, GenericTabularInline):
    """The POS records the sync could not store (customers.RejectedRecord, with the sync as their origin); only
    shown, as ReadOnlyInline's are (a generic inline, so not one of them)."""

    model = RejectedRecord
    ct_field = "origin_type"
    ct_fk_field = "origin_id"
    # django-stubs narrow a generic inline's formset over InlineModelAdmin's with an ignore of their own.
    formset = FirstRecordErrorsFormSet  # type: ignore[assignment]
    verbose_name_plural = f"Quarantined records (first {RECORD_ERRORS_SHOWN})"
    readonly_fields = ("customer_id", "reason", "payload_pretty")
    fields = readonly_fields
    extra = 0
    max_num = 0
    can_delete = False

    @admin.display(description="payload")
    def payload_pretty(self, obj: RejectedRecord) -> str:
        return pretty_json(obj.payload)


class StatusFilter(admin.SimpleListFilter):
    """Status, with "Failed" first: that is what staff come here for."""

    title = "status"
    parameter_name = "status__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        order = [
            SyncStatus.FAILED,
            SyncStatus.INTERRUPTED,
            SyncStatus.IN_PROGRESS,
            SyncStatus.PENDING,
            SyncStatus.FINISHED,
        ]
        return [(s.value, s.label) for s in order]

    def queryset(self, request: HttpRequest, queryset: QuerySet[CustomerSync]) -> QuerySet[CustomerSync] | None:
        return queryset.filter(status=self.value()) if self.value() else None


# Sync history is evidence: staff can read it and retry a failed run, never edit it.
@admin.register(CustomerSync)
class CustomerSyncAdmin(ReadOnlyAdminMixin, StoreLinkMixin, admin.ModelAdmin):
    change_list_template = "admin/syncs/customersync/change_list.html"
    change_form_template = "admin/syncs/customersync/change_form.html"
    list_display = [
        "sync_id",
        "store_link",
        "status_display",
        "kind_display",
        "started_display",
        "duration_display",
        "counts",
        "error_short",
    ]
    list_display_links = ["sync_id"]
    list_filter = [StatusFilter, "kind", "trigger", ("store__pos_vendor", PosVendorFilter), "store"]
    search_fields = ["=id", "store__name", "store__catalog_id", "error_message"]
    list_select_related = ["store"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["retry"]
    inlines = [RecordErrorInline]
    fieldsets = [
        (None, {"fields": ["store_link", "status_display", "kind", "trigger", "resumed_from_link", "resumed_by_link"]}),
        ("Timing", {"fields": ["created_at", "started_at", "finished_at", "duration_display", "heartbeat_at"]}),
        ("Counts", {"fields": ["pages", "fetched", "created", "updated", "unchanged", "invalid", "deactivated"]}),
        ("Error", {"fields": ["error_type", "error_message", "record_errors_link"]}),
        ("Cursor", {"fields": ["cursor_from", "cursor_bound", "cursor_to", "checkpoint_pretty"]}),
    ]
    readonly_fields = [
        "store_link",
        "status_display",
        "kind",
        "trigger",
        "resumed_from_link",
        "resumed_by_link",
        "created_at",
        "started_at",
        "finished_at",
        "duration_display",
        "heartbeat_at",
        "pages",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "invalid",
        "deactivated",
        "error_type",
        "error_message",
        "record_errors_link",
        "cursor_from",
        "cursor_bound",
        "cursor_to",
        "checkpoint_pretty",
    ]

    # --- columns ------------------------------------------------------------------------------------

    @admin.display(description="sync", ordering="id")
    def sync_id(self, obj: CustomerSync) -> str:
        return f"#{obj.pk}"

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: CustomerSync) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="duration")
    def duration_display(self, obj: CustomerSync) -> str:
        if obj.duration is None and obj.started_at and obj.is_active:
            return f"running for {format_duration(timezone.now() - obj.started_at)}"
        return format_duration(obj.duration)

    @admin.display(description="started at", ordering="started_at")
    def started_display(self, obj: CustomerSync) -> str:
        return time_cell(obj.started_at) if obj.started_at else "not yet"

    @admin.display(description="kind / trigger", ordering="kind")
    def kind_display(self, obj: CustomerSync) -> str:
        return format_html('{}<br><span class="cf-quiet">{}</span>', obj.get_kind_display(), obj.get_trigger_display())

    @admin.display(description="fetched / created / updated / invalid")
    def counts(self, obj: CustomerSync) -> str:
        return f"{obj.fetched} / {obj.created} / {obj.updated} / {obj.invalid}"

    @admin.display(description="error")
    def error_short(self, obj: CustomerSync) -> str:
        text = obj.error_message
        return text if len(text) <= 100 else text[:99] + "…"

    @admin.display(description="resumed from")
    def resumed_from_link(self, obj: CustomerSync) -> str:
        sync_id = getattr(obj, "resumed_from_id", None)
        if sync_id is None:
            return "—"
        url = reverse("admin:syncs_customersync_change", args=[sync_id])
        return format_html('<a href="{}">sync #{}</a> (this sync carried on from its checkpoint)', url, sync_id)

    @admin.display(description="resumed by")
    def resumed_by_link(self, obj: CustomerSync) -> str:
        later = list(obj.resumed_by.order_by("id").values_list("id", flat=True)) if obj.pk else []
        if not later:
            return "—"
        url = "admin:syncs_customersync_change"
        links = format_html_join(", ", '<a href="{}">sync #{}</a>', ((reverse(url, args=[i]), i) for i in later))
        return format_html("{} (carried on from this sync's checkpoint)", links)

    @admin.display(description="quarantined records")
    def record_errors_link(self, obj: CustomerSync) -> str:
        origin_type = ContentType.objects.get_for_model(CustomerSync).pk
        url = reverse("admin:customers_rejectedrecord_changelist") + f"?origin_type={origin_type}&origin_id={obj.pk}"
        return format_html('<a href="{}">all rejected records of this sync</a> ({} invalid)', url, obj.invalid)

    @admin.display(description="checkpoint")
    def checkpoint_pretty(self, obj: CustomerSync) -> str:
        return pretty_json(obj.checkpoint)

    # --- read-only history ----------------------------------------------------------------------------
    # (ReadOnlyAdminMixin: never deleted on its own; deleting a store takes its syncs along, the store admin.)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- retry --------------------------------------------------------------------------------------

    def has_retry_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("syncs.add_customersync")

    def _retry(self, request: HttpRequest, sync: CustomerSync) -> CustomerSync | None:
        from syncs.services import sync_retry

        if sync.status not in UNFINISHED_STATUSES:
            self.message_user(
                request,
                f"Sync #{sync.pk} is {sync.get_status_display().lower()}; only failed or interrupted syncs can be "
                "retried.",
                messages.WARNING,
            )
            return None
        new, created = sync_retry(sync=sync)
        url = reverse("admin:syncs_customersync_change", args=[new.pk])
        if created:
            self.message_user(
                request,
                format_html('Retrying sync #{} as <a href="{}">sync #{}</a>.', sync.pk, url, new.pk),
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                format_html(
                    '{} already has <a href="{}">sync #{}</a> {}; not starting another.',
                    sync.store,
                    url,
                    new.pk,
                    new.get_status_display().lower(),
                ),
                messages.WARNING,
            )
        return new

    @admin.action(description="Retry selected failed or interrupted syncs", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[CustomerSync]) -> None:
        for sync in queryset.select_related("store"):
            self._retry(request, sync)

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        sync = get_object_or_404(CustomerSync.objects.select_related("store"), pk=object_id)
        if not self.has_retry_permission(request, sync):
            raise PermissionDenied
        new = self._retry(request, sync)
        target = new or sync
        return HttpResponseRedirect(reverse("admin:syncs_customersync_change", args=[target.pk]))

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        obj = kwargs.get("obj")
        context["can_retry"] = (
            obj is not None and obj.status in UNFINISHED_STATUSES and self.has_retry_permission(request, obj)
        )
        return super().render_change_form(request, context, *args, **kwargs)

    # --- dashboard ------------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="syncs_dashboard"),
            path(
                "<path:object_id>/retry/",
                self.admin_site.admin_view(require_POST(self.retry_view)),
                name="syncs_customersync_retry",
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = store_health_list()
        context = {
            **self.admin_site.each_context(request),
            "title": "Sync health",
            "opts": self.model._meta,
            "rows": rows,
            "chart_days": CHART_DAYS,
            "failing": sum(1 for r in rows if r.health == "failing"),
            "stalled": sum(1 for r in rows if r.health == "stalled"),
            # Syncing now: a sync in progress, not one waiting in the queue (nor a failing store's retry).
            "running": sum(1 for r in rows if r.last_status == SyncStatus.IN_PROGRESS and not r.stalled),
            "queued": sum(1 for r in rows if r.last_status == SyncStatus.PENDING),
            "never": sum(1 for r in rows if r.health == "never"),
            "failed_syncs_url": changelist_url(status__exact=SyncStatus.FAILED),
            "now": timezone.now(),
        }
        return TemplateResponse(request, "admin/syncs/dashboard.html", context)
