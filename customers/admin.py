"""Admin for customers: a read-only window on the POS mirror, searchable the way staff ask for people, and the
POS records the mirror could not store."""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import display_for_field
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Field, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from customers.erasure import POS_CAVEAT, customer_erase, erasures_unlink_late
from customers.fields import card_indexes, licence_indexes
from customers.models import (
    POS_FIELDS,
    AccessEvent,
    Customer,
    CustomerErasure,
    CustomerType,
    RejectedRecord,
    card_index_in,
    licence_index_in,
    phone_digits,
)
from customers.pii_access import access_event_record_admin, mask_copies, mask_number
from stores.admin import PosVendorFilter, ReadOnlyAdminMixin, StoreLinkMixin, time_cell

POS_NOTE = (
    "The POS is the source of truth: these fields are overwritten by every sync. "
    "Change them in the store's POS, then run a sync."
)
MIN_PHONE_DIGITS = 4


def format_phone(digits: str) -> str:
    if len(digits) == 10:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return digits


def format_points(points: Decimal | None) -> str:
    """Loyalty points as the POS counts them: whole numbers without a ".00", fractions as they are."""
    if points is None:
        return ""
    return f"{points:,.0f}" if points == points.to_integral_value() else f"{points.normalize():,}"


# Plain words for the fields whose names read like code ("Drivers license", "Pos updated at").
LABELS: dict[str, str] = {
    "customer_id": "POS customer id",
    "email": "Email",
    "drivers_license": "Driver's licence",
    "drivers_license_expiration": "Driver's licence expires",
    "medical_card_number": "Medical card",
    "medical_card_expiration": "Medical card expires",
    "customer_type": "Type",
    "merged_into_customer_id": "Merged into (POS id)",
    "postal_code": "ZIP code",
    "pos_created_at": "Created at the POS",
    "pos_updated_at": "Updated at the POS",
    "synced_at": "Last synced",
    "created_at": "In the mirror since",
    "updated_at": "Mirror row changed",
}


def _labelled(name: str) -> Callable[[Any, Customer], str]:
    """A read-only field shown as Django shows the model field, under a plain-word label."""
    model_field = Customer._meta.get_field(name)
    assert isinstance(model_field, Field)

    @admin.display(description=LABELS[name], ordering=name)
    def show(self: Any, obj: Customer) -> str:
        return str(display_for_field(getattr(obj, name), model_field, self.get_empty_value_display()))

    show.__name__ = f"{name}_shown"
    return show


def _shown(name: str) -> str:
    return f"{name}_shown" if name in LABELS else name


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


# What the customer page shows of a person that the access log records it showing, masked and revealed; the
# numbers masked until "Reveal"; and how many views the page lists.
ADMIN_SHOWN_FIELDS = ("birthday",)
ADMIN_REVEALED_FIELDS = ("drivers_license", "medical_card_number", "birthday", "raw")
REVEALED_NUMBERS = ("drivers_license", "medical_card_number")
REVEAL_PERMISSION = "customers.reveal_customer_pii"
ERASE_PERMISSION = "customers.erase_customer"
ACCESS_HISTORY_SHOWN = 20
# The access log's list: the customers named per event (the rest counted); POS ids a search looks for.
EVENT_CUSTOMERS_SHOWN = 5
EVENT_SEARCH_POS_IDS = 100
MAX_ID_DIGITS = 18


def _revealed(customer: Customer) -> bool:
    return bool(getattr(customer, "pii_revealed", False))


# Read-only: customers come from the POS (a sync or the API's create), never typed in here; every field belongs
# to the POS or the sync, so an edit would be overwritten by the next sync, which would also bring a deleted
# customer back (the POS is where customers are removed; deleting a store takes its customers along: the store
# admin allows that).
@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdminMixin, StoreLinkMixin, admin.ModelAdmin):
    # What staff look people up by, narrow enough for a 1366 px screen with the filters open; licence and
    # medical card numbers are on the customer's page (and searchable), masked here they told nobody much.
    list_display = [
        "name",
        "store_link",
        "phone_display",
        "email_display",
        "type_display",
        "active",
        "pos_updated_display",
    ]
    list_display_links = ["name"]
    list_filter = [
        "store",
        ("store__pos_vendor", PosVendorFilter),
        "customer_type",
        "active",
        "banned",
        MedicalCardFilter,
    ]
    # Names and email by substring; phone and licence are matched on their normalised form in
    # get_search_results, so "(555) 123-4567", "+1 555.123.4567" and "5551234567" all find the same person.
    search_fields = ["first_name", "last_name", "email", "=customer_id"]
    search_help_text = "Name, email, phone (any format), POS id, driver's licence or medical card number."
    list_select_related = ["store"]
    list_per_page = 50
    show_full_result_count = False
    empty_value_display = "—"  # one dash for every empty field, Django's and ours
    ordering = ["-id"]
    readonly_fields = [
        "store_link",
        *(
            _shown(name)
            for name in ("customer_id", *POS_FIELDS)
            if name not in ("phone", "loyalty_points", *REVEALED_NUMBERS)
        ),
        "drivers_license_display",
        "medical_card_number_display",
        "phone_display",
        "loyalty_points_display",
        "raw_json",
        *(_shown(name) for name in ("synced_at", "created_at", "updated_at")),
    ]
    fieldsets = [
        (
            "Owned by the POS",
            {
                "description": POS_NOTE,
                "fields": [
                    ("store_link", _shown("customer_id")),
                    ("first_name", "last_name"),
                    (_shown("email"), "phone_display"),
                    ("birthday", "gender"),
                    (_shown("customer_type"), "active"),
                    ("banned", _shown("merged_into_customer_id")),
                    ("drivers_license_display", _shown("drivers_license_expiration")),
                    ("medical_card_number_display", _shown("medical_card_expiration")),
                    "loyalty_points_display",
                    "notes",
                    ("street", "city"),
                    ("state", _shown("postal_code")),
                    (_shown("pos_created_at"), _shown("pos_updated_at")),
                ],
            },
        ),
        ("Vendor JSON, as received", {"fields": ["raw_json"]}),
        ("Mirror", {"fields": [_shown("synced_at"), _shown("created_at"), _shown("updated_at")]}),
        ("Who saw personal data", {"fields": ["access_history"]}),
    ]

    change_form_template = "admin/customers/customer/change_form.html"
    actions = ["erase_customers"]

    def get_urls(self) -> list[URLPattern]:
        reveal = path(
            "<path:object_id>/reveal/",
            self.admin_site.admin_view(self.reveal_view),
            name="customers_customer_reveal",
        )
        erase = path(
            "<path:object_id>/erase/",
            self.admin_site.admin_view(self.erase_view),
            name="customers_customer_erase",
        )
        return [reveal, erase, *super().get_urls()]

    # --- erasure (customers.erasure) ----------------------------------------------------------------

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ERASE_PERMISSION)

    @admin.action(permissions=["erase"], description="Erase selected customers from the mirror…")
    def erase_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        """A confirmation page first; erased once it is confirmed (a POST with confirm=yes)."""
        if request.POST.get("confirm") == "yes":
            self._erase(request, list(queryset.select_related("store")))
            return None
        return self._erase_confirmation(request, queryset, selected=request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))

    def erase_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The customer page's "Erase…": the same confirmation, then the erasure."""
        if not self.has_erase_permission(request):
            raise PermissionDenied
        queryset = Customer.objects.filter(pk=object_id) if object_id.isdigit() else Customer.objects.none()
        if not queryset.exists():
            raise Http404("No such customer.")
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            self._erase(request, list(queryset.select_related("store")))
            return HttpResponseRedirect(reverse("admin:customers_customer_changelist"))
        return self._erase_confirmation(request, queryset, selected=None)

    def _erase_confirmation(
        self, request: HttpRequest, queryset: QuerySet[Customer], *, selected: list[str] | None
    ) -> TemplateResponse:
        # Counts and store names only: the page names nobody.
        stores = list(queryset.values_list("store__name").annotate(n=Count("id")).order_by("store__name"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase customers from the mirror",
            "opts": self.model._meta,
            "count": sum(n for _, n in stores),
            "stores": stores,
            "selected": selected,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "pos_caveat": POS_CAVEAT,
            "cancel_url": reverse("admin:customers_customer_changelist"),
        }
        return TemplateResponse(request, "admin/customers/customer/erase_confirmation.html", context)

    def _erase(self, request: HttpRequest, customers: list[Customer]) -> None:
        erasures: list[CustomerErasure] = []
        erased: list[tuple[CustomerErasure, int]] = []
        for customer in customers:
            # One erasure (and transaction) per person: each is recorded and suppressed on its own.
            erasure = customer_erase(
                store=customer.store,
                customer_id=customer.customer_id,
                user_id=request.user.pk,
                via="admin",
                allow_absent=True,
                unlink_late=False,
            )
            erasures.append(erasure)
            erased.append((erasure, customer.pk))
        erasures_unlink_late(erased)  # one wait for all of them
        numbers = ", ".join(f"#{e.pk}" for e in erasures)
        self.message_user(
            request, f"Erased {len(erasures)} customer(s) from the mirror (erasures {numbers}).", messages.SUCCESS
        )
        self.message_user(request, POS_CAVEAT, level=messages.WARNING)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Customer | None:
        customer = super().get_object(request, object_id, from_field)
        if customer is not None:
            customer.pii_revealed = bool(getattr(request, "cf_reveal_pii", False))
        return customer

    def reveal_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST (the page's "Reveal" button): the customer's page with licence and medical card numbers and the
        vendor JSON unmasked, for staff with the reveal permission; audited like every view of the page."""
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:customers_customer_change", args=[object_id]))
        if not request.user.has_perm(REVEAL_PERMISSION):
            raise PermissionDenied
        request.cf_reveal_pii = True  # type: ignore[attr-defined]
        request.method = "GET"  # the page itself, read-only: no form is processed
        return self.change_view(request, object_id, extra_context={"pii_revealed": True})

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            "can_reveal": request.user.has_perm(REVEAL_PERMISSION),
            "can_erase": self.has_erase_permission(request),
            **(extra_context or {}),
        }
        response = super().change_view(request, object_id, form_url, context)
        # Who saw the customer's personal data, and which: the birthday on every view; the numbers and the
        # vendor JSON only once revealed.
        customer = self.get_object(request, object_id)
        if request.method == "GET" and response.status_code == 200 and customer is not None:
            names = ADMIN_REVEALED_FIELDS if context.get("pii_revealed") else ADMIN_SHOWN_FIELDS
            shown = [name for name in names if getattr(customer, name)]
            access_event_record_admin(request=request, user=request.user, customer_id=customer.pk, fields=shown)
        return response

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
        # Licence and card numbers are encrypted: matched through their blind indexes (as compared: licence_key).
        if licence := licence_indexes(term):
            extra |= licence_index_in(licence) | card_index_in(card_indexes(term))
        if extra:
            queryset = queryset | base.filter(extra)
        return queryset, may_have_duplicates

    # --- columns ------------------------------------------------------------------------------------

    @admin.display(description="name", ordering="last_name")
    def name(self, obj: Customer) -> str:
        # The POS id under the name: one column for both, and ids like Blaze's 24 hex digits still fit.
        name = f"{obj.first_name} {obj.last_name}".strip() or "(no name)"
        return format_html('{}<br><span class="cf-quiet">POS id {}</span>', name, obj.customer_id)

    @admin.display(description="phone", ordering="phone")
    def phone_display(self, obj: Customer) -> str:
        return format_phone(obj.phone)

    @admin.display(description="email", ordering="email")
    def email_display(self, obj: Customer) -> str:
        # A long address may break before its "@" rather than push the other columns off screen.
        local, at, domain = obj.email.partition("@")
        return format_html("{}<wbr>{}{}", local, at, domain) if at else obj.email

    @admin.display(description="type", ordering="customer_type")
    def type_display(self, obj: Customer) -> str:
        if obj.customer_type != CustomerType.MEDICAL:
            return obj.get_customer_type_display()
        expires = obj.medical_card_expiration
        if expires is None:
            card = "no card on file" if not obj.medical_card_number else "card, no expiry"
        elif expires < timezone.localdate():
            card = f"card expired {expires:%Y-%m-%d}"
        else:
            card = f"card to {expires:%Y-%m-%d}"
        return format_html('{}<br><span class="cf-quiet">{}</span>', obj.get_customer_type_display(), card)

    @admin.display(description="updated at the POS", ordering="pos_updated_at")
    def pos_updated_display(self, obj: Customer) -> str:
        return time_cell(obj.pos_updated_at)

    @admin.display(description="loyalty points")
    def loyalty_points_display(self, obj: Customer) -> str:
        return format_points(obj.loyalty_points)

    @admin.display(description="raw vendor JSON")
    def raw_json(self, obj: Customer) -> str:
        if _revealed(obj):
            return pretty_json(obj.raw)
        return pretty_json(mask_copies(obj.raw, [obj.drivers_license, obj.medical_card_number]))

    @admin.display(description=LABELS["drivers_license"])
    def drivers_license_display(self, obj: Customer) -> str:
        return obj.drivers_license if _revealed(obj) else mask_number(obj.drivers_license)

    @admin.display(description=LABELS["medical_card_number"])
    def medical_card_number_display(self, obj: Customer) -> str:
        return obj.medical_card_number if _revealed(obj) else mask_number(obj.medical_card_number)

    @admin.display(description="latest views")
    def access_history(self, obj: Customer) -> str:
        viewed = AccessEvent.objects.filter(customer_ids__includes=obj.pk).select_related("api_key", "user")
        events = list(viewed[:ACCESS_HISTORY_SHOWN])
        if not events:
            return "Nobody yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((time_cell(e.at), e.get_channel_display(), e.who, e.fields.replace(",", ", ")) for e in events),
        )
        link = reverse("admin:customers_accessevent_changelist") + f"?customer_ids__includes={obj.pk}"
        return format_html(
            '<table class="cf-access"><thead><tr><th scope="col">when</th><th scope="col">through</th>'
            '<th scope="col">who</th><th scope="col">fields</th></tr></thead><tbody>{}</tbody></table>'
            '<p><a href="{}">Every access to this customer</a></p>',
            rows,
            link,
        )


for _name in LABELS:
    setattr(CustomerAdmin, f"{_name}_shown", _labelled(_name))


def pretty_json(value: Any) -> str:
    """A JSON value, indented, for a read-only admin field."""
    # Focusable: a scrolling region must be reachable from the keyboard (axe's scrollable-region-focusable).
    return format_html(
        '<pre class="cf-json" tabindex="0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False),
    )


def origin_link(obj: RejectedRecord) -> str:
    """A link to the run that fetched a rejected record (a sync), or what handed it over otherwise."""
    if obj.origin_type is None or obj.origin_id is None:
        return obj.get_source_display()
    kind = obj.origin_type
    url = reverse(f"admin:{kind.app_label}_{kind.model}_change", args=[obj.origin_id])
    return format_html('<a href="{}">{} #{}</a>', url, kind.name, obj.origin_id)


# Evidence of what the POS sent, for staff to read: never added or edited here, nor deleted (the next sync would
# not bring it back, and staff need it to see what came).
@admin.register(RejectedRecord)
class RejectedRecordAdmin(ReadOnlyAdminMixin, StoreLinkMixin, admin.ModelAdmin):
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

    @admin.display(description="from")
    def origin_display(self, obj: RejectedRecord) -> str:
        return origin_link(obj)

    @admin.display(description="payload")
    def payload_pretty(self, obj: RejectedRecord) -> str:
        return pretty_json(obj.payload)


class AccessEventChangeList(ChangeList):
    """The page's events with the customers it names loaded in one query (an event lists ids, no foreign key)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        wanted = {pk for e in self.result_list for pk in e.customer_ids[:EVENT_CUSTOMERS_SHOWN] if pk is not None}
        found = Customer.objects.filter(pk__in=wanted).only("id", "customer_id").in_bulk()
        for event in self.result_list:
            event.cf_customers = found


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The access log, for staff with its view permission: search by customer (our id or POS id), API key prefix,
    staff username or request id. Read-only; old events are pruned by a schedule (PII_ACCESS_RETENTION_DAYS)."""

    list_display = ["at_display", "channel", "who_display", "customers_display", "fields", "request_id"]
    list_filter = ["channel", "at"]
    search_fields = ["=api_key__prefix", "=user__username", "=request_id"]  # and customers: get_search_results
    search_help_text = "Customer (our id or POS id), API key prefix, staff username or request id."
    list_select_related = ["api_key", "user"]
    show_full_result_count = False
    list_per_page = 100

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AccessEventChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AccessEvent], search_term: str
    ) -> tuple[QuerySet[AccessEvent], bool]:
        base = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return queryset, may_have_duplicates
        # Our id, or a POS id (one per store that has it): the events whose lists hold any of them.
        ids = set(Customer.objects.filter(customer_id=term).values_list("id", flat=True)[:EVENT_SEARCH_POS_IDS])
        if term.isdecimal() and len(term) <= MAX_ID_DIGITS:
            ids.add(int(term))
        if ids:
            queryset |= base.filter(functools.reduce(operator.or_, (Q(customer_ids__includes=pk) for pk in ids)))
        return queryset, may_have_duplicates

    @admin.display(description="when", ordering="at")
    def at_display(self, obj: AccessEvent) -> str:
        return time_cell(obj.at)

    @admin.display(description="who")
    def who_display(self, obj: AccessEvent) -> str:
        return obj.who

    @admin.display(description="customers")
    def customers_display(self, obj: AccessEvent) -> str:
        found: dict[int, Customer] = getattr(obj, "cf_customers", {})

        def link(pk: int | None) -> str:
            customer = found.get(pk) if pk is not None else None
            if customer is None:
                return "(removed)"
            url = reverse("admin:customers_customer_change", args=[pk])
            return format_html('<a href="{}">{} (POS id {})</a>', url, pk, customer.customer_id)

        ids = obj.customer_ids
        links = format_html_join(", ", "{}", ((link(pk),) for pk in ids[:EVENT_CUSTOMERS_SHOWN]))
        more = len(ids) - EVENT_CUSTOMERS_SHOWN
        return format_html("{} and {} more", links, more) if more > 0 else links


@admin.register(CustomerErasure)
class CustomerErasureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who erased a customer of which store, when, and how much went: the record names nobody."""

    list_display = ["at_display", "store", "via", "user", "counts_display"]
    list_filter = ["store"]
    list_select_related = ["store", "user"]
    show_full_result_count = False
    readonly_fields = ("at", "store", "via", "user", "counts_display")
    fields = readonly_fields

    @admin.display(description="when", ordering="at")
    def at_display(self, obj: CustomerErasure) -> str:
        return time_cell(obj.at)

    @admin.display(description="removed or scrubbed")
    def counts_display(self, obj: CustomerErasure) -> str:
        return ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in obj.counts.items())
