"""Sync status and triggers over the API (the API layer reads syncs; the customers models never do)."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from stores.models import ApiKey, Store
from stores.selectors import store_list_for_key
from syncs.models import CustomerSync, SyncStatus


def sync_status_list(*, api_key: ApiKey, store: Store | None = None) -> list[dict[str, Any]]:
    """Each store the key reaches (or just `store`) with its latest sync: two queries, however many stores."""
    stores: QuerySet[Store] = (
        store_list_for_key(api_key=api_key) if store is None else Store.objects.filter(pk=store.pk)
    )
    recent = CustomerSync.objects.filter(store=OuterRef("pk")).order_by("-created_at", "-id")
    stores = stores.annotate(
        latest_sync_id=Subquery(recent.values("id")[:1]),
        last_finished_at=Subquery(
            CustomerSync.objects.filter(store=OuterRef("pk"), status=SyncStatus.FINISHED)
            .order_by("-finished_at")
            .values("finished_at")[:1]
        ),
    ).order_by("catalog_id")
    rows = list(stores)
    syncs = CustomerSync.objects.in_bulk([s.latest_sync_id for s in rows if s.latest_sync_id])  # type: ignore[attr-defined]
    return [
        {
            "catalog_id": s.catalog_id,
            "name": s.name,
            "pos_vendor": s.pos_vendor,
            "sync_enabled": s.sync_enabled,
            "last_sync": sync_as_dict(syncs[s.latest_sync_id]) if s.latest_sync_id else None,  # type: ignore[attr-defined]
            "last_finished_at": _iso(s.last_finished_at),  # type: ignore[attr-defined]
        }
        for s in rows
    ]


def sync_as_dict(sync: CustomerSync) -> dict[str, Any]:
    """A sync as the API shows it."""
    duration = sync.duration
    return {
        "id": sync.pk,
        "status": sync.status,
        "kind": sync.kind,
        "trigger": sync.trigger,
        "created_at": _iso(sync.created_at),
        "started_at": _iso(sync.started_at),
        "finished_at": _iso(sync.finished_at),
        "duration_seconds": duration.total_seconds() if duration is not None else None,
        "counts": {
            "fetched": sync.fetched,
            "created": sync.created,
            "updated": sync.updated,
            "unchanged": sync.unchanged,
            "invalid": sync.invalid,
            "deactivated": sync.deactivated,
        },
        "error": sync.error_message or None,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
