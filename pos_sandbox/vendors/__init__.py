"""The vendors the sandbox speaks, one module each; a new vendor is a module here and a line below."""

from __future__ import annotations

from ..dialect import Dialect
from .blaze import Blaze
from .covasoft import Covasoft
from .flowhub import Flowhub
from .leaflogix import LeafLogix
from .treez import Treez

DIALECTS: dict[str, type[Dialect]] = {d.vendor: d for d in (LeafLogix, Treez, Flowhub, Covasoft, Blaze)}
VENDORS: tuple[str, ...] = tuple(DIALECTS)

# The sandbox's fixed demo credentials per vendor (not secrets: they open nothing but the local fake).
SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {v: dict(d.credentials) for v, d in DIALECTS.items()}

__all__ = ["DIALECTS", "SANDBOX_CREDENTIALS", "VENDORS", "Dialect"]
