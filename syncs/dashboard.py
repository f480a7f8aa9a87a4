"""Reads for the admin's sync-health views: per-store sync state and 30 days of daily sync figures.

Every function here answers in a fixed number of queries, however many stores, syncs or customers
there are: per-store figures are correlated subqueries (each served by the `sync_store_recent`
index), and the chart data is one GROUP BY over the window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from customers.models import Customer
from stores.models import Store
from syncs.models import CustomerSync, SyncStatus
from syncs.selectors import stall_cutoff

CHART_DAYS = 30
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _latest_sync(store_ref: str = "pk") -> QuerySet[CustomerSync]:
    return CustomerSync.objects.filter(store=OuterRef(store_ref)).order_by("-created_at", "-id")


def _count_subquery(qs: QuerySet) -> Coalesce:
    """COUNT(*) of `qs` as a correlated subquery (0 when empty), without GROUP BY on the outer query."""
    counted = qs.order_by().annotate(_n=Value(1)).values("_n").annotate(_c=Count("*")).values("_c")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def store_with_sync_state(qs: QuerySet[Store]) -> QuerySet[Store]:
    """Annotate stores with their latest sync, last success, failures since then and customer count.

    Annotations: `last_sync_id`, `last_sync_status`, `last_sync_at` (when it finished, started or was
    queued), `last_sync_beat` (its last heartbeat, else its start),
    `last_success_at`, `failures_in_row` (failed syncs since the last finished one) and
    `customer_count`.
    """
    finished = CustomerSync.objects.filter(store=OuterRef("pk"), status=SyncStatus.FINISHED).order_by(
        "-created_at", "-id"
    )
    return qs.annotate(
        last_sync_id=Subquery(_latest_sync().values("id")[:1]),
        last_sync_status=Subquery(_latest_sync().values("status")[:1]),
        last_sync_at=Subquery(
            _latest_sync()
            .annotate(_at=Coalesce("finished_at", "started_at", "created_at", output_field=DateTimeField()))
            .values("_at")[:1]
        ),
        last_sync_beat=Subquery(
            _latest_sync()
            .annotate(_beat=Coalesce("heartbeat_at", "started_at", "created_at", output_field=DateTimeField()))
            .values("_beat")[:1]
        ),
        last_success_at=Subquery(finished.values("finished_at")[:1]),
        _last_success_created=Subquery(finished.values("created_at")[:1]),
        failures_in_row=_count_subquery(
            CustomerSync.objects.filter(
                store=OuterRef("pk"),
                status=SyncStatus.FAILED,
                created_at__gt=Coalesce(OuterRef("_last_success_created"), Value(EPOCH), output_field=DateTimeField()),
            )
        ),
        customer_count=_count_subquery(Customer.objects.filter(store=OuterRef("pk"))),
    )


# --- the dashboard ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One store's syncs created on one (UTC) day."""

    day: dt.date
    syncs: int = 0
    failed: int = 0
    fetched: int = 0
    written: int = 0
    max_duration: dt.timedelta | None = None

    @property
    def max_seconds(self) -> float:
        return self.max_duration.total_seconds() if self.max_duration else 0.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One day of the chart, in SVG user units."""

    x: float
    width: float
    y: float
    height: float
    failed: bool
    title: str
    href: str | None


@dataclass(slots=True)
class Chart:
    """A server-rendered bar chart of records fetched per day with a line of the longest sync duration."""

    width: int
    height: int
    bars: list[Bar]
    duration_points: str
    max_records: int
    max_seconds: float
    first_day: dt.date
    last_day: dt.date


@dataclass(slots=True)
class StoreHealth:
    store: Store
    days: list[DayFigures] = field(default_factory=list)
    chart: Chart | None = None
    # An in-progress sync with no heartbeat since this is stalled (None: never).
    stalled_before: dt.datetime | None = None

    @property
    def syncs_in_window(self) -> int:
        return sum(d.syncs for d in self.days)

    @property
    def failed_in_window(self) -> int:
        return sum(d.failed for d in self.days)

    @property
    def last_status(self) -> str | None:
        """The status of the store's latest sync (None: never synced)."""
        return self.store.last_sync_status  # type: ignore[attr-defined]

    @property
    def stalled(self) -> bool:
        """Its sync is in progress but has shown no progress (no heartbeat) for longer than the stall bound."""
        beat = self.store.last_sync_beat  # type: ignore[attr-defined]
        return (
            self.store.last_sync_status == SyncStatus.IN_PROGRESS  # type: ignore[attr-defined]
            and self.stalled_before is not None
            and beat is not None
            and beat < self.stalled_before
        )

    @property
    def status_label(self) -> str:
        status = self.store.last_sync_status  # type: ignore[attr-defined]
        if self.stalled:
            return f"Stalled: no progress for {timesince(self.store.last_sync_beat, depth=1)}"  # type: ignore[attr-defined]
        return SyncStatus(status).label if status else "never synced"

    @property
    def last_sync_ago(self) -> str:
        return ago(self.store.last_sync_at)  # type: ignore[attr-defined]

    @property
    def last_success_ago(self) -> str:
        return ago(self.store.last_success_at)  # type: ignore[attr-defined]

    @property
    def longest_display(self) -> str:
        return _fmt_seconds(self.chart.max_seconds) if self.chart else "—"

    @property
    def health(self) -> str:
        """ok | failing | never | running | stalled — what the row's colour says."""
        status = self.store.last_sync_status  # type: ignore[attr-defined]
        if status is None:
            return "never"
        if self.stalled:
            return "stalled"
        if self.store.failures_in_row:  # type: ignore[attr-defined]
            return "failing"
        if status in (SyncStatus.PENDING, SyncStatus.IN_PROGRESS):
            return "running"
        return "ok"


def changelist_url(**params: object) -> str:
    """The sync changelist filtered by `params` (admin lookup parameters)."""
    url = reverse("admin:syncs_customersync_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def daily_figures(*, since: dt.datetime) -> dict[int, dict[dt.date, DayFigures]]:
    """Per store and UTC day since `since`: syncs, failures, records fetched and written, longest run."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    rows = (
        CustomerSync.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .order_by()
        .values("store_id", "day")
        .annotate(
            n=Count("id"),
            n_failed=Count("id", filter=Q(status=SyncStatus.FAILED)),
            n_fetched=Sum("fetched"),
            n_written=Sum(F("created") + F("updated")),
            longest=Max(duration, filter=Q(finished_at__isnull=False, started_at__isnull=False)),
        )
    )
    out: dict[int, dict[dt.date, DayFigures]] = {}
    for row in rows:
        out.setdefault(row["store_id"], {})[row["day"]] = DayFigures(
            day=row["day"],
            syncs=row["n"],
            failed=row["n_failed"],
            fetched=row["n_fetched"] or 0,
            written=row["n_written"] or 0,
            max_duration=row["longest"],
        )
    return out


def _day_failures_url(store_id: int, day: dt.date) -> str:
    return changelist_url(
        store__id__exact=store_id,
        status__exact=SyncStatus.FAILED,
        created_at__year=day.year,
        created_at__month=day.month,
        created_at__day=day.day,
    )


def build_chart(store_id: int, days: list[DayFigures], *, width: int = 360, height: int = 72) -> Chart:
    """Lay out one store's days as bars (records fetched) and a polyline (longest sync of the day)."""
    max_records = max((d.fetched for d in days), default=0)
    max_seconds = max((d.max_seconds for d in days), default=0.0)
    slot = width / max(len(days), 1)
    pad = 1.0 if slot > 4 else 0.0
    bars: list[Bar] = []
    points: list[str] = []
    for i, d in enumerate(days):
        # Days with syncs but no records still get a sliver, so "ran, found nothing" differs from "no sync".
        h = (d.fetched / max_records * (height - 4)) if max_records else 0.0
        if d.syncs and h < 2:
            h = 2.0
        label = (
            f"{d.day:%b %d}: {d.syncs} sync{'s' if d.syncs != 1 else ''}, {d.failed} failed, "
            f"{d.fetched} records fetched, {d.written} written, longest {_fmt_seconds(d.max_seconds)}"
        )
        bars.append(
            Bar(
                x=round(i * slot + pad, 2),
                width=round(max(slot - 2 * pad, 1.0), 2),
                y=round(height - h, 2),
                height=round(h, 2),
                failed=d.failed > 0,
                title=label,
                href=_day_failures_url(store_id, d.day) if d.failed else None,
            )
        )
        if max_seconds:
            y = height - 2 - d.max_seconds / max_seconds * (height - 6)
            points.append(f"{round(i * slot + slot / 2, 2)},{round(y, 2)}")
    return Chart(
        width=width,
        height=height,
        bars=bars,
        duration_points=" ".join(points),
        max_records=max_records,
        max_seconds=max_seconds,
        first_day=days[0].day,
        last_day=days[-1].day,
    )


def ago(value: dt.datetime | None, *, now: dt.datetime | None = None) -> str:
    """How long ago, as staff say it: "42 seconds ago", "5 minutes ago" (never "0 minutes ago")."""
    if value is None:
        return ""
    seconds = int(((now or timezone.now()) - value).total_seconds())
    if seconds < 60:
        seconds = max(seconds, 0)
        return f"{seconds}\xa0second{'s' if seconds != 1 else ''} ago"  # a no-break space, as timesince writes
    return f"{timesince(value, now, depth=1)} ago"


def _fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s"


def store_health_list(*, now: dt.datetime | None = None, days: int = CHART_DAYS) -> list[StoreHealth]:
    """Every store with its sync state and a chart of its last `days` days, in two queries."""
    now = now or timezone.now()
    today = now.astimezone(dt.UTC).date()
    window = [today - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    since = dt.datetime.combine(window[0], dt.time.min, tzinfo=dt.UTC)
    figures = daily_figures(since=since)
    stores = store_with_sync_state(Store.objects.all()).order_by("name", "pk")
    stalled_before = stall_cutoff(now=now)
    result: list[StoreHealth] = []
    for store in stores:
        per_day = figures.get(store.pk, {})
        store_days = [per_day.get(day, DayFigures(day=day)) for day in window]
        chart = build_chart(store.pk, store_days)
        result.append(StoreHealth(store=store, days=store_days, chart=chart, stalled_before=stalled_before))
    # Stalled and failing stores first: that is what staff open the dashboard for.
    order = {"stalled": 0, "failing": 1, "never": 2, "running": 3, "ok": 4}
    result.sort(key=lambda h: order[h.health])
    return result


def format_duration(value: dt.timedelta | None) -> str:
    """A sync's duration as staff read it, to the second: 3.2s, 4m 05s, 1h 02m 09s."""
    return "—" if value is None else _fmt_seconds(value.total_seconds())
