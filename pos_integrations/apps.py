"""Django app config: pos_integrations has no models, only the `pos_sandbox` command."""

from django.apps import AppConfig


class PosIntegrationsConfig(AppConfig):
    name = "pos_integrations"
    verbose_name = "POS integrations"
