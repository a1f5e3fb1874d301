"""A provider's HTTPS server that trickles: it serves a directory over TLS on 127.0.0.1 (a
certificate of a throw-away CA, as ``https_server.HttpsServer``) and sends every body at
``rate`` bytes per second, one byte at a time, for as long as the client keeps the
connection. It records each connection's opening and closing as it sees them, so a test can
tell that the client hung up (a server that writes one byte a second notices within a second:
it waits for the client's end between bytes)."""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path

from tests.support.https_server import HttpsServer, _QuietHandler


class TricklingHttpsServer(HttpsServer):
    """``opened`` and ``closed`` list the request paths whose bodies began and whose
    connections the client closed; ``sent`` counts body bytes sent."""

    def __init__(self, workdir: Path, root: Path, *, rate: float = 1.0) -> None:
        super().__init__(workdir, root)
        self.rate = rate
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.sent = 0
        self.changed = threading.Condition()
        server = self

        class Trickle(_QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = Path(server.root, self.path.lstrip("/"))
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                with server.changed:
                    server.opened.append(self.path)
                    server.changed.notify_all()
                for byte in body:
                    if not server._send(self, bytes([byte])):
                        break
                self.close_connection = True

        self.httpd.RequestHandlerClass = Trickle

    def _send(self, handler: _QuietHandler, data: bytes) -> bool:
        """Send ``data``, then wait a byte's time for the client to hang up. False (recorded
        in ``closed``) when it did."""
        try:
            handler.wfile.write(data)
            handler.wfile.flush()
        except OSError:
            return self._hung_up(handler.path)
        with self.changed:
            self.sent += len(data)
            self.changed.notify_all()
        until = time.monotonic() + len(data) / self.rate
        while (left := until - time.monotonic()) > 0:
            readable, _, _ = select.select([handler.connection], [], [], left)
            if readable:
                try:
                    if handler.connection.recv(1) == b"":
                        return self._hung_up(handler.path)
                except OSError:
                    return self._hung_up(handler.path)
        return True

    def _hung_up(self, path: str) -> bool:
        with self.changed:
            self.closed.append(path)
            self.changed.notify_all()
        return False

    def wait(self, predicate: object, timeout: float) -> bool:
        """Wait until ``predicate()`` (a callable) holds; False after ``timeout`` seconds."""
        assert callable(predicate)
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


class TricklingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``port`` (a real rsync daemon or sshd) that passes
    what the client sends at once and what the server answers at ``rate`` bytes per second:
    any protocol's provider, trickling. ``closed`` counts connections the client closed (seen
    by the proxy within a byte's time)."""

    def __init__(self, port: int, *, rate: float = 1.0) -> None:
        self.upstream = port
        self.rate = rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.opened = 0
        self.closed = 0
        self.changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.listener.close()
        self._thread.join(timeout=10)

    def __enter__(self) -> TricklingProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, predicate: object, timeout: float) -> bool:
        assert callable(predicate)
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            with self.changed:
                self.opened += 1
                self.changed.notify_all()
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._trickle, args=(client, server), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        """What the client sends goes to the server at once."""
        try:
            while data := client.recv(65536):
                server.sendall(data)
        except OSError:
            pass

    def _trickle(self, client: socket.socket, server: socket.socket) -> None:
        """What the server answers reaches the client a byte at a time; a client that hangs
        up is noticed between two bytes."""
        pending = b""
        try:
            while True:
                if not pending:
                    pending = server.recv(65536)
                    if not pending:
                        break
                client.sendall(pending[:1])
                pending = pending[1:]
                until = time.monotonic() + 1 / self.rate
                while (left := until - time.monotonic()) > 0:
                    readable, _, errored = select.select([client], [], [client], left)
                    if readable or errored:
                        # The client's data is the upstream thread's; peek for its hang-up.
                        if client.recv(1, socket.MSG_PEEK) == b"":
                            raise ConnectionResetError
                        time.sleep(min(left, 0.05))  # its data is on its way upstream
        except OSError:
            with self.changed:
                self.closed += 1
                self.changed.notify_all()
        finally:
            client.close()
            server.close()
