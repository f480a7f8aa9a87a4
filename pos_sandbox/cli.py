"""The sandbox's command line, shared by `python -m pos_sandbox` and `manage.py pos_sandbox`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .data import MAX_CUSTOMERS
from .faults import FaultSpecError
from .server import SandboxServer, tune_gc_for_serving
from .vendors import SANDBOX_CREDENTIALS, VENDORS

DESCRIPTION = (
    "Serve a fake of the LeafLogix, Treez, Flowhub, Cova and Blaze customer APIs on loopback, vendor V under "
    "http://HOST:PORT/V, until Ctrl-C. Control API under /_control (see pos_sandbox/README.md)."
)


class UsageError(ValueError):
    """A flag the sandbox cannot serve with, or an address it cannot listen on; the message says which."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8765, help="Port (default 8765; 0 picks a free one).")
    parser.add_argument("--customers", type=int, default=1000, help="Customers per vendor (default 1000).")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the generated data (default 1).")
    parser.add_argument(
        "--faults",
        default="",
        help='Faults to switch on, e.g. "5xx=0.1,429=0.05;treez:drop=0.02;leaflogix:ratelimit=on".',
    )


def make_server(*, host: str, port: int, customers: int, seed: int, faults: str) -> SandboxServer:
    """A sandbox for these flags (not started yet); UsageError naming the flag that is wrong."""
    if not 0 <= customers <= MAX_CUSTOMERS:
        raise UsageError(f"--customers must be between 0 and {MAX_CUSTOMERS:,}")
    if not 0 <= port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    try:
        return SandboxServer(host=host, port=port, customers=customers, seed=seed, faults=faults or None)
    except FaultSpecError as exc:
        raise UsageError(f"--faults: {exc}") from None


def start(server: SandboxServer, write: Callable[[str], None], *, faults: str = "") -> None:
    """Listen, then say where each vendor is served and with which credentials."""
    try:
        server.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {server.host}:{server.requested_port}: {exc}") from None
    tune_gc_for_serving()  # this process does nothing else
    write(f"POS sandbox: {server.dataset.customers:,} customers per vendor, seed {server.dataset.seed}")
    for vendor in VENDORS:
        creds = ", ".join(f"{k}={v}" for k, v in SANDBOX_CREDENTIALS[vendor].items())
        write(f"  {vendor:<10} {server.vendor_url(vendor)}  ({creds})")
    write(f"  control    {server.url}/_control/state")
    if faults:
        write(f"  faults     {faults}")
    write("Ctrl-C to stop.")


def serve(server: SandboxServer, write: Callable[[str], None], *, faults: str = "") -> None:
    """Start, then serve until Ctrl-C."""
    start(server, write, faults=faults)
    try:
        server.wait()
    except KeyboardInterrupt:
        write("Stopping.")
    finally:
        server.stop()
