"""Checks that loopback TCP ports are free, naming what holds each one that is not (stdlib only).

Usage: python3 scripts/check_ports.py "web server=8000" "POS sandbox=8765"
Exits 0 when every port is free; otherwise prints one line per busy port and exits 1. `scripts/run` calls
it before it changes anything, so a second run refuses cleanly instead of breaking the first.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

LISTEN = "0A"  # TCP state in /proc/net/tcp


def is_free(port: int) -> bool:
    """True when 127.0.0.1:port can be bound as a listening server would (SO_REUSEADDR, like runserver)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (any address), from /proc/net/tcp and tcp6 (Linux)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holders(port: int) -> list[str]:
    """'pid N: command line' of each process holding a listening socket on `port` that we may look at."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    found: list[str] = []
    if not wanted:
        return found
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
            if fds & wanted:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append(f"pid {proc.name}: {cmdline}")
        except OSError:
            continue
    return sorted(found)


def main(argv: list[str]) -> int:
    busy = []
    seen: dict[int, str] = {}
    for arg in argv:
        name, _, value = arg.rpartition("=")
        port = int(value)
        if port in seen:
            print(f"scripts/run: the {name} and the {seen[port]} cannot both use port {port}.", file=sys.stderr)
            return 1
        seen[port] = name
        if is_free(port):
            continue
        who = holders(port)
        held_by = "; ".join(who) if who else "a process this user cannot see"
        busy.append(f"  port {port} (the {name}) is in use by {held_by}")
    if busy:
        print("scripts/run: nothing was started or changed, because:", file=sys.stderr)
        print("\n".join(busy), file=sys.stderr)
        print(
            "Stop what holds the port, or choose others, e.g. WEB_PORT=8001 SANDBOX_PORT=8766 scripts/run",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
