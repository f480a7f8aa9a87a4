"""`manage.py pos_sandbox`: serve the fake POS for all five vendors until Ctrl-C (as `python -m pos_sandbox`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pos_sandbox.cli import DESCRIPTION, UsageError, add_arguments, make_server, serve


class Command(BaseCommand):
    help = DESCRIPTION

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        flags = {k: options[k] for k in ("host", "port", "customers", "seed", "faults")}
        try:
            serve(make_server(**flags), self._write, faults=options["faults"])
        except UsageError as exc:
            raise CommandError(str(exc)) from None

    def _write(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
