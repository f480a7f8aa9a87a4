"""Encryption of POS credentials at rest (Fernet, with key rotation through MultiFernet)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("POS_CREDENTIALS_KEYS holds a key that is not a valid Fernet key.") from exc


def credentials_cipher() -> MultiFernet:
    """The cipher built from POS_CREDENTIALS_KEYS: the first key encrypts, every key decrypts."""
    keys = tuple(settings.POS_CREDENTIALS_KEYS)
    if not keys:
        raise ImproperlyConfigured("POS_CREDENTIALS_KEYS is empty.")
    return _fernet(keys)


def encrypt_json(value: Any) -> str:
    """Encrypt a JSON-serialisable value into a Fernet token string."""
    return credentials_cipher().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> Any:
    """Decrypt a token made by encrypt_json with any configured key."""
    try:
        return json.loads(credentials_cipher().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "Stored POS credentials cannot be decrypted with POS_CREDENTIALS_KEYS (was a key removed?)."
        ) from exc
