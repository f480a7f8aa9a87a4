"""Who may call an endpoint: a live API key with the scope the view names (`required_scope`)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from stores.models import ApiKey, ApiScope


class HasApiKey(BasePermission):
    """Only requests authenticated with a live API key get through, and only to views whose `required_scope`
    (an ApiScope; every API view names one) the key has: otherwise 403 insufficient_scope."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, ApiKey):
            return False
        scope = required_scope(view, request.method or "")
        if scope is None and hasattr(view, "required_scopes") and getattr(view, "action", None) is None:
            return True  # a method the ViewSet has no action for: DRF answers 405 (or OPTIONS), reading nothing
        if scope is None:  # tests/api/test_scopes.py checks every endpoint names one
            raise ImproperlyConfigured(f"{type(view).__name__} names no required scope for {request.method}.")
        if not request.auth.has_scope(scope):
            # Imported here: api.errors imports DRF's views, which import this module (DEFAULT_PERMISSION_CLASSES).
            from api.errors import InsufficientScope

            raise InsufficientScope(f"This API key lacks the {scope!r} scope.")
        return True


def required_scope(view: Any, method: str) -> str | None:
    """The scope a view needs: its `required_scope`, or its `required_scopes` entry for the action (a ViewSet)."""
    scope: str | None = getattr(view, "required_scope", None)
    if scope is None and hasattr(view, "required_scopes"):
        scope = view.required_scopes.get(getattr(view, "action", None) or method.lower())
    return None if scope is None else ApiScope(scope).value
