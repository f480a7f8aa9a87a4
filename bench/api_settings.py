"""Settings for the API benchmark's gunicorn: the service's own (config.settings) with one change, for the
404 floor scenarios: Django logs every 4xx answer as a warning, which would make the bench measure log writing."""

from config.settings import *  # noqa: F403
from config.settings import LOGGING

LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "django.request": {"level": "ERROR"}}}
