"""Routes of the REST API."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from customers.api.views import CustomerViewSet, LegacyCustomerSearchView

router = SimpleRouter(trailing_slash=False)  # unlike DefaultRouter, adds no format-suffix (.json) routes
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("customers/search", LegacyCustomerSearchView.as_view(), name="legacy-customer-search"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
