"""Drive one API benchmark scenario with wrk (C, event loop: far lighter on the shared CPUs than a Python client)
and bench/api_wrk.lua. Same stats shape as bench/api_load.py. Loopback only.

    python bench/api_wrk.py --port 8031 --key cf_... --paths paths.json --duration 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "api_wrk.lua"


def available() -> bool:
    return shutil.which("wrk") is not None


def version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split("\n", 1)[0].split(" [", 1)[0].strip()


def run(
    *,
    port: int,
    key: str,
    paths: list[str],
    concurrency: int,
    duration: float,
    threads: int = 1,
    expected_status: int = 200,
    host: str = "127.0.0.1",
) -> dict[str, object]:
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("Loopback only.")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(paths) + "\n")
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "5s",
                "--latency",
                "-s",
                str(SCRIPT),
                f"http://{host}:{port}",
                "--",
                f.name,
                key,
                str(expected_status),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        Path(f.name).unlink()
    line = next(line for line in reversed(out.stdout.splitlines()) if line.startswith("{"))
    raw = json.loads(line)
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "mean_ms": round(raw["mean_us"] / 1000, 2),
        # A wrong status (anything but the expected one) or a connection that failed, broke or timed out.
        "errors": raw["wrong_status"] + socket_errors,
        "socket_errors": socket_errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--expect", type=int, default=200)
    parser.add_argument("--paths", type=Path, required=True, help="A JSON file with the list of paths to GET.")
    args = parser.parse_args()
    if not available():
        sys.exit("wrk is not installed (apt-get install wrk).")
    stats = run(
        port=args.port,
        key=args.key,
        paths=json.loads(args.paths.read_text()),
        concurrency=args.concurrency,
        duration=args.duration,
        threads=args.threads,
        expected_status=args.expect,
    )
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
