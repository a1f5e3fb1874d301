"""Serving the published trees to clients and mirrors: the nginx and rsyncd configurations the
product ships (pure renderers: text in, text out, nothing read or written) and the embedded
static HTTP server behind ``rollout repo serve``.

What is served, everywhere: the areas (symlinks into ``.snapshots/``, followed), their files
and directory listings, and of the hidden names only ``.rollout-manifest.json`` and
``.rollout-serial``. Never ``.pool/`` nor ``.locks/``. ``.snapshots/`` is not served over
HTTP; the rsync module offers it, because copying one immutable snapshot is how a mirror gets
a consistent tree (docs/serving.md). Nothing here writes below the repository root.

Over 500 lines for now: its split along these seams is on branch h-cli (policy, nginx, rsyncd,
static), not merged yet (issue 12).
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import http.server
import logging
import os
import re
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

from repo_daemon.publish import index, manifest

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8751"
DEFAULT_MODULE = "repo"
SNAPSHOTS = ".snapshots"
# The hidden names a client or mirror may fetch from an area.
VISIBLE_HIDDEN = frozenset({manifest.MANIFEST_NAME, index.SERIAL_NAME})

# Content types by suffix, the same for nginx and the embedded server. Everything else (and
# apt's Packages, Release, InRelease) is application/octet-stream, or text/plain below.
CONTENT_TYPES: Mapping[str, str] = {
    "rpm": "application/x-rpm",
    "deb": "application/vnd.debian.binary-package",
    "udeb": "application/vnd.debian.binary-package",
    "xml": "application/xml",
    "gz": "application/gzip",
    "xz": "application/x-xz",
    "zst": "application/zstd",
    "bz2": "application/x-bzip2",
    "json": "application/json",
    "html": "text/html",
    "txt": "text/plain",
    "repo": "text/plain",
    "sources": "text/plain",
    "list": "text/plain",
    "asc": "application/pgp-keys",
    "gpg": "application/pgp-signature",
    "key": "application/pgp-keys",
    "sig": "application/pgp-signature",
}
TEXT_NAMES = frozenset({"Release", "InRelease", "Packages", index.SERIAL_NAME})
# The types nginx adds "; charset=utf-8" to (charset_types below).
_CHARSET_TYPES = frozenset({"text/html", "text/plain", "application/json"})

# Caching. Metadata and pages change with every publication: clients revalidate each time
# (ETag / Last-Modified make that a 304). Content-addressed files never change under their name.
# Packages keep their name and bytes in practice, but a release can be replaced while it is
# still in unverified, so a day, not forever.
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
PACKAGE = "public, max-age=86400"
_NO_CACHE_NAMES = re.compile(
    r"(?:^|/)(?:repomd\.xml(?:\.asc|\.key)?|(?:In)?Release(?:\.gpg)?|Packages(?:\.gz|\.xz)?"
    r"|index\.(?:json|html)|\.rollout-manifest\.json|\.rollout-serial|RPM-GPG-KEY-[^/]*"
    r"|[^/]*\.(?:repo|sources|list|asc))$"
)
_IMMUTABLE = re.compile(r"/by-hash/|(?:^|/)repodata/[0-9a-f]{64}-[^/]*$")

# Values written into configuration files. Conservative on purpose: a root path with a
# space, "$", ";", quote or newline would change the meaning of nginx.conf or rsyncd.conf.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+,@=~/-]*")
_SAFE_LISTEN = re.compile(r"[A-Za-z0-9.:\[\]_-]+")
_SAFE_NAMES = re.compile(r"[A-Za-z0-9.*_ -]+")
_SAFE_WORD = re.compile(r"[A-Za-z0-9._-]+")


def cache_control(path: str) -> str:
    """The ``Cache-Control`` value for URL path ``path`` (the nginx locations say the same):
    ``NO_CACHE`` for directories, indexes, repository metadata and client files;
    ``IMMUTABLE`` for ``by-hash/`` and checksum-named ``repodata/`` files; ``PACKAGE`` else."""
    if path.endswith("/") or path == "":
        return NO_CACHE
    if _IMMUTABLE.search(path):
        return IMMUTABLE
    if _NO_CACHE_NAMES.search(path):
        return NO_CACHE
    return PACKAGE


def content_type(name: str) -> str:
    """The ``Content-Type`` for a file called ``name``."""
    if name in TEXT_NAMES:
        return "text/plain; charset=utf-8"
    suffix = name.rpartition(".")[2] if "." in name.lstrip(".") else ""
    kind = CONTENT_TYPES.get(suffix, "application/octet-stream")
    return f"{kind}; charset=utf-8" if kind in _CHARSET_TYPES else kind


def _check(what: str, value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not safe in a configuration file")
    return value


def _root(root: Path) -> str:
    text = _check("repository root", str(root), _SAFE_PATH)
    if not root.is_absolute():
        raise ValueError(f"repository root {str(root)!r} must be absolute")
    return text.rstrip("/") or "/"


# --------------------------------------------------------------------------- nginx


def render_nginx(
    root: Path,
    *,
    listen: str = DEFAULT_LISTEN,
    server_name: str = "_",
) -> str:
    """An nginx ``server { … }`` block serving the trees below ``root`` (absolute).

    Areas are symlinks into ``.snapshots/``: nginx resolves them on every request (no
    ``open_file_cache``: it would keep serving a retired snapshot's metadata). Directory
    listings are on; an area's top shows its ``index.html``. ``/.pool/``, ``/.locks/``,
    ``/.snapshots/`` and every other hidden path answer 404, except an area's
    ``.rollout-manifest.json`` and ``.rollout-serial``. Only GET and HEAD. Raises
    ``ValueError`` for a root, listen address or name unsafe in nginx.conf.
    """
    base = _root(root)
    _check("listen address", listen, _SAFE_LISTEN)
    _check("server name", server_name, _SAFE_NAMES)
    types = "\n".join(
        f"        {kind} {' '.join(sorted(s for s, k in CONTENT_TYPES.items() if k == kind))};"
        for kind in sorted(set(CONTENT_TYPES.values()))
    )

    def headers(cache: str) -> str:
        # add_header in a location drops the server's: each location says all of its own.
        return (
            f'        add_header Cache-Control "{cache}" always;\n'
            "        add_header X-Content-Type-Options nosniff always;"
        )

    return f"""\
# Rollout bridge: the package trees below {base}, read only (rollout repo nginx-conf).
server {{
    listen {listen};
    server_name {server_name};
    root {base};

    # Areas are symlinks to immutable snapshots: follow them, resolve them on every request.
    disable_symlinks off;
    open_file_cache off;
    sendfile on;
    tcp_nopush on;
    etag on;
    autoindex on;
    autoindex_exact_size on;
    index index.html;
    absolute_redirect off;
    server_tokens off;
    charset utf-8;
    charset_types text/plain application/json;  # and text/html, always
    default_type application/octet-stream;
    types {{
{types}
    }}

    if ($request_method !~ ^(GET|HEAD)$) {{
        return 405;
    }}

    # The bridge's own state: never served.
    location ^~ /.pool/ {{
        return 404;
    }}
    location ^~ /.locks/ {{
        return 404;
    }}
    # Snapshots are reached through their areas; mirrors copy them with rsync.
    location ^~ /.snapshots/ {{
        return 404;
    }}
    # The two hidden files of an area that mirrors read (no other hidden component on the way).
    location ~ "^(/[^./][^/]*)+/\\.rollout-(manifest\\.json|serial)$" {{
{headers(NO_CACHE)}
        default_type text/plain;
    }}
    # Any other hidden path (.building-…, .<area>.swap-…, …).
    location ~ "/\\." {{
        return 404;
    }}
    # Content-addressed: by-hash/ indexes, checksum-named repodata files.
    location ~ "(/by-hash/|/repodata/[0-9a-f]{{64}}-[^/]*$)" {{
{headers(IMMUTABLE)}
    }}
    # apt's indexes without a suffix: text.
    location ~ "/((In)?Release|Packages)$" {{
{headers(NO_CACHE)}
        default_type text/plain;
    }}
    # Metadata, indexes, client files and directory listings: revalidate every time.
    location ~ "(/|/repomd\\.xml(\\.asc|\\.key)?|/Release\\.gpg|/Packages\\.(gz|xz)|/index\\.(json|html)|/RPM-GPG-KEY-[^/]*|\\.(repo|sources|list|asc))$" {{
{headers(NO_CACHE)}
    }}
    location / {{
{headers(PACKAGE)}
    }}
}}
"""  # noqa: E501


def render_nginx_conf(
    root: Path,
    *,
    workdir: Path,
    listen: str = DEFAULT_LISTEN,
    server_name: str = "_",
    user: str | None = None,
) -> str:
    """A complete, minimal ``nginx.conf`` around ``render_nginx``: pid file, logs and temporary
    directories below ``workdir`` (absolute), so it runs without touching /etc or /var:
    ``nginx -c CONF -p WORKDIR -e WORKDIR/error.log -g 'daemon off;'``. ``user`` is the
    account of the worker processes when nginx starts as root (nginx ignores it otherwise).
    """
    work = _root(workdir)
    server = render_nginx(root, listen=listen, server_name=server_name)
    user_line = f"user {_check('user', user, _SAFE_WORD)};\n" if user else ""
    indented = "\n".join(("    " + line) if line else "" for line in server.splitlines())
    return f"""\
# Rollout bridge: a standalone nginx for the package trees.
{user_line}worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;

events {{
    worker_connections 256;
}}

http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    keepalive_timeout 30;

{indented}
}}
"""


# --------------------------------------------------------------------------- rsyncd


def render_rsyncd(
    root: Path,
    *,
    port: int,
    address: str = "127.0.0.1",
    module: str = DEFAULT_MODULE,
    run_dir: Path = Path("/run/rollout-rsyncd"),
    log_file: Path | None = None,
    uid: str | None = "nobody",
    gid: str | None = "nogroup",
    use_chroot: bool = True,
    max_connections: int = 20,
    timeout: int = 600,
) -> str:
    """An ``rsyncd.conf`` with one read-only module, ``module``, for the whole tree below
    ``root``: the areas (symlinks into ``.snapshots/``, which must stay inside the module for
    rsync ≥ 3.5 to follow them) and ``.snapshots/`` itself, the immutable trees consistent
    mirrors copy. ``.pool/``, ``.locks/`` and half-built or half-deleted snapshots are
    excluded by the daemon. Run it with ``rsync --daemon --no-detach --config=FILE``.

    ``use_chroot`` (needs a daemon started as root) chroots every transfer into ``root``;
    ``uid``/``gid`` are the accounts transfers run as (None: the daemon's own). pid and lock
    files go into ``run_dir``; the log into ``log_file`` (None: syslog). Raises
    ``ValueError`` for values unsafe in rsyncd.conf.
    """
    base = _root(root)
    run = _root(run_dir)
    _check("address", address, _SAFE_LISTEN)
    _check("module name", module, _SAFE_WORD)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    lines = [
        f"# Rollout bridge: the package trees below {base}, read only (rollout repo rsyncd-conf).",
        f"port = {port}",
        f"address = {address}",
        f"pid file = {run}/rsyncd.pid",
        f"lock file = {run}/rsyncd.lock",
    ]
    if log_file is not None:
        lines.append(f"log file = {_root(log_file)}")
    else:
        lines.append("syslog facility = daemon")
    if uid is not None:
        lines.append(f"uid = {_check('uid', uid, _SAFE_WORD)}")
    if gid is not None:
        lines.append(f"gid = {_check('gid', gid, _SAFE_WORD)}")
    lines += [
        "reverse lookup = no",
        "numeric ids = yes",
        "transfer logging = no",
        f"timeout = {int(timeout)}",
        f"max connections = {int(max_connections)}",
        "",
        f"[{module}]",
        "    comment = Rollout bridge package trees (read only)",
        f"    path = {base}",
        # chroot straight into the root: symlinks resolve inside it, nothing outside exists.
        f"    use chroot = {'yes' if use_chroot else 'no'}",
        "    read only = yes",
        "    list = yes",
        # The areas are the bridge's relative symlinks; mirrors copying the whole root get
        # them as they are. Nobody can upload (read only), so there is nothing to munge.
        "    munge symlinks = no",
        "    exclude = /.pool/ /.locks/ .building-* .deleting-* .*.swap-*",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- embedded server


class StaticServer:
    """The trees below ``root`` over HTTP on ``host:port`` (0: a free port), with the rules of
    ``render_nginx``: GET and HEAD only; hidden paths 404 except an area's
    ``.rollout-manifest.json`` and ``.rollout-serial``; symlinks followed, but never to
    anything outside ``root`` nor into ``.pool/`` or ``.locks/``; ``..`` and ``%2e%2e``
    cannot climb out; directory listings; ``index.html`` for a directory that has one.

    ``start()`` serves from a thread, ``serve_forever()`` from the caller's; ``close()``
    stops either. No Range requests, no compression: the embedded default, not a CDN.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root.resolve(strict=True)
        handler = _handler_for(self.root)
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


def serve_static(root: Path, host: str, port: int) -> None:
    """Serve the trees below ``root`` on ``host:port`` until SIGTERM or SIGINT (``rollout repo
    serve``). Must run in the main thread (it installs signal handlers, and restores the
    previous ones on return). Raises ``OSError`` if the address cannot be bound."""
    server = StaticServer(root, host, port)
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

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can hang on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler_for(root: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(_TreeHandler):
        tree_root = root

    return Handler


class _NotServed(Exception):
    """The request names nothing this server shows (answered 404)."""


class _TreeHandler(http.server.BaseHTTPRequestHandler):
    tree_root: Path
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
            self.send_header("Content-Type", content_type(target.name))
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.send_header("ETag", f'"{int(st.st_mtime):x}-{st.st_size:x}"')
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
        self.send_header("Cache-Control", cache_control(path))
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
        if part.startswith(".") and not (n == len(parts) - 1 and part in VISIBLE_HIDDEN):
            raise _NotServed  # ".", "..", ".pool", ".snapshots", ".locks", …
    try:
        real = Path(os.path.realpath(root.joinpath(*parts), strict=True))
    except (OSError, ValueError) as exc:
        raise _NotServed from exc
    if not real.is_relative_to(root):
        raise _NotServed
    inside = real.relative_to(root).parts
    hidden = [n for n, part in enumerate(inside) if part.startswith(".")]
    allowed = {0} if inside[:1] == (SNAPSHOTS,) else set()  # through an area's symlink
    if inside and inside[-1] in VISIBLE_HIDDEN:
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
def running(root: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[StaticServer]:
    """A ``StaticServer`` serving from a thread for the duration of a ``with`` block."""
    server = StaticServer(root, host, port).start()
    try:
        yield server
    finally:
        server.close()
