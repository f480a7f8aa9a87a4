"""Request and response shapes of the syncs endpoints, and a sync as the API shows it."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from api.serializers import StrictSerializer
from customers.models import iso_timestamp
from syncs.models import CustomerSync, SyncKind, SyncStatus, SyncTrigger
from syncs.selectors import StoreSyncStatus


class SyncListFilter(django_filters.FilterSet):
    """GET /api/v1/syncs filters."""

    catalog_id = django_filters.CharFilter(max_length=100, help_text="Only this store.")

    class Meta:
        model = CustomerSync
        fields: list[str] = []


class SyncTriggerSerializer(StrictSerializer):
    catalog_id = serializers.CharField(max_length=100, help_text="The store to sync.")
    kind = serializers.ChoiceField(
        choices=["incremental", "full"], default="incremental", help_text="incremental (default) or full."
    )


class SyncCountsSerializer(serializers.Serializer):
    fetched = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    invalid = serializers.IntegerField()
    deactivated = serializers.IntegerField()


class SyncSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=SyncStatus.values,
        help_text="interrupted: stopped on purpose (SIGTERM, Ctrl-C) with its checkpoint; the next sync carries on.",
    )
    kind = serializers.ChoiceField(choices=SyncKind.values)
    trigger = serializers.ChoiceField(choices=SyncTrigger.values)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    counts = SyncCountsSerializer()
    error = serializers.CharField(allow_null=True)
    resumed_from = serializers.IntegerField(
        allow_null=True, help_text="The id of the failed or interrupted sync this one carried on from."
    )


class StoreSyncStatusSerializer(serializers.Serializer):
    catalog_id = serializers.CharField()
    name = serializers.CharField()
    pos_vendor = serializers.CharField()
    sync_enabled = serializers.BooleanField()
    last_sync = SyncSerializer(allow_null=True, help_text="The latest sync, whatever its outcome.")
    last_finished_at = serializers.DateTimeField(allow_null=True, help_text="When a sync last finished well.")


@extend_schema_serializer(many=False)
class SyncListResponseSerializer(serializers.Serializer):
    syncs = StoreSyncStatusSerializer(many=True)


class SyncTriggerResponseSerializer(serializers.Serializer):
    sync = SyncSerializer()
    created = serializers.BooleanField(help_text="false: a sync was already running; this is that one.")
    catalog_id = serializers.CharField()


def sync_as_dict(sync: CustomerSync) -> dict[str, Any]:
    """A sync as the API shows it (SyncSerializer)."""
    duration = sync.duration
    return {
        "id": sync.pk,
        "status": sync.status,
        "kind": sync.kind,
        "trigger": sync.trigger,
        "created_at": iso_timestamp(sync.created_at),
        "started_at": iso_timestamp(sync.started_at),
        "finished_at": iso_timestamp(sync.finished_at),
        "duration_seconds": duration.total_seconds() if duration is not None else None,
        "counts": sync.counts(),
        "error": sync.error_message or None,
        "resumed_from": sync.resumed_from_id,
    }


def store_sync_status_as_dict(status: StoreSyncStatus) -> dict[str, Any]:
    """A store's sync status as the API shows it (StoreSyncStatusSerializer)."""
    store = status.store
    return {
        "catalog_id": store.catalog_id,
        "name": store.name,
        "pos_vendor": store.pos_vendor,
        "sync_enabled": store.sync_enabled,
        "last_sync": sync_as_dict(status.last_sync) if status.last_sync is not None else None,
        "last_finished_at": iso_timestamp(status.last_finished_at),
    }
