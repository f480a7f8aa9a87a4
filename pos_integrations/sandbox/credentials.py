"""The sandbox's fixed demo credentials (not secrets: they open nothing but the local fake)."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "leaflogix": {"api_key": "sandbox-leaflogix-key"},
    "treez": {"dispensary": "partnersandbox2", "client_id": "sandbox-treez-client", "api_key": "sandbox-treez-key"},
    "flowhub": {"client_id": "sandbox-flowhub-client", "api_key": "sandbox-flowhub-key", "store_id": "sandbox-store-1"},
    "covasoft": {
        "company_id": "14146",
        "username": "sandbox-cova-user",
        "password": "sandbox-cova-password",
        "client_id": "sandbox-cova-client",
        "client_secret": "sandbox-cova-secret",
    },
    "blaze": {"partner_key": "sandbox-blaze-partner-key", "api_key": "sandbox-blaze-key"},
}

TREEZ_CERTIFICATE_ID = "sandbox-treez-certificate"
TREEZ_ORGANIZATION_ID = "7d0c5a7e-3f0b-4c43-9d4e-5b0d2c1a9e01"

_lock = threading.Lock()
_key: rsa.RSAPrivateKey | None = None


def _treez_key() -> rsa.RSAPrivateKey:
    # One key pair per process, made on first use: v3 tests sign with it and the sandbox verifies with it.
    global _key
    with _lock:
        if _key is None:
            _key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _key


def treez_v3_private_key() -> rsa.RSAPrivateKey:
    """The private half of this process's Treez v3 key pair."""
    return _treez_key()


def treez_v3_credentials() -> dict[str, str]:
    """Treez credentials for v3 JWT auth against a sandbox running in this process."""
    pem = _treez_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "dispensary": SANDBOX_CREDENTIALS["treez"]["dispensary"],
        "certificate_id": TREEZ_CERTIFICATE_ID,
        "organization_id": TREEZ_ORGANIZATION_ID,
        "private_key": pem.decode(),
    }
