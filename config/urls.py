"""URL routes."""

from pathlib import Path

import drf_spectacular_sidecar
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from config.health import health

# The API docs' JavaScript and CSS ship inside drf-spectacular-sidecar, so the docs work with no internet.
# Served from the package here so they work without collectstatic or a static file server too.
SIDECAR_STATIC = Path(drf_spectacular_sidecar.__file__).parent / "static"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("", include("api.urls")),
    re_path(
        rf"^{settings.STATIC_URL.lstrip('/')}(?P<path>drf_spectacular_sidecar/.*)$",
        serve,
        {"document_root": SIDECAR_STATIC},
    ),
]

# Under the API's paths, every answer is in its error shape (api.errors); elsewhere Django's pages.
handler400 = "api.errors.bad_request"
handler403 = "api.errors.permission_denied"
handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
