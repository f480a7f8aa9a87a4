"""A fake of the five vendors' customer APIs over real HTTP, for demos, integration tests and benchmarks.

It imports nothing of the POS clients (pos_integrations) nor of Django, so it can check them as an
independent oracle; production code never imports it. See README.md in this package for the Python API,
the control API and the fault SPEC.

The names below load their modules on first use: Django imports this package (for the `pos_sandbox`
command) in every process, which must not load the sandbox itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import Dataset, Person
    from .faults import FaultSettings, FaultSpecError
    from .server import SandboxServer
    from .vendors import SANDBOX_CREDENTIALS, VENDORS
    from .vendors.treez import treez_v3_credentials

_HOMES = {
    "Dataset": "data",
    "Person": "data",
    "FaultSettings": "faults",
    "FaultSpecError": "faults",
    "SandboxServer": "server",
    "SANDBOX_CREDENTIALS": "vendors",
    "VENDORS": "vendors",
    "treez_v3_credentials": "vendors.treez",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)


__all__ = [
    "SANDBOX_CREDENTIALS",
    "VENDORS",
    "Dataset",
    "FaultSettings",
    "FaultSpecError",
    "Person",
    "SandboxServer",
    "treez_v3_credentials",
]
