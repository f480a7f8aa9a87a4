"""Django app config: the sandbox is an app only so that `manage.py pos_sandbox` is found (no models)."""

from django.apps import AppConfig


class PosSandboxConfig(AppConfig):
    name = "pos_sandbox"
    verbose_name = "POS sandbox"
