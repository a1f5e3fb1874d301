"""A TCP listener that records every connection made to it and says nothing: the proof that a
refused Sync-URL (or a redirect to it) made no connection. It accepts on a thread, notes the
peer's address and closes the connection at once."""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class RecordingListener:
    """Listens on ``host``:``port`` (0: a free port); ``connections`` lists the peers seen."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.connections: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append((str(peer[0]), int(peer[1])))
            conn.close()

    def start(self) -> RecordingListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> RecordingListener:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
