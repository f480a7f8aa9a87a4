"""A POS that hangs: a real server on loopback that accepts every connection and never writes a byte (what a
POS stopped by SIGSTOP, or stuck behind its load balancer, looks like to us), or one that trickles: it answers,
a byte every few seconds, so that no single read waits long enough for a read timeout."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class HangingServer:
    """Listens on 127.0.0.1, accepts connections and reads what they send, never answering.

    `answers` (JSON bodies) are sent first, one per connection (with `Connection: close`), to the first
    requests: a POS that stops answering part-way. `url` is its root; `connections` counts the connections it
    accepted (each try of a request opens one, as the pool's hung connection is dropped after a timeout).

    With `trickle` (seconds), each connection after the answers gets a well-formed 200 answer with a JSON body
    one byte every `trickle` seconds (from its status line on, or, with `head_at_once`, its head at once and
    its body byte by byte), never finishing while the server runs."""

    def __init__(
        self, answers: list[bytes] | None = None, *, trickle: float | None = None, head_at_once: bool = False
    ) -> None:
        self._answers = list(answers or [])
        self._trickle = trickle
        self._head_at_once = head_at_once
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hanging-pos", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self._answers:
                self._answer(conn, self._answers.pop(0))
                continue
            if self._trickle is not None:
                threading.Thread(target=self._trickle_answer, args=(conn,), name="trickling-pos", daemon=True).start()
                continue
            conn.setblocking(False)
            self._held.append(conn)
            for held in self._held:  # drain what clients send, so they are never blocked writing
                with contextlib.suppress(BlockingIOError, OSError):
                    held.recv(65536)

    @classmethod
    def _answer(cls, conn: socket.socket, body: bytes) -> None:
        cls._read_head(conn)
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
        conn.close()

    def _trickle_answer(self, conn: socket.socket) -> None:
        assert self._trickle is not None
        self._held.append(conn)
        with contextlib.suppress(OSError):
            self._read_head(conn)
            body = b"[" + b" " * 100_000 + b"]"
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            answer = head.encode() + body
            if self._head_at_once:
                conn.sendall(head.encode())
                answer = body
            for i in range(len(answer)):
                if self._stop.wait(self._trickle):
                    return
                conn.sendall(answer[i : i + 1])

    @staticmethod
    def _read_head(conn: socket.socket) -> None:
        conn.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                break
            request += chunk

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._listener.close()


class Stopwatch:
    """Seconds elapsed inside a `with` block (`seconds`)."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self._started
