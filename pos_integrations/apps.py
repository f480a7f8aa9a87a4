"""Django app config: pos_integrations has no models (the POS clients are plain Python)."""

from django.apps import AppConfig


class PosIntegrationsConfig(AppConfig):
    name = "pos_integrations"
    verbose_name = "POS integrations"
