"""Who may call an endpoint: today, any live API key."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from stores.models import ApiKey


class HasApiKey(BasePermission):
    """Only requests authenticated with a live API key get through."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey)
