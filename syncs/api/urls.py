"""Routes of the syncs endpoints (api.urls mounts them)."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from syncs.api.views import SyncViewSet

router = SimpleRouter(trailing_slash=False)  # as customers.api.urls: no format-suffix routes
router.register("syncs", SyncViewSet, basename="sync")

urlpatterns = [path("api/v1/", include(router.urls))]
