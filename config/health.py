"""The health URL: is the database reachable, and can the task queue take work?"""

from __future__ import annotations

import time

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _check_database() -> dict[str, object]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def _check_queue() -> dict[str, object]:
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.status import Stat

    kind = "orm" if Conf.ORM else "redis"
    try:
        broker = get_broker()
        broker.ping()
        queued = broker.queue_size()
        clusters = len(Stat.get_all(broker=broker))
    except Exception as exc:  # any broker failure means "queue down"; only its type is reported
        return {"ok": False, "broker": kind, "error": type(exc).__name__}
    return {"ok": True, "broker": kind, "queued": queued, "clusters": clusters}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """200 when the database and the queue broker answer, 503 otherwise."""
    checks = {"database": _check_database(), "task_queue": _check_queue()}
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ok else "error", "checks": checks}, status=200 if ok else 503)
