"""The health URL: is the database reachable, can the task queue take work, and is the work moving?"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Min
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
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


# The health check's own wait on Redis: connecting, and each command (a Redis that accepts connections and never
# answers makes the check fail with TimeoutError instead of holding the request).
REDIS_TIMEOUT_SECONDS = 2.0


def _bounded_redis(broker: Any) -> None:
    """Give django-q2's Redis broker a connection with short socket timeouts (its own has none)."""
    import redis
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf

    if not isinstance(broker, Redis):
        return
    timeouts = {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
    if isinstance(Conf.REDIS, str):
        broker.connection = redis.from_url(Conf.REDIS, **timeouts)
    else:
        broker.connection = redis.StrictRedis(**{**(Conf.REDIS or {}), **timeouts})


def _oldest_queued_seconds(broker: Any) -> float | None:
    """How long the oldest task waiting in the queue has waited; None when nothing waits."""
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import BadSignature, SignedPackage

    now = timezone.now()
    if not Conf.ORM:
        # Redis: the queue is a list, pushed at the tail and popped at the head, so the head waited longest; each
        # task carries the time it was queued (django-q2's `started`, set by async_task).
        head = broker.connection.lindex(broker.list_key, 0)
        if head is None:
            return None
        try:
            queued_at = SignedPackage.loads(head).get("started")
        except (BadSignature, AttributeError, ValueError):
            return None  # not a task of ours (another secret key): its age is unknown
        return round((now - queued_at).total_seconds(), 1) if queued_at else None
    # The ORM broker stamps `lock` with the time a task was queued (and pushes it past now once a worker holds it).
    oldest = (
        OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key, lock__lte=now).aggregate(oldest=Min("lock"))["oldest"]
    )
    return round((now - oldest).total_seconds(), 1) if oldest else None


def _check_queue() -> dict[str, object]:
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.status import Stat

    kind = "orm" if Conf.ORM else "redis"
    broker = None
    try:
        broker = get_broker()
        _bounded_redis(broker)
        broker.ping()
        queued = broker.queue_size()
        clusters = len(Stat.get_all(broker=broker))
        oldest = _oldest_queued_seconds(broker)
    except Exception as exc:  # any broker failure means "queue down"; only its type is reported
        return {"ok": False, "broker": kind, "error": type(exc).__name__}
    finally:
        if broker is not None and not Conf.ORM:
            broker.connection.close()
    check: dict[str, object] = {
        "ok": True,
        "broker": kind,
        "queued": queued,
        "clusters": clusters,
        "oldest_queued_seconds": oldest,
    }
    bound = settings.HEALTH_QUEUE_BACKLOG_SECONDS
    if oldest is not None and oldest > bound:
        check["degraded"] = f"backlog: {queued} queued, the oldest waiting {oldest:.0f} s (over {bound} s)"
    return check


def _check_syncs() -> dict[str, object]:
    from syncs.selectors import stalled_syncs

    try:
        stalled = stalled_syncs().aggregate(count=Count("id"), oldest=Min("last_beat"))
        count = stalled["count"]
    except DatabaseError as exc:
        return {"ok": False, "error": type(exc).__name__}
    check: dict[str, object] = {"ok": True, "stalled": count}
    if count:
        longest = (timezone.now() - stalled["oldest"]).total_seconds()
        check["stalled_longest_seconds"] = round(longest, 1)
        check["degraded"] = (
            f"{count} sync{'s' if count != 1 else ''} in progress without a heartbeat for over "
            f"{settings.SYNC_STALL_SECONDS} s (the longest {longest:.0f} s)"
        )
    return check


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """503 when the database or the queue broker fails; 200 otherwise, "degraded" (with what) when a sync is
    stalled or the queue has a backlog, "ok" when all is well."""
    checks = {"database": _check_database(), "task_queue": _check_queue()}
    if checks["database"]["ok"]:
        checks["syncs"] = _check_syncs()
    ok = all(check["ok"] for check in checks.values())
    degraded = [str(check["degraded"]) for check in checks.values() if "degraded" in check]
    body: dict[str, object] = {"status": "ok" if ok and not degraded else "degraded" if ok else "error"}
    if degraded:
        body["degraded"] = degraded
    body["checks"] = checks
    return JsonResponse(body, status=200 if ok else 503)
