"""Fetching by rsync: the argument list and environment (pure plans), the parsers of rsync's
output (progress, completed files, refused non-regular files), and the do step that runs the
real ``rsync`` binary from a daemon into scratch, watching for stalls and for a tree larger
than allowed, and stopping rsync and its forked receiver when it must.

It never passes anything to a shell, never lets rsync follow or create symlinks, and never
decides whether the files are right (``verify`` does).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

from bridge import printable
from repo_daemon.sync import deadline as sync_deadline
from repo_daemon.sync import errors, placing, progress, records, scratch, urls

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 12


def plan_rsync(
    url: str,
    dest: Path,
    timeout: float,
    *,
    connect_timeout: float | None = None,
    password_file: Path | None = None,
    binary: str = "rsync",
    address: str | None = None,
    exclude_from: Path | None = None,
) -> list[str]:
    """The rsync argument list that mirrors ``url``'s directory into ``dest``.

    Regular files and directories only (``--no-links --no-devices --no-specials``: rsync skips
    the rest and names them, and ``sync_rsync`` refuses them), no owners, groups or executable bits
    from the provider (``--chmod=D755,F644``), times kept and ``--partial`` so a retry into the
    same directory resumes, ``--delete`` so it ends as an exact copy, I/O and connect timeouts,
    ``TCP_NODELAY`` on the daemon connection (``--sockopts``: without it the start of each
    connection waits out delayed ACKs twice, ~40 ms each, whatever the release's size), and
    ``--`` before the URL. With ``address`` (the host's address the allowlist checked),
    rsync connects there instead of looking the name up again. With ``exclude_from`` (a file
    of ``exclude_patterns``), the files placed from the pool are neither fetched nor touched
    (their times, modes and bytes are the pool's) nor deleted by ``--delete``.
    """
    source = urls.rsync_source_via(url, address) if address else urls.check_rsync_url(url)
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
        # rsync's handshake is many small writes: Nagle's algorithm holds them for the peer's
        # delayed ACK (~40 ms, twice a connection, measured on loopback).
        "--sockopts=TCP_NODELAY",
        "--info=progress2,nonreg1",
        # One line per file once it is complete (%b is only known then): lets the files be
        # hashed while the rest arrive.
        f"--out-format={_DONE_PREFIX}%b %n",
    ]
    if password_file is not None:
        argv.append(f"--password-file={password_file}")
    if exclude_from is not None:
        argv.append(f"--exclude-from={exclude_from}")
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


_WILDCARDS = re.compile(r"[*?\[]")


def exclude_patterns(paths: Iterable[str]) -> str:
    """rsync filter lines that exclude exactly ``paths`` (relative, ``/``): each anchored at
    the transfer's root (a leading ``/``), wildcard characters escaped (rsync reads a
    backslash as an escape only in a pattern that holds a wildcard, so only those are
    escaped), one per line, sorted."""
    lines = []
    for path in sorted(paths):
        if "\n" in path or "\r" in path:
            raise ValueError(f"a path with a line break cannot be excluded: {path!r}")
        if _WILDCARDS.search(path):
            path = re.sub(r"([*?\[\\])", r"\\\1", path)
        lines.append(f"/{path}\n")
    return "".join(lines)


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


def sync_rsync(
    url: str,
    dest: Path,
    *,
    options: records.SyncOptions,
    report: progress.Progress,
    on_file: Callable[[str], None] = lambda _path: None,
    address: str | None = None,
    deadline: sync_deadline.Deadline | None = None,
    placed: placing.Placed = placing.NOTHING,
) -> records.SyncResult:
    """Run rsync (``plan_rsync``) into ``dest``, connecting to ``address`` when given; see
    ``fetch.sync``. The ``placed`` files (linked from the pool) are excluded from the
    transfer: rsync neither fetches, touches nor deletes them; progress counts them as done.
    rsync runs in a process group of its own, stopped (with the receiver it
    forks) when the sync fails, passes its ``deadline`` or is interrupted, and set to die with
    the daemon's thread that started it if the daemon is killed outright (``with_pdeathsig``).
    """
    with contextlib.ExitStack() as stack:
        exclude_from = None
        if placed.count:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rollout-")))
            exclude_from = folder / "placed-from-pool"
            exclude_from.write_text(exclude_patterns(placed.paths), encoding="utf-8")
        argv = plan_rsync(
            url,
            dest,
            options.timeout,
            connect_timeout=options.connect_timeout,
            password_file=options.rsync_password_file,
            binary=options.rsync_binary,
            address=address,
            exclude_from=exclude_from,
        )
        return _run(argv, url, dest, options, report, on_file, deadline, placed.bytes)


def _run(
    argv: list[str],
    url: str,
    dest: Path,
    options: records.SyncOptions,
    report: progress.Progress,
    on_file: Callable[[str], None],
    deadline: sync_deadline.Deadline | None,
    offset: int,
) -> records.SyncResult:
    """Run rsync's ``argv`` and watch it (``sync_rsync``); ``offset`` bytes are already there
    (placed): rsync's progress counts from it."""
    if shutil.which(argv[0]) is None:
        raise errors.RsyncFailed(127, f"{argv[0]} is not installed", url=url)
    scratch.prepare_dest(dest)
    started = time.monotonic()
    proc = subprocess.Popen(
        with_pdeathsig(argv),
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
            report.update(parsed[0] + offset, parsed[1])
            if parsed[0] + offset > options.max_bytes:
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
    failure: errors.SyncError | None = None
    exited = _exit_watch(proc)
    try:
        while proc.poll() is None:
            if too_large.is_set():
                failure = errors.SyncRefused(
                    f"the tree at {url} is larger than the {options.max_bytes} bytes a release "
                    "may have; rsync was stopped"
                )
            elif time.monotonic() - activity[0] > stall_limit:
                failure = errors.SyncTimedOut(
                    f"rsync from {url} made no progress for {stall_limit:.0f} s and was stopped"
                )
            elif deadline is not None and deadline.passed():
                failure = deadline.error(url, report)
            if failure is not None:
                _stop(proc)
                break
            exited(0.2)
    except BaseException:
        _stop(proc)
        raise
    finally:
        exited(None)
        for reader in readers:
            reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    seconds = time.monotonic() - started
    if failure is not None:
        raise failure
    if nonregular:
        raise errors.SyncRefused(
            f"the tree at {url} holds {len(nonregular)} entries that are neither directories nor "
            "regular files (symlinks and special files are never accepted): "
            + ", ".join(printable.escape(n) for n in nonregular),
            nonregular,
        )
    if proc.returncode != 0:
        tail = (stdout_lines + stderr_lines)[-STDERR_TAIL_LINES:]
        host, _port = urls.endpoint("rsync", url)
        raise errors.RsyncFailed(proc.returncode, plain_tail(tail, host=host), url=url)
    summary = scratch.check_tree(dest)
    report.update(report.done)
    return records.SyncResult(
        files=summary.files, bytes=summary.bytes, seconds=seconds, listing=summary.listing
    )


_FAILED_TO_CONNECT = re.compile(r".*failed to connect to .*?: (?P<why>.+?)(?: \(\d+\))?")
_GETADDRINFO = re.compile(r".*getaddrinfo: .*")
_ACCESS_DENIED = re.compile(r"(?P<head>@ERROR: access denied to \S+) from .*")
_ADDRESS = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*")  # checked by ipaddress


def plain_tail(lines: list[str], *, host: str) -> str:
    """rsync's last lines as a ticket may show them: a failure to connect or to resolve in
    plain words about ``host`` (rsync names every address it tried, and its proxy), the
    daemon's "access denied" without the bridge's own address, and no other address than
    ``host`` itself."""
    kept: list[str] = []
    for line in lines:
        if match := _FAILED_TO_CONNECT.fullmatch(line):
            why = errors.plain_words(match["why"]) or errors.CONNECTION_FAILED
            line = f"could not connect to {host}: {why}"
        elif _GETADDRINFO.fullmatch(line):
            line = f"could not connect to {host}: the host name could not be resolved"
        elif match := _ACCESS_DENIED.fullmatch(line):
            line = match["head"]
        else:
            line = _ADDRESS.sub(lambda m: _hide_address(m[0], host), line)
        if line not in kept:
            kept.append(line)
    return "\n".join(kept)


def _hide_address(text: str, host: str) -> str:
    """``[address]`` for an IP address other than ``host``; anything else as it is."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text
    return text if text == host else "[address]"


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


def _exit_watch(proc: subprocess.Popen[bytes]) -> Callable[[float | None], None]:
    """A function that waits up to its argument (seconds) for ``proc`` to exit, waking the
    moment it does (a pidfd, Linux 5.3+; ``Popen.wait``'s polling sleeps up to 50 ms more
    otherwise), or, given None, releases what it holds."""
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None

    def wait(seconds: float | None) -> None:
        nonlocal pidfd
        if seconds is None:
            if pidfd is not None:
                os.close(pidfd)
                pidfd = None
        elif pidfd is not None:
            select.select([pidfd], [], [], seconds)
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=seconds)

    return wait


_SETPRIV = shutil.which("setpriv")


def with_pdeathsig(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel kills it when the thread that started it dies (the
    daemon killed outright, SIGKILL included): through util-linux's ``setpriv --pdeathsig
    KILL``, which sets ``PR_SET_PDEATHSIG`` and execs it (no ``preexec_fn``, which is unsafe
    with threads). Without ``setpriv``, ``argv`` as it is: rsync then ends by its own
    ``--timeout`` once its daemon is gone."""
    if _SETPRIV is None:
        return argv
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


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
