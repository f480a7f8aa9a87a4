"""The REST API's routes: each app's endpoints (mounted here by name, so this package imports no app's views),
the OpenAPI schema and its offline docs."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

import api.schema  # noqa: F401  (registers the API-key scheme with drf-spectacular before the schema is built)

urlpatterns = [
    path("", include("customers.api.urls")),
    path("", include("syncs.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
