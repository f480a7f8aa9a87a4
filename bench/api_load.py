"""Load generator for the API benchmark: N concurrent HTTP/1.1 clients on one asyncio loop (light on CPU,
so the server gets the machine). Reads a JSON list of paths, prints JSON stats. Loopback only.

    python bench/api_load.py --port 8001 --key cf_... --concurrency 16 --paths paths.json [--seconds 60]

Each client goes through its share of the paths once, or, with --seconds, round and round until the time is up.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from pathlib import Path


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> tuple[int, bool]:
    writer.write(head)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _client(
    host: str, port: int, key: str, paths: list[str], out: list[tuple[float, int]], until: float | None = None
) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    for path in paths if until is None else itertools.cycle(paths):
        if until is not None and time.perf_counter() >= until:
            break
        head = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Api-Key {key}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        for attempt in range(2):
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            try:
                status, close = await _request(*conn, head)
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                # A kept-alive connection the server had already closed: reconnect once.
                conn[1].close()
                conn = None
                if attempt:
                    status, close = 599, True
        out.append((time.perf_counter() - started, status))
        if close and conn is not None:
            conn[1].close()
            conn = None
    if conn is not None:
        conn[1].close()


async def run(
    host: str, port: int, key: str, paths: list[str], concurrency: int, expect: int = 200, seconds: float | None = None
) -> dict[str, object]:
    shares = [paths[i::concurrency] for i in range(concurrency)]
    results: list[tuple[float, int]] = []
    started = time.perf_counter()
    until = None if seconds is None else started + seconds
    await asyncio.gather(*(_client(host, port, key, share, results, until) for share in shares))
    elapsed = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    errors = sum(1 for r in results if r[1] != expect)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(results),
        "seconds": round(elapsed, 2),
        "rps": round(len(results) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "errors": errors,
        "statuses": sorted({r[1] for r in results}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--expect", type=int, default=200, help="The status every answer should have.")
    parser.add_argument("--paths", type=Path, required=True, help="A JSON file with the list of paths to GET.")
    parser.add_argument("--seconds", type=float, help="Go round the paths until this many seconds have passed.")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("Loopback only.")
    paths = json.loads(args.paths.read_text())
    print(
        json.dumps(asyncio.run(run(args.host, args.port, args.key, paths, args.concurrency, args.expect, args.seconds)))
    )


if __name__ == "__main__":
    main()
