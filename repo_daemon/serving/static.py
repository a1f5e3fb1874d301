"""The embedded static HTTP server behind ``rollout repo serve``: the areas (symlinks into
``.snapshots/``, followed), their files and directory listings, with ``policy``'s content types,
caching and visible hidden names.

It never serves ``.pool/``, ``.locks/`` or ``.snapshots/`` directly, nor anything outside the
root, and it writes nothing below the repository root. In production nginx serves the trees
(``repo_daemon.serving.nginx``).
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import http.server
import logging
import os
import signal
import socket
import socketserver
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

from repo_daemon.publish import index
from repo_daemon.serving import guard as access_guard
from repo_daemon.serving import policy

logger = logging.getLogger(__name__)


class StaticServer:
    """The trees below ``root`` over HTTP on ``host:port`` (0: a free port), with the rules of
    ``render_nginx``: GET and HEAD only; hidden paths 404 except an area's
    ``.rollout-manifest.json`` and ``.rollout-serial``; symlinks followed, but never to
    anything outside ``root`` nor into ``.pool/`` or ``.locks/``; ``..`` and ``%2e%2e``
    cannot climb out; directory listings; ``index.html`` for a directory that has one.

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
        guard: access_guard.AccessGuard | None = None,
    ) -> None:
        self.root = root.resolve(strict=True)
        handler = _handler_for(self.root, guard)
        server_class = _Server6 if ":" in host else _Server
        self.httpd = server_class((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

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


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of mirrors and sites connecting at
    # once would be refused by the kernel before a thread could take them.
    request_queue_size = 1024

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can hang on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler_for(
    root: Path, guard: access_guard.AccessGuard | None
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(_TreeHandler):
        tree_root = root
        access = guard

    return Handler


class _NotServed(Exception):
    """The request names nothing this server shows (answered 404)."""


class _TreeHandler(http.server.BaseHTTPRequestHandler):
    tree_root: Path
    access: access_guard.AccessGuard | None = None
    server_version = "rollout-repo"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60

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
            target = _resolve(self.tree_root, path)
        except _NotServed:
            self._status(404, body=body)
            return
        try:
            st = target.stat()
            if stat.S_ISDIR(st.st_mode):
                if not path.endswith("/"):
                    # Built from the checked components: never "//host/…" (an open redirect).
                    where = "/" + "/".join(quote(p) for p in _parts(path)) + "/"
                    self._status(301, body=body, extra={"Location": where})
                    return
                page = target / index.INDEX_HTML
                if page.is_file():
                    self._file(page, path + index.INDEX_HTML, body=body, cache_path=path)
                else:
                    self._listing(target, path, body=body)
            elif stat.S_ISREG(st.st_mode):
                self._file(target, path, body=body)
            else:
                self._status(404, body=body)
        except (FileNotFoundError, NotADirectoryError):
            self._status(404, body=body)  # retired by retention between resolve and open
        except PermissionError:
            self._status(403, body=body)

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


def _resolve(root: Path, url_path: str) -> Path:
    """The file or directory that ``url_path`` names below ``root`` (resolved), or
    ``_NotServed``: a hidden component (except the two an area shows), a NUL or backslash,
    anything that resolves outside ``root`` or into its hidden directories other than a
    complete snapshot."""
    try:
        parts = _parts(url_path)
    except UnicodeDecodeError as exc:
        raise _NotServed from exc
    for n, part in enumerate(parts):
        if "\x00" in part or "\\" in part:
            raise _NotServed
        if part.startswith(".") and not (n == len(parts) - 1 and part in policy.VISIBLE_HIDDEN):
            raise _NotServed  # ".", "..", ".pool", ".snapshots", ".locks", …
    try:
        real = Path(os.path.realpath(root.joinpath(*parts), strict=True))
    except (OSError, ValueError) as exc:
        raise _NotServed from exc
    if not real.is_relative_to(root):
        raise _NotServed
    inside = real.relative_to(root).parts
    hidden = [n for n, part in enumerate(inside) if part.startswith(".")]
    allowed = {0} if inside[:1] == (policy.SNAPSHOTS,) else set()  # through an area's symlink
    if inside and inside[-1] in policy.VISIBLE_HIDDEN:
        allowed.add(len(inside) - 1)
    if any(n not in allowed for n in hidden):
        raise _NotServed  # .pool/, .locks/, .building-…, .deleting-…
    return real


def _parts(url_path: str) -> list[str]:
    """The non-empty components of a URL path, percent-decoded (``UnicodeDecodeError`` for
    bytes that are not UTF-8)."""
    # "." segments are harmless (apt's flat sources ask for ".../debs/./Packages"); ".." is
    # refused by the caller.
    return [p for p in unquote(url_path, errors="strict").split("/") if p and p != "."]


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
