"""Personal data at rest: AEAD encryption with a key id in every ciphertext, and keyed blind indexes.

Licence and medical card numbers and the vendor JSON are stored encrypted (AES-256-GCM from `cryptography`).
A ciphertext is text: `cf1.<key id>.<nonce and ciphertext, base64url>`. The key id says which key of
PII_ENCRYPTION_KEYS decrypts it, so reads work with old and new keys while `rotate_pii_keys` re-encrypts. The
associated data is the value's purpose (e.g. ``customers.drivers_license``): a ciphertext moved to another
column does not decrypt.

Exact lookups go through blind indexes: HMAC-SHA256 of the normalised value with a key of its own
(PII_BLIND_INDEX_KEYS), also bound to the purpose. During a rotation a lookup matches the value's index under
every configured key (`blind_indexes`); writes use the first key (`blind_index`).

Keys come from the environment, one entry per key: ``<key id>:<32 bytes, base64>`` (`manage.py
generate_pii_key` prints one). The first entry is the current key. Development gets keys derived from the
development SECRET_KEY (config/settings.py), like POS_CREDENTIALS_KEYS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "cf1"
NONCE_BYTES = 12
KEY_BYTES = 32
# A blind index keeps 16 bytes of the HMAC (32 hex characters): no collisions among any store's customers
# in practice, and a short B-tree key.
INDEX_BYTES = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class PiiKeyError(ImproperlyConfigured):
    """A PII key setting is malformed, or a stored value needs a key that is not configured."""


class PiiDecryptionError(ValueError):
    """A stored value is not a ciphertext of ours, or it was altered."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys of one setting, the first of them current."""

    ids: tuple[str, ...]
    keys: tuple[bytes, ...]

    @property
    def current_id(self) -> str:
        return self.ids[0]

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[self.ids.index(key_id)]
        except ValueError:
            raise PiiKeyError(
                f"No PII key with id {key_id!r} is configured (was it removed before rotating?)."
            ) from None


def parse_keys(entries: tuple[str, ...], *, setting: str) -> Keyring:
    """Keys from setting entries ``<key id>:<base64 key>``; a clear error for anything else."""
    if not entries:
        raise PiiKeyError(f"{setting} is empty.")
    ids: list[str] = []
    keys: list[bytes] = []
    for entry in entries:
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise PiiKeyError(f"{setting}: each entry is <key id>:<base64 key>, the id letters, digits, - or _.")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise PiiKeyError(f"{setting}: the key of {key_id!r} is not base64.") from None
        if len(key) != KEY_BYTES:
            raise PiiKeyError(f"{setting}: the key of {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}.")
        if key_id in ids:
            raise PiiKeyError(f"{setting}: the key id {key_id!r} appears twice.")
        ids.append(key_id)
        keys.append(key)
    return Keyring(tuple(ids), tuple(keys))


@lru_cache(maxsize=8)
def _keyring(entries: tuple[str, ...], setting: str) -> Keyring:
    return parse_keys(entries, setting=setting)


def encryption_keys() -> Keyring:
    return _keyring(tuple(settings.PII_ENCRYPTION_KEYS), "PII_ENCRYPTION_KEYS")


def index_keys() -> Keyring:
    return _keyring(tuple(settings.PII_BLIND_INDEX_KEYS), "PII_BLIND_INDEX_KEYS")


@lru_cache(maxsize=16)
def _aead(key: bytes) -> AESGCM:
    return AESGCM(key)


def new_key_entry(key_id: str) -> str:
    """A fresh setting entry for a new key."""
    if not _KEY_ID.match(key_id):
        raise PiiKeyError("A key id is 1-32 letters, digits, - or _.")
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def encrypt(plaintext: str, *, purpose: str) -> str:
    """The ciphertext of `plaintext` under the current key; the empty text stays empty (nothing to hide)."""
    if not plaintext:
        return ""
    ring = encryption_keys()
    nonce = os.urandom(NONCE_BYTES)
    sealed = _aead(ring.keys[0]).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{PREFIX}.{ring.current_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def key_id(token: str) -> str | None:
    """The id of the key a ciphertext was made with (None for the empty text)."""
    if not token:
        return None
    prefix, _, rest = token.partition(".")
    if prefix != PREFIX or "." not in rest:
        raise PiiDecryptionError("not a Customer Flow ciphertext")
    return rest.partition(".")[0]


def decrypt(token: str, *, purpose: str) -> str:
    """The plaintext of a ciphertext made by `encrypt` for this purpose, with whichever configured key made it."""
    if not token:
        return ""
    kid = key_id(token)
    assert kid is not None
    try:
        blob = base64.urlsafe_b64decode(token.rsplit(".", 1)[1])
    except (binascii.Error, ValueError):
        raise PiiDecryptionError("a ciphertext's body is not base64") from None
    key = encryption_keys().key(kid)
    try:
        return _aead(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], purpose.encode()).decode()
    except InvalidTag:
        raise PiiDecryptionError(f"a ciphertext under key {kid!r} does not authenticate for {purpose}") from None


def needs_rotation(token: str) -> bool:
    """Whether a stored ciphertext was made with a key other than the current one."""
    return bool(token) and key_id(token) != encryption_keys().current_id


def _index(key: bytes, value: str, purpose: str) -> str:
    return hmac.digest(key, f"{purpose}\x00{value}".encode(), "sha256")[:INDEX_BYTES].hex()


def blind_index(value: str, *, purpose: str) -> str:
    """The blind index of an already normalised value under the current index key ('' for the empty text)."""
    if not value:
        return ""
    return _index(index_keys().keys[0], value, purpose)


def blind_indexes(value: str, *, purpose: str) -> tuple[str, ...]:
    """The value's blind index under every configured index key, current first: what a lookup matches."""
    if not value:
        return ()
    return tuple(_index(key, value, purpose) for key in index_keys().keys)


class Sealer:
    """`encrypt` and `blind_index` for many values at once (the mirror's writer: every record of a page): the
    current keys looked up once, nonces drawn from the system in bulk. The same ciphertexts and indexes as the
    functions (a fresh Sealer sees keys changed since)."""

    NONCES_AT_ONCE = 256

    __slots__ = ("_at", "_head", "_index_key", "_keyed", "_nonces", "_seal", "index_key_id")

    def __init__(self) -> None:
        ring = encryption_keys()
        self._seal = _aead(ring.keys[0]).encrypt
        self._head = f"{PREFIX}.{ring.current_id}."
        index = index_keys()
        self.index_key_id = index.current_id
        self._index_key = index.keys[0]
        # Per purpose, HMAC-SHA256's two hashes with the key's pads (and, in the inner one, the purpose's prefix)
        # already taken: each index copies them and hashes only the value. hmac.HMAC.copy does the same with two
        # Python calls more (2.6 against 1.6 us an index).
        self._keyed: dict[str, tuple[Any, Any]] = {}
        self._nonces = b""
        self._at = 0

    def encrypt(self, plaintext: str, *, purpose: bytes) -> str:
        """encrypt(plaintext, purpose=purpose.decode())."""
        if not plaintext:
            return ""
        at = self._at
        if at >= len(self._nonces):
            self._nonces, at = os.urandom(NONCE_BYTES * self.NONCES_AT_ONCE), 0
        nonce = self._nonces[at : at + NONCE_BYTES]
        self._at = at + NONCE_BYTES
        sealed = nonce + self._seal(nonce, plaintext.encode(), purpose)
        # base64.urlsafe_b64encode, without its two Python calls. (Not pybase64: it releases the GIL on every call,
        # and with the sync's fetching threads runnable each call then waits its turn back, 36 against 4.5 us.)
        return self._head + binascii.b2a_base64(sealed, newline=False).translate(_URLSAFE).decode()

    def blind_index(self, value: str, *, purpose: str) -> str:
        """blind_index(value, purpose=purpose)."""
        if not value:
            return ""
        keyed = self._keyed.get(purpose)
        if keyed is None:
            keyed = self._keyed[purpose] = _hmac_pads(self._index_key, f"{purpose}\x00".encode())
        inner, outer = keyed[0].copy(), keyed[1].copy()
        inner.update(value.encode())
        outer.update(inner.digest())
        return outer.digest()[:INDEX_BYTES].hex()


def _hmac_pads(key: bytes, prefix: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) under `key` split in its inner hash, `prefix` taken, and its outer hash: the HMAC of
    prefix + m is outer.update(inner.update(m).digest()).digest()."""
    if len(key) > _SHA256_BLOCK:  # RFC 2104: a key longer than the block is hashed first (ours are 32 bytes)
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_SHA256_BLOCK, b"\x00")
    inner = hashlib.sha256(padded.translate(_IPAD))
    inner.update(prefix)
    return inner, hashlib.sha256(padded.translate(_OPAD))


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_SHA256_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
