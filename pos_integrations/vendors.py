"""Vendor keys and the credentials each vendor needs (see shared/pos-apis.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import PosError
from .ratelimit import RateLimit

LEAFLOGIX = "leaflogix"
TREEZ = "treez"
FLOWHUB = "flowhub"
COVASOFT = "covasoft"
BLAZE = "blaze"

VENDOR_LABELS: dict[str, str] = {
    LEAFLOGIX: "LeafLogix (Dutchie POS)",
    TREEZ: "Treez",
    FLOWHUB: "Flowhub",
    COVASOFT: "Cova",
    BLAZE: "Blaze",
}
VENDORS: tuple[str, ...] = tuple(VENDOR_LABELS)

# Each vendor accepts one of several sets of keys; the first set is the usual one.
REQUIRED_CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    LEAFLOGIX: (("api_key",),),
    TREEZ: (
        ("dispensary", "client_id", "api_key"),
        ("dispensary", "certificate_id", "organization_id", "private_key"),
    ),
    FLOWHUB: (("client_id", "api_key", "store_id"),),
    COVASOFT: (("company_id", "username", "password", "client_id", "client_secret"),),
    BLAZE: (("partner_key", "api_key"),),
}
OPTIONAL_CREDENTIALS: dict[str, tuple[str, ...]] = {
    LEAFLOGIX: ("integrator_key",),
    TREEZ: (),
    FLOWHUB: (),
    COVASOFT: ("token_url",),
    BLAZE: (),
}

# Each vendor's published rate limit (shared/pos-apis.md; the vendor specs publish none) and which credentials
# share it. Treez publishes none: its budget is learnt from 429s (pos_integrations.ratelimit).
PUBLISHED_RATE_LIMITS: dict[str, RateLimit | None] = {
    LEAFLOGIX: RateLimit(120, 60.0),  # the customer endpoints' tier, per location key
    TREEZ: None,
    FLOWHUB: RateLimit(59, 1.0),  # observed, not published: 429s start at about 59 a second
    COVASOFT: RateLimit(1000, 60.0),  # the iQmetrix gateway's window (it reports X-RateLimit-* too)
    BLAZE: RateLimit(10_000, 300.0),  # per partner key, over all the partner's shops
}
RATE_LIMIT_CREDENTIALS: dict[str, tuple[str, ...]] = {
    LEAFLOGIX: ("api_key",),
    TREEZ: ("dispensary", "client_id", "certificate_id", "organization_id"),
    FLOWHUB: ("client_id", "api_key"),
    COVASOFT: ("company_id", "client_id"),
    BLAZE: ("partner_key",),
}


class CredentialsError(PosError, ValueError):
    """The credentials given for a vendor are incomplete or malformed."""

    def __init__(self, vendor: str, missing: list[str], message: str | None = None) -> None:
        PosError.__init__(
            self,
            message or f"{VENDOR_LABELS.get(vendor, vendor)} credentials are missing: {', '.join(missing)}",
            vendor=vendor,
        )
        self.missing = missing


def validate_credentials(vendor: str, credentials: Mapping[str, Any] | None) -> None:
    """Raise CredentialsError naming what is missing unless one accepted key set is complete."""
    if vendor not in REQUIRED_CREDENTIALS:
        raise CredentialsError(vendor, [], f"Unknown POS vendor {vendor!r}")
    if not isinstance(credentials, Mapping):
        raise CredentialsError(vendor, [], "POS credentials must be an object of key/value pairs")
    present = {k for k, v in credentials.items() if isinstance(v, str) and v.strip()}
    bad_types = sorted(k for k, v in credentials.items() if v is not None and not isinstance(v, str))
    if bad_types:
        raise CredentialsError(vendor, [], f"POS credential values must be strings: {', '.join(bad_types)}")
    options = REQUIRED_CREDENTIALS[vendor]
    if any(present.issuperset(keys) for keys in options):
        return
    # Name what is missing from the set closest to complete.
    best = min(options, key=lambda keys: len(set(keys) - present))
    missing = [k for k in best if k not in present]
    if len(options) > 1:
        alternatives = " or ".join("(" + ", ".join(keys) + ")" for keys in options)
        raise CredentialsError(
            vendor,
            missing,
            f"{VENDOR_LABELS[vendor]} credentials are missing: {', '.join(missing)} (needs {alternatives})",
        )
    raise CredentialsError(vendor, missing)
