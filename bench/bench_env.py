"""The environment every benchmark runs Django in: as in production (DEBUG off: Django records no queries), with
bench-only keys where the environment sets none, and quiet logs."""

from __future__ import annotations

import os

# Bench-only keys, never used anywhere else: a valid Fernet key and two PII key entries (customers.crypto).
BENCH_KEYS = {
    "SECRET_KEY": "bench-only-secret-key",
    "POS_CREDENTIALS_KEYS": "k7fZ6d8wVd0q1eVbQ2o8oQ3m0F7mVJ0rS2s8R1aZ0b4=",
    "PII_ENCRYPTION_KEYS": "bench:" + "C" * 43 + "=",
    "PII_BLIND_INDEX_KEYS": "bench:" + "D" * 43 + "=",
}


def set_bench_environment() -> None:
    """Set what a benchmark needs before django.setup(); what the environment already says is kept."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "false"
    for name, value in BENCH_KEYS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
