"""The errors of fetching a release's files, and what rsync's exit codes mean. Every condition
has its own class, and ``transient`` says whether a later try may help; the runner never reads
message text. It fetches nothing and decides nothing beyond that.

Hierarchy (all ``repo_daemon.errors.DaemonError``)::

    SyncError             root; ``transient`` per instance
    ├── SyncUrlRefused    the URL or protocol is not acceptable (permanent)
    ├── SyncRefused       the provider's tree holds symlinks/specials or is too large (permanent)
    ├── SyncTimedOut      no progress for the sync timeout (transient)
    ├── SyncDeadlinePassed  not finished within the sync's overall deadline (permanent: the
    │                     provider's source is too slow)
    ├── RsyncFailed       rsync exited non-zero; ``returncode``, ``stderr_tail`` (per exit code)
    ├── SftpFailed        SSH/SFTP failed (auth, host key, missing path: permanent;
    │                     network: transient)
    └── HttpsFailed       HTTPS failed (4xx, TLS, too long: permanent; 5xx, 408, 429,
                          network: transient)

The rsync exit code table lives here, next to ``RsyncFailed``, because it is what makes an
rsync failure transient or permanent.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence

from bridge import printable as shown
from repo_daemon import errors


class SyncError(errors.DaemonError):
    """Fetching a release's files failed; ``transient`` is set per instance. The source is the
    provider's, so the provider hears of it."""

    provider_can_fix = True

    def __init__(self, message: str, *, transient: bool) -> None:
        self.transient = transient
        super().__init__(message)


class SyncUrlRefused(SyncError):
    """``Sync-URL`` / ``Sync-Protocol`` is not acceptable; ``reason`` says why (permanent)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Sync-URL {printable(url)!r} refused: {reason}", transient=False)


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


class SyncDeadlinePassed(SyncError):
    """The sync did not finish within its overall deadline (``deadline.Deadline``), however
    steadily bytes trickled in; the transfer was stopped. Permanent: the provider's source is
    too slow for the release, so they are told; a manager may retry it."""

    def __init__(self, message: str, *, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(message, transient=False)


class RsyncFailed(SyncError):
    """rsync exited non-zero; ``transient`` follows ``RSYNC_EXIT_CODES``."""

    def __init__(self, returncode: int, stderr_tail: str, *, url: str) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        meaning, transient = classify_rsync_exit(returncode, stderr_tail)
        # rsync's lines may quote the provider's server and names: shown escaped
        detail = f": {shown.text(stderr_tail)}" if stderr_tail else ""
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


def printable(text: str) -> str:
    """``text`` with every character that is not printable as ``?``: a URL or a remote name in
    a message or log line can never break it into lines or hide what it says."""
    return "".join(c if c.isprintable() else "?" for c in text)


# What a failure to connect is called on a ticket: the operating system's words (strerror,
# getaddrinfo) mapped to plain ones, so that no message carries the addresses, proxies or
# resolver details of the bridge's network.
_PLAIN_WORDS: Sequence[tuple[str, str]] = (
    ("connection refused", "the connection was refused"),
    ("name or service not known", "the host name could not be resolved"),
    ("temporary failure in name resolution", "the host name could not be resolved"),
    ("no address associated with hostname", "the host name could not be resolved"),
    ("nodename nor servname", "the host name could not be resolved"),
    ("failed to resolve", "the host name could not be resolved"),
    ("no route to host", "the host is unreachable"),
    ("host is unreachable", "the host is unreachable"),
    ("network is unreachable", "the network is unreachable"),
    ("connection reset", "the connection was reset"),
    ("broken pipe", "the connection was closed"),
    ("remote end closed connection", "the server closed the connection"),
    ("connection aborted", "the server closed the connection"),
    ("timed out", "timed out"),
)
_PLAIN_ERRNO: Mapping[int, str] = {
    errno.ECONNREFUSED: "the connection was refused",
    errno.EHOSTUNREACH: "the host is unreachable",
    errno.ENETUNREACH: "the network is unreachable",
    errno.ECONNRESET: "the connection was reset",
    errno.ECONNABORTED: "the connection was closed",
    errno.EPIPE: "the connection was closed",
    errno.ETIMEDOUT: "timed out",
}
CONNECTION_FAILED = "the connection failed"


def plain_words(text: str) -> str | None:
    """The plain words for the first failure to connect ``text`` mentions, or None."""
    lower = text.lower()
    return next((plain for words, plain in _PLAIN_WORDS if words in lower), None)


def plain_reason(exc: BaseException) -> str:
    """Why connecting failed, in plain words, from ``exc`` and what caused it (``OSError``
    numbers, name-resolution errors, paramiko's per-address errors, the wrappers of requests
    and urllib3); ``CONNECTION_FAILED`` when nothing is recognised. Never the exceptions' own
    text: it names addresses, proxies and internal objects."""
    chain = _chain(exc)
    for current in chain:
        if isinstance(current, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(current, TimeoutError):
            return "timed out"
        number = current.errno if isinstance(current, OSError) else None
        if number is not None and number in _PLAIN_ERRNO:
            return _PLAIN_ERRNO[number]
    for current in chain:
        words = plain_words(f"{type(current).__name__} {current}")
        if words is not None:
            return words
    return CONNECTION_FAILED


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything that caused it, nearest first."""
    found: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(found) < 50:
        current = pending.pop(0)
        if any(current is f for f in found):
            continue
        found.append(current)
        inner = getattr(current, "errors", None)  # paramiko: {(address, port): OSError}
        if isinstance(inner, Mapping):
            pending.extend(e for e in inner.values() if isinstance(e, BaseException))
        linked = (*current.args, current.__cause__, current.__context__,
                  getattr(current, "reason", None))  # fmt: skip
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return found
