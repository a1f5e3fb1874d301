"""A loopback HTTP endpoint that records what RT's scrip POSTs (a stand-in bridge receiver)."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedHook:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HookListener:
    """Collects POSTs in a queue. ``mode`` is "ok" (204), "fail" (503) or "drop" (close)."""

    def __init__(self) -> None:
        self.received: queue.Queue[ReceivedHook] = queue.Queue()
        self.mode = "ok"
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                listener.received.put(
                    ReceivedHook(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if listener.mode == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(204 if listener.mode == "ok" else 503)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/rt"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def drain(self) -> None:
        while not self.received.empty():
            self.received.get_nowait()

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> ReceivedHook:
        """The first received hook for which ``predicate(hook)`` is true (skipping others)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching hook arrived in time")
            try:
                hook = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(hook):
                return hook

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
