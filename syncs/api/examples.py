"""Request and response examples of the syncs endpoints for the OpenAPI schema (the README shows the same ones)."""

from __future__ import annotations

from typing import Any

from api.examples import error, ex

SYNC: dict[str, Any] = {
    "id": 88,
    "status": "finished",
    "kind": "incremental",
    "trigger": "schedule",
    "created_at": "2026-11-24T10:00:00Z",
    "started_at": "2026-11-24T10:00:01Z",
    "finished_at": "2026-11-24T10:00:04Z",
    "duration_seconds": 3.2,
    "counts": {"fetched": 120, "created": 4, "updated": 9, "unchanged": 107, "invalid": 0, "deactivated": 0},
    "error": None,
    "resumed_from": None,
}

SYNCS_OK = ex(
    "Sync status of the key's stores",
    {
        "syncs": [
            {
                "catalog_id": "greenleaf-oakland",
                "name": "Green Leaf Oakland",
                "pos_vendor": "treez",
                "sync_enabled": True,
                "last_sync": SYNC,
                "last_finished_at": "2026-11-24T10:00:04Z",
            }
        ]
    },
    status=200,
)
SYNC_REQUEST = ex("Sync a store now", {"catalog_id": "greenleaf-oakland", "kind": "incremental"}, request=True)
SYNC_STARTED = ex(
    "A new sync was queued",
    {
        "catalog_id": "greenleaf-oakland",
        "created": True,
        "sync": {
            **SYNC,
            "status": "pending",
            "trigger": "api",
            "started_at": None,
            "finished_at": None,
            "duration_seconds": None,
            "counts": dict.fromkeys(SYNC["counts"], 0),
        },
    },
    status=202,
)
SYNC_RUNNING = ex(
    "A sync was already running",
    {
        "catalog_id": "greenleaf-oakland",
        "created": False,
        "sync": {**SYNC, "status": "in_progress", "finished_at": None, "duration_seconds": None},
    },
    status=200,
)
SYNC_INVALID = ex(
    "Invalid body",
    error("invalid_request", "The request has invalid fields.", fields={"kind": ['"weekly" is not a valid choice.']}),
    status=400,
)
