"""`python -m pos_sandbox` — the sandbox without Django (`manage.py pos_sandbox` is the same)."""

from __future__ import annotations

import argparse
import sys

from .cli import DESCRIPTION, UsageError, add_arguments, make_server, serve


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m pos_sandbox", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        server = make_server(
            host=args.host, port=args.port, customers=args.customers, seed=args.seed, faults=args.faults
        )
        serve(server, lambda line: print(line, flush=True), faults=args.faults)
    except UsageError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
