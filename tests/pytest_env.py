"""Loaded by pytest before Django (see pyproject addopts): test defaults for the environment."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# A fixed, valid Fernet key for tests only.
os.environ.setdefault("POS_CREDENTIALS_KEYS", "k7fZ6d8wVd0q1eVbQ2o8oQ3m0F7mVJ0rS2s8R1aZ0b4=")
os.environ.setdefault("DEBUG", "false")
# Cluster status of a development run must not leak into tests.
os.environ.setdefault("QUEUE_CACHE_DIR", tempfile.mkdtemp(prefix="customer-flow-queue-cache-"))
