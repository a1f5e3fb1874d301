"""Fetching a release's files from its provider into a scratch directory, by the ticket's
``Sync-Protocol``: rsync (the default, the real ``rsync`` binary), SFTP (paramiko) or HTTPS
(requests, one file per package). Owns the URL checks, the rsync argument list, progress,
and the refusal of anything in the fetched tree but directories and regular files.

It never decides whether the files are right (``verify`` does that against release.xml),
never publishes, never passes anything to a shell, and never writes outside ``dest``.

Errors (all ``DaemonError``; ``transient`` says whether a later try may help)::

    SyncError             root; ``transient`` per instance
    ├── SyncUrlRefused    the URL or protocol is not acceptable (permanent)
    ├── SyncRefused       the provider's tree holds symlinks/specials or is too large (permanent)
    ├── SyncTimedOut      no progress for the sync timeout (transient)
    ├── RsyncFailed       rsync exited non-zero; ``returncode``, ``stderr_tail`` (per exit code)
    ├── SftpFailed        SSH/SFTP failed (auth, host key, missing path: permanent;
    │                     network: transient)
    └── HttpsFailed       HTTPS failed (4xx, TLS, too long: permanent; 5xx, 408, 429,
                          network: transient)

Over 500 lines for now: its split along these seams is on branch h-sync (errors, urls,
progress, records, scratch, rsync, sftp, https, fetch), not merged yet (issue 12).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote, urlsplit

import paramiko
import requests
import urllib3

from repo_daemon import errors
from repo_daemon.release_xml import model as manifest
from repo_daemon.sync import verify

logger = logging.getLogger(__name__)

PROTOCOLS = ("rsync", "sftp", "https")
CHUNK = 1024 * 1024
STDERR_TAIL_LINES = 12
ProgressCallback = Callable[[int, "int | None", float], None]
"""``(bytes_done, bytes_total_or_None, rate_bytes_per_second)``."""


# -- errors ------------------------------------------------------------------------------------


class SyncError(errors.DaemonError):
    """Fetching a release's files failed; ``transient`` is set per instance."""

    def __init__(self, message: str, *, transient: bool) -> None:
        self.transient = transient
        super().__init__(message)


class SyncUrlRefused(SyncError):
    """``Sync-URL`` / ``Sync-Protocol`` is not acceptable; ``reason`` says why (permanent)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Sync-URL {_printable(url)!r} refused: {reason}", transient=False)


class SyncRefused(SyncError):
    """The provider's tree holds what is never accepted (symlinks, devices, fifos, sockets,
    unsafe names) or more than allowed; ``paths`` names the offending entries (permanent)."""

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        self.paths = tuple(paths)
        super().__init__(message, transient=False)


class SyncTimedOut(SyncError):
    """Nothing moved for the sync timeout (transient)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


class RsyncFailed(SyncError):
    """rsync exited non-zero; ``transient`` follows ``RSYNC_EXIT_CODES``."""

    def __init__(self, returncode: int, stderr_tail: str, *, url: str) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        meaning, transient = classify_rsync_exit(returncode, stderr_tail)
        detail = f": {stderr_tail}" if stderr_tail else ""
        super().__init__(
            f"rsync from {url} failed with exit code {returncode} ({meaning}){detail}",
            transient=transient,
        )


class SftpFailed(SyncError):
    """SSH or SFTP failed; ``transient`` per condition."""


class HttpsFailed(SyncError):
    """HTTPS fetching failed; ``failures`` lists ``(path, reason)`` of every file that could
    not be fetched for a permanent reason, or the one that failed transiently."""

    def __init__(
        self, message: str, *, transient: bool, failures: Sequence[tuple[str, str]]
    ) -> None:
        self.failures = tuple(failures)
        super().__init__(message, transient=transient)


# rsync's exit codes (rsync(1), EXIT VALUES): meaning, and whether trying later may help.
RSYNC_EXIT_CODES: Mapping[int, tuple[str, bool]] = {
    1: ("syntax or usage error", False),
    2: ("protocol incompatibility", False),
    3: ("errors selecting input/output files, dirs", False),
    4: ("requested action not supported", False),
    # Unknown module, access or authentication refused. "max connections reached" is the
    # daemon being busy: transient (classify_rsync_exit).
    5: ("error starting client-server protocol", False),
    6: ("daemon unable to append to log-file", True),
    10: ("error in socket I/O", True),  # connection refused, reset, unknown host
    11: ("error in file I/O", True),  # our disk (full, read-only): an operator can fix it
    12: ("error in rsync protocol data stream", True),  # usually a dropped connection
    13: ("errors with program diagnostics", False),
    14: ("error in IPC code", True),
    15: ("sibling process crashed", True),
    16: ("sibling process terminated abnormally", True),
    19: ("received SIGUSR1", True),
    20: ("received SIGINT, SIGTERM, or SIGHUP", True),
    21: ("some error returned by waitpid()", True),
    22: ("error allocating core memory buffers", True),
    # No such file or directory below the module, unreadable files at the provider: the
    # provider must fix the Sync-URL or the tree.
    23: ("partial transfer due to error", False),
    24: ("partial transfer due to vanished source files", True),  # tree changing under us
    25: ("the --max-delete limit stopped deletions", False),
    30: ("timeout in data send/receive", True),
    35: ("timeout waiting for daemon connection", True),
}


def classify_rsync_exit(returncode: int, stderr: str = "") -> tuple[str, bool]:
    """(meaning, transient) of an rsync exit code. Unknown codes count as transient, like any
    unexpected failure: retried, then given up on with the message."""
    if returncode == 5 and "max connections" in stderr:
        return "the rsync daemon is busy (max connections reached)", True
    if returncode < 0:
        return f"killed by signal {-returncode}", True
    return RSYNC_EXIT_CODES.get(returncode, ("unknown exit code", True))


# -- results, options, progress ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SyncResult:
    """What a finished sync left in ``dest``: regular files, their bytes, and the time taken."""

    files: int
    bytes: int
    seconds: float


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """How to sync. The lead maps settings onto these (see docs/sync.md)."""

    timeout: float = 600.0  # RepositorySettings.sync_timeout: seconds without progress
    connect_timeout: float = 30.0
    max_bytes: int = 50 * 1024**3  # RepositorySettings.max_release_bytes
    rsync_binary: str = "rsync"
    rsync_password_file: Path | None = None  # for daemons that want a user and password
    sftp_user: str | None = None  # when the URL names none
    sftp_key_file: Path | None = None  # private key (no passphrase)
    sftp_known_hosts: Path | None = None
    sftp_allow_unknown_hosts: bool = False  # accept (and log) keys not in known_hosts
    https_ca_file: Path | None = None  # None: the system's trusted CAs
    allow_http: bool = False
    progress_log_interval: float = 5.0


class Progress:
    """Passes progress to a callback and logs it at INFO at most every ``log_interval`` s."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        total: int | None,
        label: str,
        log_interval: float = 5.0,
        log_extra: Mapping[str, object] | None = None,
    ) -> None:
        self.callback = callback
        self.total = total
        self.label = label
        self.log_interval = log_interval
        self.log_extra = dict(log_extra or {"action": "sync_packages"})
        self.started = time.monotonic()
        self.done = 0
        self._last_log = self.started

    def add(self, count: int) -> None:
        """``count`` more bytes arrived."""
        self.update(self.done + count)

    def update(self, done: int, rate: float | None = None) -> None:
        """``done`` bytes so far; ``rate`` as the tool reports it, else the average so far."""
        now = time.monotonic()
        self.done = done
        if rate is None:
            rate = done / max(now - self.started, 1e-6)
        if self.callback is not None:
            self.callback(done, self.total, rate)
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            logger.info("%s: %s", self.label, format_progress(done, self.total, rate),
                        extra=self.log_extra)  # fmt: skip


def format_progress(done: int, total: int | None, rate: float) -> str:
    """``1.2 GiB of 2.0 GiB (60%) at 85.3 MiB/s``."""
    text = _size(done)
    if total:
        text += f" of {_size(total)} ({min(100, 100 * done // total)}%)"
    return f"{text} at {_size(int(rate))}/s"


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


# -- URL checks (pure) -------------------------------------------------------------------------

_HOST = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
)
_USER = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}"
_SEGMENT = re.compile(r"[A-Za-z0-9._+~=,@-]+")  # "." and ".." are refused separately
_RSYNC_URL = re.compile(
    rf"rsync://(?:(?P<user>{_USER})@)?(?P<host>{_HOST})(?::(?P<port>\d{{1,5}}))?/(?P<path>.*)"
)
_RSYNC_DAEMON = re.compile(rf"(?:(?P<user>{_USER})@)?(?P<host>{_HOST})::(?P<path>.*)")


def check_common(url: str) -> None:
    """Refuse what no protocol accepts: empty, too long, a leading ``-``, whitespace, control
    or other invisible characters."""
    if not url:
        raise SyncUrlRefused(url, "it is empty")
    if len(url) > 2048:
        raise SyncUrlRefused(url[:80] + "…", "it is longer than 2048 characters")
    if url.startswith("-"):
        raise SyncUrlRefused(url, "it starts with '-' (it would read as an option)")
    for char in url:
        if char.isspace() or unicodedata.category(char)[0] in "CZ":
            raise SyncUrlRefused(url, f"it contains whitespace or a control character {char!r}")


def _check_segments(url: str, path: str, *, what: str) -> list[str]:
    """The ``/``-separated segments of ``path``; refuses empty, ``.``, ``..`` and odd ones."""
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise SyncUrlRefused(url, f"its {what} has an empty, '.' or '..' component")
        if not _SEGMENT.fullmatch(segment):
            raise SyncUrlRefused(
                url, f"its {what} component {segment!r} has characters other than "
                "letters, digits and . _ + ~ = , @ -"
            )  # fmt: skip
    return segments


def check_rsync_url(url: str) -> str:
    """The rsync daemon source for ``url``, ending in ``/`` (the directory's contents).

    Accepted: ``rsync://[user@]host[:port]/module[/path][/]`` and
    ``[user@]host::module[/path][/]``. Refused: anything else (remote-shell ``host:path``,
    local paths, ``file://``), ports out of range, and paths with empty, ``.`` or ``..``
    components, wildcards or shell characters.
    """
    check_common(url)
    match = _RSYNC_URL.fullmatch(url) or _RSYNC_DAEMON.fullmatch(url)
    if match is None:
        raise SyncUrlRefused(
            url, "not an rsync daemon URL (rsync://host[:port]/module/path or host::module/path)"
        )
    port = match.groupdict().get("port")
    if port is not None and not 0 < int(port) < 65536:
        raise SyncUrlRefused(url, f"port {port} is out of range")
    path = match["path"].removesuffix("/")
    if not path:
        raise SyncUrlRefused(url, "it names no rsync module")
    _check_segments(url, path, what="module path")
    return url if url.endswith("/") else url + "/"


@dataclass(frozen=True, kw_only=True)
class SftpTarget:
    """Where an ``sftp://`` URL points."""

    user: str
    host: str
    port: int
    path: str  # absolute, without a trailing /


def parse_sftp_url(url: str, default_user: str | None = None) -> SftpTarget:
    """``sftp://[user@]host[:port]/path``; the user defaults to ``default_user``.

    Refused: passwords in the URL (keys only), queries, fragments, relative, ``.``/``..`` or
    odd path components.
    """
    check_common(url)
    parts = urlsplit(url)
    if parts.scheme != "sftp":
        raise SyncUrlRefused(url, "not an sftp:// URL")
    try:
        port = 22 if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise SyncUrlRefused(url, "its port is not a number from 1 to 65535")
    host = parts.hostname or ""
    if not re.fullmatch(_HOST, host) and not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
        raise SyncUrlRefused(url, "it names no valid host")
    if parts.password is not None:
        raise SyncUrlRefused(url, "passwords in the URL are not accepted; keys only")
    if parts.query or parts.fragment:
        raise SyncUrlRefused(url, "queries and fragments are not accepted")
    user = unquote(parts.username) if parts.username else default_user
    if not user or not re.fullmatch(_USER, user):
        raise SyncUrlRefused(url, "it names no (valid) user, and no default SFTP user is set")
    path = unquote(parts.path).rstrip("/")
    if not path.startswith("/"):
        raise SyncUrlRefused(url, "it names no directory")
    _check_segments(url, path[1:], what="path")
    return SftpTarget(user=user, host=host, port=port, path=path)


def plan_https(
    url: str, packages: Sequence[manifest.PackageFile], *, allow_http: bool = False
) -> list[tuple[str, manifest.PackageFile]]:
    """``(file URL, package)`` for every package: ``<url>/<path>`` with each component quoted.

    Refused: other schemes (``http://`` unless ``allow_http``), credentials in the URL, queries
    and fragments, ``.``/``..`` path components (also percent-encoded ones), package paths that
    are not plain relative paths.
    """
    check_common(url)
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise SyncUrlRefused(
            url, "not an https:// URL" + ("" if allow_http else " (http:// is not allowed)")
        )
    if not parts.hostname:
        raise SyncUrlRefused(url, "it names no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 0 < port < 65536:
        raise SyncUrlRefused(url, "its port is not a number from 1 to 65535")
    if parts.username is not None or parts.password is not None:
        raise SyncUrlRefused(url, "credentials in the URL are not accepted")
    if parts.query or parts.fragment:
        raise SyncUrlRefused(url, "queries and fragments are not accepted")
    if any(s in (".", "..") for s in unquote(parts.path).split("/")):
        raise SyncUrlRefused(url, "its path has a '.' or '..' component")
    base = url.rstrip("/")
    plan = []
    for package in packages:
        segments = package.path.split("/")
        if package.path.startswith("/") or any(s in ("", ".", "..") for s in segments):
            raise SyncRefused(f"release.xml names an unsafe path {package.path!r}", [package.path])
        plan.append((base + "/" + "/".join(quote(s, safe="") for s in segments), package))
    return plan


def check_protocol(protocol: str | None, url: str, *, allow_http: bool = False) -> str:
    """The protocol to use: ``Sync-Protocol`` in lower case (empty means rsync). Each
    protocol's own step checks the URL."""
    name = (protocol or "rsync").strip().lower() or "rsync"
    if name == "http" and allow_http:
        name = "https"
    if name not in PROTOCOLS:
        raise SyncUrlRefused(
            url, f"Sync-Protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}"
        )
    return name


# -- the rsync plan (pure) ---------------------------------------------------------------------


def plan_rsync(
    url: str,
    dest: Path,
    timeout: float,
    *,
    connect_timeout: float | None = None,
    password_file: Path | None = None,
    binary: str = "rsync",
) -> list[str]:
    """The rsync argument list that mirrors ``url``'s directory into ``dest``.

    Regular files and directories only (``--no-links --no-devices --no-specials``: rsync skips
    the rest and names them, and ``sync`` refuses them), no owners, groups or executable bits
    from the provider (``--chmod=D755,F644``), times kept and ``--partial`` so a retry into the
    same directory resumes, ``--delete`` so it ends as an exact copy, I/O and connect timeouts,
    and ``--`` before the URL.
    """
    source = check_rsync_url(url)
    seconds = max(1, math.ceil(timeout))
    connect = max(1, math.ceil(min(connect_timeout or timeout, seconds)))
    argv = [
        binary,
        "--recursive",
        "--times",
        "--partial",
        "--no-links",
        "--no-devices",
        "--no-specials",
        "--no-owner",
        "--no-group",
        "--chmod=D755,F644",
        f"--timeout={seconds}",
        f"--contimeout={connect}",
        "--delete",
        "--no-motd",
        "--info=progress2,nonreg1",
        # One line per file once it is complete (%b is only known then): lets the files be
        # hashed while the rest arrive.
        f"--out-format={_DONE_PREFIX}%b %n",
    ]
    if password_file is not None:
        argv.append(f"--password-file={password_file}")
    return [*argv, "--", source, f"{os.fspath(dest).rstrip('/')}/"]


def plan_rsync_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment rsync runs in: ``PATH``, the C locale (stable progress output) and
    ``RSYNC_PROXY`` if set. Nothing else: ``RSYNC_CONNECT_PROG`` would run a shell command,
    ``RSYNC_RSH``/``RSYNC_OLD_ARGS`` change how arguments travel, and without ``HOME`` rsync
    reads no ``~/.popt`` option aliases."""
    env = {"PATH": environ.get("PATH", os.defpath), "LC_ALL": "C"}
    if environ.get("RSYNC_PROXY"):
        env["RSYNC_PROXY"] = environ["RSYNC_PROXY"]
    return env


_PROGRESS = re.compile(
    r"\s*(?P<bytes>[\d,.]+)\s+(?P<pct>\d+)%\s+(?P<rate>[\d.,]+)(?P<unit>[kMGT]?B)/s\s+\S+"
    r"(?:\s+\(xfr#\d+, (?:ir|to)-chk=\d+/\d+\))?\s*"
)
_NONREG = re.compile(r'skipping non-regular file "(?P<name>.*)"')
_DONE_PREFIX = "rollout-done: "
_DONE = re.compile(re.escape(_DONE_PREFIX) + r"\d+ (?P<name>.+)")
_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_rsync_progress(line: str) -> tuple[int, float] | None:
    """(bytes transferred, rate in bytes/s) from one ``--info=progress2`` line, else None."""
    match = _PROGRESS.fullmatch(line)
    if match is None:
        return None
    done = int(re.sub(r"\D", "", match["bytes"]))
    rate = float(match["rate"].replace(",", "")) * _UNITS[match["unit"]]
    return done, rate


def parse_rsync_done(line: str) -> str | None:
    """The file a ``--out-format`` line says is complete, else None (also for directories and
    for names rsync had to escape, which ``verify`` then simply hashes itself)."""
    match = _DONE.fullmatch(line)
    if match is None or match["name"].endswith("/") or "\\#" in match["name"]:
        return None
    return match["name"]


def parse_rsync_nonregular(line: str) -> str | None:
    """The path in ``skipping non-regular file "path"``, else None."""
    match = _NONREG.fullmatch(line.strip())
    return match["name"] if match else None


# -- the shared do steps -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TreeSummary:
    files: int
    bytes: int


def check_tree(tree: Path) -> TreeSummary:
    """Count the regular files below ``tree``; raise ``SyncRefused`` naming every symlink,
    device, fifo or socket (never followed), whatever the protocol promised."""
    files = size = 0
    refused: list[str] = []
    for rel, info in _lwalk(tree):
        if stat.S_ISREG(info.st_mode):
            files += 1
            size += info.st_size
        else:
            refused.append(f"{rel} ({verify.entry_kind(info.st_mode)})")
    if refused:
        raise SyncRefused(
            f"the provider's tree holds {len(refused)} entries that are neither directories nor "
            f"regular files (symlinks and special files are never accepted): {', '.join(refused)}",
            [r.rsplit(" (", 1)[0] for r in refused],
        )
    return TreeSummary(files=files, bytes=size)


def _lwalk(tree: Path, prefix: str = "") -> Iterator[tuple[str, os.stat_result]]:
    with os.scandir(tree) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                yield from _lwalk(Path(entry.path), prefix + entry.name + "/")
            else:
                yield prefix + entry.name, info


def prepare_dest(dest: Path) -> None:
    """Create ``dest`` (and parents); refuse one that exists as anything but a directory."""
    try:
        info = dest.lstat()
    except FileNotFoundError:
        dest.mkdir(parents=True)
        return
    if not stat.S_ISDIR(info.st_mode):
        raise SyncError(f"scratch directory {dest} is not a directory", transient=False)


def prune(dest: Path, keep: set[str]) -> None:
    """Remove every entry below ``dest`` that is not a kept file or a directory leading to one
    (leftovers of an earlier attempt). Symlinks are removed, never followed."""
    needed_dirs = {"/".join(k.split("/")[:i]) for k in keep for i in range(1, k.count("/") + 1)}
    for rel, _info in list(_lwalk(dest)):
        if rel not in keep:
            (dest / rel).unlink()
    for root, dirs, _files in os.walk(dest, topdown=False):
        for name in dirs:
            rel = os.path.relpath(Path(root, name), dest).replace(os.sep, "/")
            if rel not in needed_dirs:
                shutil.rmtree(Path(root, name))


def _open_new(path: Path) -> IO[bytes]:
    """A new file at ``path`` for writing, never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    return open(os.open(path, flags, 0o644), "wb")  # noqa: PTH123  (an fd, not a path)


def _part_name(target: Path) -> Path:
    """Where a download goes until complete: hidden, so it can never be a package's name."""
    return target.with_name(f".{target.name}.part")


def sync(
    protocol: str | None,
    url: str,
    dest: Path,
    *,
    packages: Sequence[manifest.PackageFile] | None = None,
    options: SyncOptions | None = None,
    progress: ProgressCallback | None = None,
    log_extra: Mapping[str, object] | None = None,
    on_file: Callable[[str], None] | None = None,
) -> SyncResult:
    """Fetch ``url`` into ``dest`` by ``protocol`` (``Sync-Protocol``; empty means rsync).

    ``packages`` (release.xml's files) is needed for HTTPS, which fetches exactly those files;
    for rsync and SFTP it gives the expected total for progress and an early size check. A
    release larger than ``options.max_bytes`` is refused before anything is fetched (and rsync
    is stopped when it passes the limit). ``dest`` is created; an existing one is resumed into
    and ends as an exact copy. Afterwards the tree must hold only directories and regular
    files. ``on_file(path)`` is called (from another thread) as each file is complete, e.g.
    ``verify.Prehash.file_done``. Raises the ``SyncError`` subclasses above.
    """
    notify = on_file or (lambda _path: None)
    options = options or SyncOptions()
    name = check_protocol(protocol, url, allow_http=options.allow_http)
    total = sum(p.size for p in packages) if packages is not None else None
    if total is not None and total > options.max_bytes:
        raise SyncRefused(
            f"release.xml promises {total} bytes, more than the {options.max_bytes} bytes "
            "a release may have"
        )
    report = Progress(
        progress,
        total=total,
        label=f"sync {_printable(url)}",
        log_interval=options.progress_log_interval,
        log_extra=log_extra,
    )
    if name == "rsync":
        result = sync_rsync(url, dest, options=options, report=report, on_file=notify)
    elif name == "sftp":
        result = sync_sftp(url, dest, options=options, report=report, on_file=notify)
    else:
        if packages is None:
            raise SyncError("an HTTPS sync needs release.xml's list of files", transient=False)
        result = sync_https(url, dest, packages, options=options, report=report, on_file=notify)
    if result.bytes > options.max_bytes:
        raise SyncRefused(
            f"the tree at {_printable(url)} holds {result.bytes} bytes, more than the "
            f"{options.max_bytes} bytes a release may have"
        )
    logger.info(
        "synced %d files (%d bytes) from %s by %s in %.1f s",
        result.files, result.bytes, _printable(url), name, result.seconds,
        extra=report.log_extra,
    )  # fmt: skip
    return result


def sync_and_verify(
    protocol: str | None,
    url: str,
    dest: Path,
    packages: Sequence[manifest.PackageFile],
    *,
    options: SyncOptions | None = None,
    progress: ProgressCallback | None = None,
    log_extra: Mapping[str, object] | None = None,
) -> SyncResult:
    """``sync`` then ``verify.verify``, with each file hashed (one background thread) as soon
    as it is complete, so that most of the hashing overlaps the transfer. Raises what either
    raises (``ChecksumMismatch`` listing every difference)."""
    with verify.Prehash(dest, packages) as prehash:
        result = sync(
            protocol,
            url,
            dest,
            packages=packages,
            options=options,
            progress=progress,
            log_extra=log_extra,
            on_file=prehash.file_done,
        )
    verify.verify(dest, packages, prehash=prehash)
    return result


# -- rsync -------------------------------------------------------------------------------------


def sync_rsync(
    url: str,
    dest: Path,
    *,
    options: SyncOptions,
    report: Progress,
    on_file: Callable[[str], None] = lambda _path: None,
) -> SyncResult:
    """Run rsync (``plan_rsync``) into ``dest``; see ``sync``."""
    argv = plan_rsync(
        url,
        dest,
        options.timeout,
        connect_timeout=options.connect_timeout,
        password_file=options.rsync_password_file,
        binary=options.rsync_binary,
    )
    if shutil.which(argv[0]) is None:
        raise RsyncFailed(127, f"{argv[0]} is not installed", url=url)
    prepare_dest(dest)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=plan_rsync_env(os.environ),
        start_new_session=True,  # so that stopping it reaches its forked receiver too
    )
    assert proc.stdout is not None and proc.stderr is not None
    nonregular: list[str] = []
    stderr_lines: list[str] = []
    stdout_lines: list[str] = []  # other messages help explain a failure
    too_large = threading.Event()
    activity = [time.monotonic()]

    def on_stdout(line: str) -> None:
        activity[0] = time.monotonic()
        parsed = parse_rsync_progress(line)
        if parsed is not None:
            report.update(*parsed)
            if parsed[0] > options.max_bytes:
                too_large.set()
            return
        done = parse_rsync_done(line)
        if done is not None:
            on_file(done)
            return
        name = parse_rsync_nonregular(line)
        if name is not None:
            nonregular.append(name)
        elif line.strip():
            stdout_lines.append(line.strip())
            del stdout_lines[:-STDERR_TAIL_LINES]

    def on_stderr(line: str) -> None:
        activity[0] = time.monotonic()
        if line.strip():
            stderr_lines.append(line.strip())
            del stderr_lines[:-STDERR_TAIL_LINES]

    readers = [
        threading.Thread(target=_read_lines, args=(proc.stdout, on_stdout), daemon=True),
        threading.Thread(target=_read_lines, args=(proc.stderr, on_stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    stall_limit = options.timeout + 30  # rsync's own --timeout normally fires first
    failure: SyncError | None = None
    try:
        while proc.poll() is None:
            if too_large.is_set():
                failure = SyncRefused(
                    f"the tree at {url} is larger than the {options.max_bytes} bytes a release "
                    "may have; rsync was stopped"
                )
            elif time.monotonic() - activity[0] > stall_limit:
                failure = SyncTimedOut(
                    f"rsync from {url} made no progress for {stall_limit:.0f} s and was stopped"
                )
            if failure is not None:
                _stop(proc)
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)
    except BaseException:
        _stop(proc)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    seconds = time.monotonic() - started
    if failure is not None:
        raise failure
    if nonregular:
        raise SyncRefused(
            f"the tree at {url} holds {len(nonregular)} entries that are neither directories nor "
            "regular files (symlinks and special files are never accepted): "
            + ", ".join(nonregular),
            nonregular,
        )
    if proc.returncode != 0:
        tail = (stdout_lines + stderr_lines)[-STDERR_TAIL_LINES:]
        raise RsyncFailed(proc.returncode, "\n".join(tail), url=url)
    summary = check_tree(dest)
    report.update(report.done)
    return SyncResult(files=summary.files, bytes=summary.bytes, seconds=seconds)


def _read_lines(stream: IO[bytes], handle: Callable[[str], None]) -> None:
    """Feed ``handle`` every ``\\r``- or ``\\n``-terminated line of ``stream`` until EOF. Keeps
    draining whatever ``handle`` raises: a full pipe would stall rsync."""
    pending = b""
    failed = False

    def feed(raw: bytes) -> None:
        nonlocal failed
        try:
            handle(raw.decode("utf-8", "replace"))
        except Exception:
            if not failed:
                logger.exception("handling rsync's output failed; going on")
            failed = True

    while chunk := os.read(stream.fileno(), 65536):
        pending += chunk
        *lines, pending = re.split(rb"[\r\n]", pending)
        for line in lines:
            feed(line)
    if pending:
        feed(pending)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop rsync and the processes it forked (its own session), waiting for them."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# -- SFTP --------------------------------------------------------------------------------------


class _UnknownHost(Exception):
    pass


class _RejectUnknown(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise _UnknownHost(f"{hostname} ({key.get_name()} {key.fingerprint})")


class _AcceptAndLog(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        logger.warning(
            "accepting the unknown SSH host key of %s: %s %s (sftp_allow_unknown_hosts)",
            hostname, key.get_name(), key.fingerprint,
        )  # fmt: skip


def _sftp_connect(target: SftpTarget, options: SyncOptions) -> Any:
    """A connected ``paramiko.SSHClient`` (key authentication, host key checked)."""
    where = f"{target.user}@{target.host}:{target.port}"
    if options.sftp_key_file is None:
        raise SftpFailed("no SSH key is configured for SFTP syncs (sftp_key_file)", transient=False)
    try:
        key = paramiko.PKey.from_path(options.sftp_key_file)
    except (
        OSError,
        ValueError,
        paramiko.SSHException,
        paramiko.pkey.UnknownKeyType,
    ) as exc:
        raise SftpFailed(
            f"cannot use the SFTP key file {options.sftp_key_file}: "
            f"{getattr(exc, 'strerror', None) or exc}",
            transient=False,
        ) from exc
    client = paramiko.SSHClient()
    if options.sftp_known_hosts is not None:
        try:
            client.load_host_keys(os.fspath(options.sftp_known_hosts))
        except OSError as exc:
            raise SftpFailed(
                f"cannot read the SFTP known_hosts file {options.sftp_known_hosts}: {exc.strerror}",
                transient=False,
            ) from exc
    elif not options.sftp_allow_unknown_hosts:
        raise SftpFailed(
            "no known_hosts file is configured for SFTP syncs (sftp_known_hosts), and unknown "
            "hosts are not accepted",
            transient=False,
        )
    client.set_missing_host_key_policy(
        _AcceptAndLog() if options.sftp_allow_unknown_hosts else _RejectUnknown()
    )
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.user,
            pkey=key,
            timeout=options.connect_timeout,
            banner_timeout=options.connect_timeout,
            auth_timeout=options.connect_timeout,
            channel_timeout=options.connect_timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except _UnknownHost as exc:
        client.close()
        raise SftpFailed(
            f"the SSH host key of {exc} is not in the known_hosts file; an operator must add it",
            transient=False,
        ) from None
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SftpFailed(
            f"the SSH host key of {target.host} does NOT match the known_hosts file (got "
            f"{exc.key.get_name()} {exc.key.fingerprint}); refusing to connect",
            transient=False,
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise SftpFailed(f"SSH authentication as {where} refused: {exc}", transient=False) from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        raise SftpFailed(f"cannot connect to {where}: {exc or type(exc).__name__}",
                         transient=True) from exc  # fmt: skip
    return client


@dataclass(frozen=True, kw_only=True)
class _RemoteFile:
    path: str  # relative, with /
    size: int
    mtime: int


def _sftp_walk(sftp: Any, root: str) -> tuple[list[_RemoteFile], list[str]]:
    """Regular files below ``root`` and the entries that are refused (``lstat`` semantics)."""
    files: list[_RemoteFile] = []
    refused: list[str] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        for attr in sorted(sftp.listdir_attr(root + "/" + prefix), key=lambda a: a.filename):
            name = str(attr.filename)
            rel = prefix + name
            mode = attr.st_mode or 0
            if _unsafe_name(name):
                refused.append(f"{_printable(rel)} (unsafe name)")
            elif stat.S_ISDIR(mode):
                pending.append(rel + "/")
            elif stat.S_ISREG(mode):
                files.append(
                    _RemoteFile(path=rel, size=attr.st_size or 0, mtime=attr.st_mtime or 0)
                )
            else:
                refused.append(f"{rel} ({verify.entry_kind(mode)})")
    return files, refused


def _unsafe_name(name: str) -> bool:
    """A name that must not become a path component here: empty, ``.``, ``..``, with a ``/``
    or ``\\``, or with control characters."""
    return (
        name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or any(unicodedata.category(c) == "Cc" for c in name)
    )


def sync_sftp(
    url: str,
    dest: Path,
    *,
    options: SyncOptions,
    report: Progress,
    on_file: Callable[[str], None] = lambda _path: None,
) -> SyncResult:
    """Mirror the remote directory of ``url`` into ``dest`` over SFTP; see ``sync``.

    The remote tree is listed first (refusing symlinks, specials and unsafe names before
    anything is downloaded); files whose size and time already match are kept (resume).
    """
    target = parse_sftp_url(url, options.sftp_user)
    prepare_dest(dest)
    started = time.monotonic()
    client = _sftp_connect(target, options)
    try:
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(options.timeout)
        try:
            if not stat.S_ISDIR(sftp.stat(target.path).st_mode or 0):
                raise SftpFailed(f"{url} is not a directory", transient=False)
            files, refused = _sftp_walk(sftp, target.path)
        except OSError as exc:
            raise _sftp_error(exc, f"listing {url}") from exc
        if refused:
            raise SyncRefused(
                f"the tree at {url} holds {len(refused)} entries that are neither directories "
                "nor regular files with safe names (symlinks and special files are never "
                "accepted): " + ", ".join(refused),
                [r.rsplit(" (", 1)[0] for r in refused],
            )
        total = sum(f.size for f in files)
        if total > options.max_bytes:
            raise SyncRefused(
                f"the tree at {url} holds {total} bytes, more than the {options.max_bytes} "
                "bytes a release may have"
            )
        if report.total is None:
            report.total = total
        prune(dest, {f.path for f in files})
        for remote in files:
            _sftp_fetch(sftp, target.path + "/" + remote.path, dest, remote, report, url)
            on_file(remote.path)
    except (paramiko.SSHException, EOFError, TimeoutError) as exc:
        raise SftpFailed(f"SFTP from {url} failed: {exc or type(exc).__name__}",
                         transient=True) from exc  # fmt: skip
    finally:
        client.close()
    summary = check_tree(dest)
    return SyncResult(files=summary.files, bytes=summary.bytes,
                      seconds=time.monotonic() - started)  # fmt: skip


def _sftp_fetch(
    sftp: Any, remote_path: str, dest: Path, remote: _RemoteFile, report: Progress, url: str
) -> None:
    target = dest.joinpath(*remote.path.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        info = target.lstat()
        if (
            stat.S_ISREG(info.st_mode)
            and info.st_size == remote.size
            and int(info.st_mtime) == remote.mtime
        ):
            report.add(remote.size)  # already here from an earlier attempt
            return
    except FileNotFoundError:
        pass
    part = _part_name(target)
    try:
        with sftp.open(remote_path, "rb") as source, _open_new(part) as out:
            source.prefetch(remote.size)
            left = remote.size
            while left > 0:
                data = source.read(min(CHUNK, left))
                if not data:
                    raise SftpFailed(
                        f"{remote.path} at {url} became shorter while it was fetched",
                        transient=True,
                    )
                out.write(data)
                left -= len(data)
                report.add(len(data))
        os.utime(part, (remote.mtime, remote.mtime))
        part.replace(target)
    except OSError as exc:
        raise _sftp_error(exc, f"fetching {remote.path} from {url}") from exc
    finally:
        part.unlink(missing_ok=True)


def _sftp_error(exc: OSError, doing: str) -> SyncError:
    if isinstance(exc, TimeoutError | socket.timeout):
        return SftpFailed(f"{doing}: timed out", transient=True)
    if exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
        return SftpFailed(f"{doing}: {exc.strerror or exc}", transient=False)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return SyncError(f"{doing}: {exc.strerror} (our scratch disk)", transient=True)
    return SftpFailed(f"{doing}: {exc}", transient=True)


# -- HTTPS -------------------------------------------------------------------------------------


class _FileProblem(Exception):
    """One file cannot be fetched for a reason that will not go away by itself."""


def sync_https(
    url: str,
    dest: Path,
    packages: Sequence[manifest.PackageFile],
    *,
    options: SyncOptions,
    report: Progress,
    session: requests.Session | None = None,
    on_file: Callable[[str], None] = lambda _path: None,
) -> SyncResult:
    """Fetch every package as ``<url>/<path>`` into ``dest``; see ``sync``.

    Each body is streamed to disk and read to at most the promised size + 1 byte: a longer one
    is cut and refused. Files already in ``dest`` with the promised size and SHA-256 are kept.
    Every file is tried; 4xx answers and over-long bodies are collected and raised together
    (permanent). A TLS failure stops at once (permanent), as does a 5xx, 408, 429 or network
    failure (transient).
    """
    plan = plan_https(url, packages, allow_http=options.allow_http)
    prepare_dest(dest)
    started = time.monotonic()
    own_session = session is None
    http = session or requests.Session()
    http.max_redirects = 5
    ca: str | bool = os.fspath(options.https_ca_file) if options.https_ca_file else True
    failures: list[tuple[str, str]] = []
    try:
        prune(dest, {p.path for p in packages})
        for file_url, package in plan:
            target = dest.joinpath(*package.path.split("/"))
            if _already_fetched(dest, package):
                report.add(package.size)
                continue
            try:
                _https_fetch(http, file_url, target, package, ca, options, report)
            except _FileProblem as exc:
                failures.append((package.path, str(exc)))
            else:
                on_file(package.path)
    finally:
        if own_session:
            http.close()
    if failures:
        raise HttpsFailed(
            f"{len(failures)} of {len(plan)} files could not be fetched from {url}: "
            + "; ".join(f"{path}: {reason}" for path, reason in failures),
            transient=False,
            failures=failures,
        )
    summary = check_tree(dest)
    return SyncResult(files=summary.files, bytes=summary.bytes,
                      seconds=time.monotonic() - started)  # fmt: skip


def _already_fetched(dest: Path, package: manifest.PackageFile) -> bool:
    """Whether an earlier attempt left ``package`` in ``dest`` exactly as promised."""
    try:
        return verify.check_file(dest, package) is None
    except OSError:
        return False


def _https_fetch(
    http: requests.Session,
    file_url: str,
    target: Path,
    package: manifest.PackageFile,
    ca: str | bool,
    options: SyncOptions,
    report: Progress,
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = _part_name(target)
    headers = {"Accept-Encoding": "identity", "User-Agent": "rollout-bridge sync"}
    try:
        with http.get(
            file_url,
            stream=True,
            timeout=(options.connect_timeout, options.timeout),
            verify=ca,
            headers=headers,
        ) as response:
            _check_status(response, file_url, package.path)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > package.size:
                raise _FileProblem(
                    f"the server announces {length} bytes, release.xml promises {package.size}"
                )
            received = 0
            with _open_new(part) as out:
                while received <= package.size:
                    data = response.raw.read(
                        min(CHUNK, package.size + 1 - received), decode_content=False
                    )
                    if not data:
                        break
                    received += len(data)
                    if received > package.size:
                        raise _FileProblem(
                            f"the server sent more than the {package.size} bytes release.xml "
                            "promises; the download was cut"
                        )
                    out.write(data)
                    report.add(len(data))
        part.replace(target)
    except requests.exceptions.SSLError as exc:  # the host's, so every file's: stop here
        reason = f"TLS failed (untrusted or invalid certificate?): {_reason(exc)}"
        raise HttpsFailed(f"fetching {file_url}: {reason}", transient=False,
                          failures=[(package.path, reason)]) from exc  # fmt: skip
    except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise HttpsFailed(f"fetching {file_url} timed out", transient=True,
                          failures=[(package.path, "timed out")]) from exc  # fmt: skip
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise HttpsFailed(f"fetching {file_url} failed: {_reason(exc)}", transient=True,
                          failures=[(package.path, _reason(exc))]) from exc  # fmt: skip
    finally:
        part.unlink(missing_ok=True)


def _check_status(response: requests.Response, file_url: str, path: str) -> None:
    status = response.status_code
    if status == 200:
        return
    text = f"HTTP {status} {response.reason or ''}".strip()
    if status in (408, 429) or status >= 500:
        raise HttpsFailed(f"fetching {file_url}: {text}", transient=True, failures=[(path, text)])
    raise _FileProblem(text)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, short."""
    for _ in range(10):
        inner = exc.__cause__ or (exc.args[0] if exc.args else None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return str(exc) or type(exc).__name__


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
