"""Fetching by HTTPS (requests): the plan of one ``GET <Sync-URL>/<Path>`` per package of
release.xml (pure), and the do step that streams each body into scratch, never past the
promised size, keeping files an earlier attempt already fetched exactly as promised.

It never sends credentials, never fetches what release.xml does not name, and never decides
whether the files are right (``verify`` does); retries are the queue's.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import deadline as sync_deadline
from repo_daemon.sync import errors, placing, progress, records, scratch, urls, verify


def plan_https(
    url: str, packages: Sequence[release_model.PackageFile], *, allow_http: bool = False
) -> list[tuple[str, release_model.PackageFile]]:
    """``(file URL, package)`` for every package: ``<url>/<path>`` with each component quoted.

    Refused: what ``urls.check_https_url`` refuses (``SyncUrlRefused``), and package paths
    that are not plain relative paths (``SyncRefused``).
    """
    base = urls.check_https_url(url, allow_http=allow_http)
    plan = []
    for package in packages:
        segments = package.path.split("/")
        if package.path.startswith("/") or any(s in ("", ".", "..") for s in segments):
            raise errors.SyncRefused(
                f"release.xml names an unsafe path {package.path!r}", [package.path]
            )
        plan.append((base + "/" + "/".join(quote(s, safe="") for s in segments), package))
    return plan


class _FileProblem(Exception):
    """One file cannot be fetched for a reason that will not go away by itself."""


def sync_https(
    url: str,
    dest: Path,
    packages: Sequence[release_model.PackageFile],
    *,
    options: records.SyncOptions,
    report: progress.Progress,
    session: requests.Session | None = None,
    on_file: Callable[[str], None] = lambda _path: None,
    address: str | None = None,
    deadline: sync_deadline.Deadline | None = None,
    placed: placing.Placed = placing.NOTHING,
) -> records.SyncResult:
    """Fetch every package as ``<url>/<path>`` into ``dest``, connecting to ``address`` (the
    host's address the allowlist checked) when given; see ``fetch.sync``. The ``placed``
    files (linked from the pool) are not fetched.

    When the ``deadline`` passes, the connection in use is shut down (also in the middle of a
    read from a server that trickles, or of its TLS handshake) and ``SyncDeadlinePassed`` is
    raised.

    Each body is streamed to disk and read to at most the promised size + 1 byte: a longer one
    is cut and refused. Files already in ``dest`` with the promised size and SHA-256 are kept.
    Every file is tried; 4xx answers and over-long bodies are collected and raised together
    (permanent). A TLS failure stops at once (permanent), as does a redirect off the host
    (permanent), a 5xx, 408, 429 or network failure (transient). Redirects are followed only
    within the host, scheme and port asked for, at most ``MAX_REDIRECTS``; no proxy or
    ``.netrc`` of the environment is used.
    """
    plan = plan_https(url, packages, allow_http=options.allow_http)
    scratch.prepare_dest(dest)
    started = time.monotonic()
    own_session = session is None
    http = session or requests.Session()
    if own_session:
        http.trust_env = False  # no proxies or .netrc credentials from the environment
    host = origin(url)[1]
    sockets = _Sockets()
    if own_session or (address is not None and address != host):
        adapter = _SyncAdapter(host, address if address != host else None, sockets)
        http.mount("https://", adapter)
        http.mount("http://", adapter)
    limit = deadline or sync_deadline.Deadline(float("inf"))
    ca: str | bool = os.fspath(options.https_ca_file) if options.https_ca_file else True
    failures: list[tuple[str, str]] = []
    try:
        with limit.watch(sockets.shut_down, what=f"sync {errors.printable(url)}"):
            scratch.prune(dest, {p.path for p in packages})
            for file_url, package in plan:
                limit.check(url, report)
                target = dest.joinpath(*package.path.split("/"))
                if package.path in placed.files or _already_fetched(dest, package):
                    report.add(package.size)
                    continue
                try:
                    _fetch_file(http, file_url, target, package, ca, options, report, limit)
                except _FileProblem as exc:
                    failures.append((package.path, str(exc)))
                else:
                    on_file(package.path)
                limit.check(url, report)
    except errors.SyncDeadlinePassed:
        raise
    except (errors.SyncError, OSError, requests.exceptions.RequestException) as exc:
        if limit.fired.is_set():  # what cutting the connection made of the read in hand
            raise limit.error(url, report) from exc
        raise
    finally:
        if own_session:
            http.close()
        sockets.shut_down()  # nothing of this sync stays connected, whatever happened
    if failures:
        raise errors.HttpsFailed(
            f"{len(failures)} of {len(plan)} files could not be fetched from {url}: "
            + "; ".join(f"{path}: {reason}" for path, reason in failures),
            transient=False,
            failures=failures,
        )
    summary = scratch.check_tree(dest)
    return records.SyncResult(files=summary.files, bytes=summary.bytes, listing=summary.listing,
                              seconds=time.monotonic() - started)  # fmt: skip


def _already_fetched(dest: Path, package: release_model.PackageFile) -> bool:
    """Whether an earlier attempt left ``package`` in ``dest`` exactly as promised."""
    try:
        return verify.check_file(dest, package) is None
    except OSError:
        return False


def _fetch_file(
    http: requests.Session,
    file_url: str,
    target: Path,
    package: release_model.PackageFile,
    ca: str | bool,
    options: records.SyncOptions,
    report: progress.Progress,
    limit: sync_deadline.Deadline,
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = scratch.part_name(target)
    headers = {"Accept-Encoding": "identity", "User-Agent": "rollout-bridge sync"}
    try:
        with _get(http, file_url, timeout=(options.connect_timeout, options.timeout),
                  verify=ca, headers=headers, path=package.path) as response:  # fmt: skip
            _check_status(response, file_url, package.path)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > package.size:
                raise _FileProblem(
                    f"the server announces {length} bytes, release.xml promises {package.size}"
                )
            received = 0
            with scratch.open_new(part) as out:
                while received <= package.size:
                    data = response.raw.read(
                        min(scratch.CHUNK, package.size + 1 - received), decode_content=False
                    )
                    if not data:
                        break
                    if limit.fired.is_set():  # the connection was cut: what came is not all
                        raise limit.error(file_url, report)
                    received += len(data)
                    if received > package.size:
                        raise _FileProblem(
                            f"the server sent more than the {package.size} bytes release.xml "
                            "promises; the download was cut"
                        )
                    out.write(data)
                    report.add(len(data))
            limit.check(file_url, report)  # a body the cut connection ended early
        part.replace(target)
    except requests.exceptions.SSLError as exc:  # the host's, so every file's: stop here
        reason = f"TLS failed (untrusted or invalid certificate?): {_tls_reason(exc)}"
        raise errors.HttpsFailed(f"fetching {file_url}: {reason}", transient=False,
                          failures=[(package.path, reason)]) from exc  # fmt: skip
    except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise errors.HttpsFailed(f"fetching {file_url} timed out", transient=True,
                          failures=[(package.path, "timed out")]) from exc  # fmt: skip
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        reason = errors.plain_reason(exc)
        raise errors.HttpsFailed(f"fetching {file_url} failed: {reason}", transient=True,
                          failures=[(package.path, reason)]) from exc  # fmt: skip
    finally:
        part.unlink(missing_ok=True)


def _check_status(response: requests.Response, file_url: str, path: str) -> None:
    status = response.status_code
    if status == 200:
        return
    text = f"HTTP {status} {response.reason or ''}".strip()
    if status in (408, 429) or status >= 500:
        raise errors.HttpsFailed(
            f"fetching {file_url}: {text}", transient=True, failures=[(path, text)]
        )
    raise _FileProblem(text)


def _tls_reason(exc: BaseException) -> str:
    """What TLS said about the certificate (e.g. "self-signed certificate in certificate
    chain", "Hostname mismatch, ..."), else that the handshake failed."""
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if isinstance(current, ssl.SSLCertVerificationError) and current.verify_message:
            return str(current.verify_message)
        linked = (*current.args, current.__cause__, current.__context__,
                  getattr(current, "reason", None))  # fmt: skip
        pending.extend(e for e in linked if isinstance(e, BaseException) and e is not current)
        said = _VERIFY_FAILED.search(str(current))
        if said:
            return said[0].rstrip(" .")
    return "the TLS handshake failed"


_VERIFY_FAILED = re.compile(r"certificate verify failed(?:: [\w ,.'-]+)?")


MAX_REDIRECTS = 5


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL: the host in lower case without brackets or
    a trailing dot, the scheme's port when the URL names none (0 when it names no number)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return parts.scheme.lower(), (parts.hostname or "").lower().removesuffix("."), port


def check_redirect(from_url: str, location: str) -> str:
    """The absolute URL a redirect from ``from_url`` to ``location`` leads to, if the sync may
    follow it: the same scheme, host and port only. Else ``HttpsFailed`` (permanent), before
    anything connects there; HTTPS is never followed to plain HTTP."""
    target = urljoin(from_url, location)
    if origin(target) == origin(from_url):
        return target
    scheme, host, port = origin(target)
    why = (
        "HTTPS is never followed to plain HTTP"
        if origin(from_url)[0] == "https" and scheme == "http"
        else "the bridge follows redirects only within the host, scheme and port of the Sync-URL"
    )
    # file://, ftp:// ...: no port of their own to name (a made-up :80 would mislead)
    where = f"{host}:{port}" if scheme in ("http", "https") or urlsplit(target).port else host
    text = f"{from_url} redirects to {errors.printable(f'{scheme}://{where}/')}: {why}"
    raise errors.HttpsFailed(text, transient=False, failures=[(from_url, text)])


def _get(
    http: requests.Session,
    url: str,
    *,
    timeout: tuple[float, float],
    verify: str | bool,
    headers: dict[str, str],
    path: str,
) -> requests.Response:
    """The streamed answer to ``GET url``, following redirects by ``check_redirect``."""
    for _ in range(MAX_REDIRECTS + 1):
        response = http.get(url, stream=True, timeout=timeout, verify=verify, headers=headers,
                            allow_redirects=False)  # fmt: skip
        if not response.is_redirect:
            return response
        location = response.headers.get("Location", "")
        response.close()
        try:
            url = check_redirect(url, location)
        except errors.HttpsFailed as exc:
            text = str(exc)
            raise errors.HttpsFailed(text, transient=False, failures=[(path, text)]) from None
    text = f"more than {MAX_REDIRECTS} redirects"
    raise errors.HttpsFailed(f"fetching {url}: {text}", transient=False, failures=[(path, text)])


class _Sockets:
    """The connections a sync opened, to shut down at its deadline or its end: a shut-down
    connection wakes a read blocked on it (closing a descriptor would not), and the server
    sees it closed. Each is kept as a duplicate descriptor: TLS takes over the socket object
    it wraps, while ``shutdown`` on any descriptor acts on the connection itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.append(sock.dup())

    def shut_down(self) -> None:
        with self._lock:
            found, self._open = self._open, []
        for sock in found:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _tracking_pools(
    sockets: _Sockets,
) -> dict[str, type[urllib3.connectionpool.HTTPConnectionPool]]:
    """urllib3's pool classes, whose connections hand each new socket (before TLS) to
    ``sockets``."""

    class HTTPConnection(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            sockets.add(sock)
            return sock

    class HTTPSConnection(urllib3.connection.HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            sockets.add(sock)
            return sock

    class HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = HTTPConnection

    class HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = HTTPSConnection

    return {"http": HTTPPool, "https": HTTPSPool}


class _SyncAdapter(requests.adapters.HTTPAdapter):
    """The sync's connections: every socket handed to ``sockets`` (so the deadline can cut
    it), and with an ``address`` (the one the allowlist checked for the sync's ``host``),
    requests go to that address, with the host's name in the ``Host`` header, in TLS's server
    name (SNI) and in the certificate check; a request for another host is then refused
    before it connects."""

    def __init__(self, host: str, address: str | None, sockets: _Sockets) -> None:
        self._host = host
        self._address = address
        self._sockets = sockets
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._address is not None:
            kwargs["server_hostname"] = self._host
            kwargs["assert_hostname"] = self._host
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _tracking_pools(self._sockets)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if self._address is None:
            return super().send(request, *args, **kwargs)
        parts = urlsplit(request.url or "")
        if origin(request.url or "")[1] != self._host:  # check_redirect refused it already
            raise requests.exceptions.InvalidURL("a request for another host than the sync's")
        netloc = f"[{self._address}]" if ":" in self._address else self._address
        if parts.port is not None:
            netloc += f":{parts.port}"
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(netloc=netloc))
        return super().send(request, *args, **kwargs)
