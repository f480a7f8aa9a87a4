"""`python -m pos_integrations.sandbox` — the sandbox without Django (the `pos_sandbox` command wraps the same)."""

from __future__ import annotations

import argparse
import contextlib
import sys

from .faults import FaultSpecError, parse_spec
from .server import SandboxServer, tune_gc_for_serving


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m pos_integrations.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default="")
    args = parser.parse_args(argv)
    try:
        parse_spec(args.faults)
        server = SandboxServer(
            host=args.host, port=args.port, customers=args.customers, seed=args.seed, faults=args.faults or None
        )
    except (FaultSpecError, ValueError) as exc:
        parser.error(str(exc))
    tune_gc_for_serving()
    print(f"POS sandbox on http://{args.host}:{args.port} ({args.customers:,} customers per vendor)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
