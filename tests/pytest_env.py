"""Loaded by pytest before Django (see pyproject addopts): test defaults for the environment."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# A fixed, valid Fernet key for tests only.
os.environ.setdefault("POS_CREDENTIALS_KEYS", "k7fZ6d8wVd0q1eVbQ2o8oQ3m0F7mVJ0rS2s8R1aZ0b4=")
# Fixed PII keys for tests only (customers.crypto): `<key id>:<base64 32 bytes>`.
os.environ.setdefault("PII_ENCRYPTION_KEYS", "t1:" + "A" * 43 + "=")
os.environ.setdefault("PII_BLIND_INDEX_KEYS", "t1:" + "B" * 43 + "=")
os.environ.setdefault("DEBUG", "false")
# Cluster status of a development run must not leak into tests.
# The folder is removed when the run ends (processes the tests start inherit the variable).
if "QUEUE_CACHE_DIR" not in os.environ:
    os.environ["QUEUE_CACHE_DIR"] = tempfile.mkdtemp(prefix="customer-flow-queue-cache-")
    atexit.register(shutil.rmtree, os.environ["QUEUE_CACHE_DIR"], ignore_errors=True)
# The POS rate limiter is off unless a test turns it on: pytest-django holds each test in a transaction of the
# default connection, which the limiter's own connection must not wait for, and budgets would carry over between
# tests sharing a credential (the tests about it turn it on: tests/*/test_*rate*.py).
os.environ.setdefault("POS_RATE_LIMIT_ENABLED", "false")
# Access events written as each answer is closed, as the tests read them right after (the writer thread's own
# connection would not see a test's transaction; tests/customers/test_access_event_writer.py runs it for real).
os.environ.setdefault("PII_ACCESS_WRITE_SECONDS", "0")
