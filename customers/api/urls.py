"""Routes of the customers endpoints (api.urls mounts them)."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from customers.api.views import CustomerViewSet, LegacyCustomerSearchView

router = SimpleRouter(trailing_slash=False)  # unlike DefaultRouter, adds no format-suffix (.json) routes
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("customers/search", LegacyCustomerSearchView.as_view(), name="legacy-customer-search"),
]
