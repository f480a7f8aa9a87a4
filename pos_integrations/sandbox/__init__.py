"""A fake of the five vendors' customer APIs over real HTTP, for demos, integration tests and benchmarks.

See README.md in this package for the Python API, the control API and the fault SPEC.
"""

from __future__ import annotations

from typing import Any

from .credentials import SANDBOX_CREDENTIALS, treez_v3_credentials
from .data import VENDORS, Dataset
from .faults import FaultSettings, FaultSpecError, parse_spec
from .server import SandboxServer


def __getattr__(name: str) -> Any:
    # The Treez v3 key pair is made on first use (RSA generation takes a moment), not at import.
    if name == "SANDBOX_CREDENTIALS_TREEZ_V3":
        return treez_v3_credentials()
    raise AttributeError(name)


__all__ = [
    "SANDBOX_CREDENTIALS",
    "SANDBOX_CREDENTIALS_TREEZ_V3",
    "VENDORS",
    "Dataset",
    "FaultSettings",
    "FaultSpecError",
    "SandboxServer",
    "parse_spec",
    "treez_v3_credentials",
]
