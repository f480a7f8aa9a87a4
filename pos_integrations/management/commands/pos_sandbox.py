"""`manage.py pos_sandbox`: serve the fake POS for all five vendors until Ctrl-C."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pos_integrations.sandbox import SANDBOX_CREDENTIALS, VENDORS, SandboxServer
from pos_integrations.sandbox.data import MAX_CUSTOMERS
from pos_integrations.sandbox.faults import FaultSpecError, parse_spec
from pos_integrations.sandbox.server import tune_gc_for_serving


class Command(BaseCommand):
    help = (
        "Serve a fake of the LeafLogix, Treez, Flowhub, Cova and Blaze customer APIs on loopback, vendor V under "
        "http://HOST:PORT/V. Control API under /_control (see pos_integrations/sandbox/README.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8765, help="Port (default 8765; 0 picks a free one).")
        parser.add_argument("--customers", type=int, default=1000, help="Customers per vendor (default 1000).")
        parser.add_argument("--seed", type=int, default=1, help="Seed of the generated data (default 1).")
        parser.add_argument(
            "--faults",
            default="",
            help='Faults to switch on, e.g. "5xx=0.1,429=0.05;treez:drop=0.02;leaflogix:ratelimit=on".',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        customers, port = options["customers"], options["port"]
        if not 0 <= customers <= MAX_CUSTOMERS:
            raise CommandError(f"--customers must be between 0 and {MAX_CUSTOMERS:,}")
        if not 0 <= port <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        try:
            parse_spec(options["faults"])
        except FaultSpecError as exc:
            raise CommandError(f"--faults: {exc}") from None
        server = SandboxServer(
            host=options["host"], port=port, customers=customers, seed=options["seed"], faults=options["faults"] or None
        )
        tune_gc_for_serving()  # this process does nothing else
        try:
            server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{port}: {exc}") from None
        self.stdout.write(f"POS sandbox: {customers:,} customers per vendor, seed {options['seed']}")
        for vendor in VENDORS:
            creds = ", ".join(f"{k}={v}" for k, v in SANDBOX_CREDENTIALS[vendor].items())
            self.stdout.write(f"  {vendor:<10} {server.vendor_url(vendor)}  ({creds})")
        self.stdout.write(f"  control    {server.url}/_control/state")
        if options["faults"]:
            self.stdout.write(f"  faults     {options['faults']}")
        self.stdout.write("Ctrl-C to stop.")
        try:
            server.wait()
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            server.stop()
