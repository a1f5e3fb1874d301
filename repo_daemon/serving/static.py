"""The embedded static HTTP server behind ``rollout repo serve``: the areas (symlinks into
``.snapshots/`` or, in the tree layout, into ``.trees/``, followed with the trees' metadata
links), their files and directory listings, with ``policy``'s content types, caching and
visible hidden names.

It never serves ``.pool/``, ``.locks/``, ``.snapshots/`` or ``.trees/`` directly, nor anything
outside the root, nor through a symlink other than the bridge's own, and it writes nothing below the
repository root. In production nginx serves the trees (``repo_daemon.serving.nginx``).
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import http.server
import io
import logging
import os
import resource
import signal
import socket
import socketserver
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

from repo_daemon.publish import index
from repo_daemon.serving import guard as access_guard
from repo_daemon.serving import policy, served_paths

logger = logging.getLogger(__name__)

# A burst of mirrors and sites after a release: 1,000 concurrent downloads and some room.
DEFAULT_MAX_CONNECTIONS = 2048
# The request line and headers (and the keep-alive wait before them), in seconds.
DEFAULT_HEADER_TIMEOUT = 20.0
# No byte received or sent for this long: the client is gone or stalled.
DEFAULT_IDLE_TIMEOUT = 30.0
# Enough file descriptors for max_connections and the files being sent.
_WANTED_FILES = 2 * DEFAULT_MAX_CONNECTIONS + 256
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 24\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
    b"503 Service Unavailable\n"
)


class StaticServer:
    """The trees below ``root`` over HTTP on ``host:port`` (0: a free port), with the rules of
    ``render_nginx``: GET and HEAD only; hidden paths 404 except an area's
    ``.rollout-manifest.json`` and ``.rollout-serial``; an area's own symlink into one of its
    snapshots followed, no other symlink; ``..`` and ``%2e%2e`` cannot climb out; directory
    listings; ``index.html`` for a directory that has one.

    One thread per connection, at most ``max_connections`` at once (one more is answered 503
    and closed). A connection must send a request's line and headers within
    ``header_timeout`` seconds (also the keep-alive wait for the next request), and is closed
    when ``idle_timeout`` seconds pass without a byte moving either way: a slow or stalled
    client holds one thread for a bounded time, never the server.

    ``start()`` serves from a thread, ``serve_forever()`` from the caller's; ``close()``
    stops either. No Range requests, no compression: the embedded default, not a CDN.

    ``guard`` applies the access rule before anything is looked up, the same as nginx's
    ``auth_request`` (docs/access.md); None serves every area to anyone.
    """

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        guard: access_guard.AccessGuard | None = None,
    ) -> None:
        if max_connections < 1 or header_timeout <= 0 or idle_timeout <= 0:
            raise ValueError("max_connections and the timeouts must be positive")
        self.root = root.resolve(strict=True)
        handler = _handler_for(
            self.root, header_timeout=header_timeout, idle=idle_timeout, guard=guard
        )
        server_class = _Server6 if ":" in host else _Server
        self.httpd = server_class((host, port), handler)
        self.httpd.max_connections = max_connections
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def connections(self) -> int:
        """How many connections are being handled now."""
        return self.httpd.active

    @property
    def url(self) -> str:
        host = str(self.httpd.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> StaticServer:
        self._thread = threading.Thread(target=self.serve_forever, name="repo-serve", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (from another thread than the one running it)."""
        self.httpd.shutdown()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def serve_static(
    root: Path, host: str, port: int, *, guard: access_guard.AccessGuard | None = None
) -> None:
    """Serve the trees below ``root`` on ``host:port`` until SIGTERM or SIGINT (``rollout repo
    serve``), with the access rule of ``guard``. Must run in the main thread (it installs
    signal handlers, and restores the previous ones on return). Raises ``OSError`` if the
    address cannot be bound."""
    _raise_file_limit(_WANTED_FILES)
    server = StaticServer(root, host, port, guard=guard)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            # shutdown() waits for serve_forever to return: not from its own thread.
            threading.Thread(target=server.shutdown, name="repo-serve-stop").start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    logger.info("serving %s on %s", root, server.url, extra={"action": "serve"})
    try:
        server.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.httpd.server_close()
        logger.info("stopped serving on %s", server.url, extra={"action": "serve"})


def _raise_file_limit(wanted: int) -> None:
    """Raise this process's soft limit of open files towards ``wanted`` (never above the hard
    limit): one descriptor per connection and one per file being sent, where a login shell
    often gives 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of mirrors and sites connecting at
    # once would be refused by the kernel before a thread could take them.
    request_queue_size = 1024
    max_connections = DEFAULT_MAX_CONNECTIONS

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self.active = 0  # connections being handled, each by a thread of its own
        self._count = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count:
            busy = self.active >= self.max_connections
            if not busy:
                self.active += 1
        if busy:
            # Over the cap: answer at once rather than start yet another thread.
            with contextlib.suppress(OSError):
                request.setblocking(False)
                request.send(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()  # the thread never started
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self._count:
            self.active -= 1

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can hang on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler_for(
    root: Path,
    *,
    header_timeout: float,
    idle: float,
    guard: access_guard.AccessGuard | None = None,
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(_TreeHandler):
        tree_root = root
        timeout = idle
        headers_within = header_timeout
        access = guard

    return Handler


class _DeadlineReader(io.RawIOBase):
    """The receiving side of a connection, under ``rfile``: every ``recv`` waits at most the
    idle timeout, and none goes past ``deadline`` when one is set. A request line and
    headers sent one byte at a time (slowloris) end at the deadline, not at the next idle
    timeout."""

    def __init__(self, connection: socket.socket, idle: float) -> None:
        super().__init__()
        self._connection = connection
        self._idle = idle
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self._idle
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the request's headers took too long")
        self._connection.settimeout(wait)
        return self._connection.recv_into(buffer)


class _TreeHandler(http.server.BaseHTTPRequestHandler):
    tree_root: Path
    access: access_guard.AccessGuard | None = None
    server_version = "rollout-repo"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = DEFAULT_IDLE_TIMEOUT  # per socket operation: socketserver sets it in setup()
    headers_within = DEFAULT_HEADER_TIMEOUT

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # socketserver's plain reader: replaced by one with a deadline
        self._reader = _DeadlineReader(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._reader, io.DEFAULT_BUFFER_SIZE)

    def handle_one_request(self) -> None:
        # From the wait for the request line to the end of the headers (parse_request).
        self._reader.deadline = time.monotonic() + self.headers_within
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self._reader.deadline = None
        self.connection.settimeout(self.timeout)  # sending: the idle timeout again
        return parsed

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _refuse_method(self) -> None:
        self._status(405, extra={"Allow": "GET, HEAD"})

    # ------------------------------------------------------------------ one request

    def _serve(self, *, body: bool) -> None:
        path = urlsplit(self.path).path
        if self.access is not None:
            answer = self.access.check(path, self.headers.get("Authorization"))
            if not answer.allowed:
                self._status(answer.status, body=body, extra=answer.headers)
                return
        try:
            target = served_paths.resolve(self.tree_root, path)
        except served_paths.NotServed:
            self._status(404, body=body)
            return
        try:
            st = target.stat()
            if stat.S_ISDIR(st.st_mode):
                if not path.endswith("/"):
                    # Built from the checked components: never "//host/…" (an open redirect).
                    where = "/" + "/".join(quote(p) for p in served_paths.url_parts(path)) + "/"
                    self._status(301, body=body, extra={"Location": where})
                    return
                page = self._index_page(target, path)
                if page is not None:
                    self._file(page, path + index.INDEX_HTML, body=body, cache_path=path)
                else:
                    self._listing(target, path, body=body)
            elif stat.S_ISREG(st.st_mode):
                self._file(target, path, body=body)
            else:
                self._status(404, body=body)
        except (FileNotFoundError, NotADirectoryError, served_paths.NotServed):
            self._status(404, body=body)  # retired by retention between resolve and open
        except PermissionError:
            self._status(403, body=body)

    def _index_page(self, directory: Path, path: str) -> Path | None:
        """The directory's ``index.html`` (its real path), checked by the same rule as a
        request for it (in a tree-layout area it is a metadata link); None: a listing.
        ``served_paths.NotServed`` when one is there that the rule refuses (a planted link)."""
        if not os.path.lexists(directory / index.INDEX_HTML):
            return None
        page = served_paths.resolve(self.tree_root, path + index.INDEX_HTML)
        return page if page.is_file() else None

    def _file(self, target: Path, path: str, *, body: bool, cache_path: str | None = None) -> None:
        with target.open("rb") as reader:
            st = os.fstat(reader.fileno())
            self.send_response(200)
            self.send_header("Content-Type", policy.content_type(target.name))
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            # The inode and the nanoseconds too: a publication swaps in new files, and two in
            # the same second with same-sized files (.rollout-serial) must not look unchanged.
            self.send_header("ETag", f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"')
            self._common(cache_path if cache_path is not None else path)
            self.end_headers()
            if body and st.st_size:
                self._send_file(reader, st.st_size)

    def _send_file(self, reader: BinaryIO, size: int) -> None:
        self.wfile.flush()
        try:
            self.connection.sendfile(reader, 0, size)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _listing(self, directory: Path, path: str, *, body: bool) -> None:
        entries = []
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()  # follows symlinks: an area is a directory
                except OSError:
                    continue
                entries.append((entry.name + ("/" if is_dir else ""), is_dir))
        entries.sort()
        e = html.escape
        title = f"Index of {unquote(path)}"
        rows = [f'<a href="{e(quote(name), quote=True)}">{e(name)}</a>' for name, _ in entries]
        page = (
            f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
            f"<title>{e(title)}</title></head>\n<body>\n<h1>{e(title)}</h1>\n<pre>\n"
            + ('<a href="../">../</a>\n' if path != "/" else "")
            + "\n".join(rows)
            + ("\n" if rows else "")
            + "</pre>\n</body>\n</html>\n"
        ).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self._common(path)
        self.end_headers()
        if body:
            self.wfile.write(page)

    def _status(
        self, code: int, *, body: bool = True, extra: Mapping[str, str] | None = None
    ) -> None:
        text = f"{code} {self.responses.get(code, ('',))[0]}\n".encode()
        self.send_response(code)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(text)

    def _common(self, path: str) -> None:
        self.send_header("Cache-Control", policy.cache_control(path))
        self.send_header("X-Content-Type-Options", "nosniff")

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args, extra={"action": "serve"})


for _method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"):
    setattr(_TreeHandler, f"do_{_method}", _TreeHandler._refuse_method)


@contextlib.contextmanager
def running(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    guard: access_guard.AccessGuard | None = None,
) -> Iterator[StaticServer]:
    """A ``StaticServer`` serving from a thread for the duration of a ``with`` block."""
    server = StaticServer(root, host, port, guard=guard).start()
    try:
        yield server
    finally:
        server.close()
