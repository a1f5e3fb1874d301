"""The errors publication raises, one class per condition, with the data to act on.

Hierarchy::

    repo_daemon.errors.DaemonError
    └── PublishFailed          root of publication errors; ``transient`` per instance
        ├── PathRefused        a name or path is unsafe below the root (permanent)
        ├── PathConflict       releases disagree about a path, or an area's path is occupied
        │                      by something the bridge did not make (permanent)
        ├── ContentMissing     bytes a release needs are absent or wrong (permanent)
        ├── SnapshotInvalid    a snapshot failed its checks or cannot be read (permanent)
        ├── StorageFailed      the file system refused (transient for ENOSPC, EBUSY, ...)
        ├── AreaBusy           an area's lock stayed taken past the timeout (transient)
        └── LockLost           a database lock could not be taken or was lost (transient)

Pure: nothing here reads or writes files, and no message holds an absolute path.
"""

from __future__ import annotations

import errno as errno_codes

from repo_daemon import errors

# errno values after which a later try may succeed without anybody doing anything: space
# freed by the pool GC or retention, a busy or briefly unreachable shared file system.
TRANSIENT_ERRNOS = frozenset(
    {
        errno_codes.ENOSPC,
        errno_codes.EDQUOT,
        errno_codes.EAGAIN,
        errno_codes.EBUSY,
        errno_codes.EINTR,
        errno_codes.ETIMEDOUT,
        errno_codes.ESTALE,
        errno_codes.ENOLCK,
        errno_codes.EMFILE,
        errno_codes.ENFILE,
        errno_codes.ENOMEM,
    }
)


class PublishFailed(errors.DaemonError):
    """Publication failed. Root of the publication errors; ``transient`` is per instance."""

    def __init__(self, message: str, *, transient: bool = False, ticket_id: int | None = None):
        self.transient = transient
        self.ticket_id = ticket_id
        super().__init__(message)


class PathRefused(PublishFailed):
    """A name or path is unsafe to turn into a path below the root (permanent)."""

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"{what} {_show(value)} refused: {reason}")


class PathConflict(PublishFailed):
    """Releases in one area disagree about a path, or an area's path is occupied by something
    the bridge did not make (permanent: a person must decide). ``conflicts`` lists each one."""

    def __init__(self, area: str, conflicts: list[str]) -> None:
        self.area = area
        self.conflicts = list(conflicts)
        shown = self.conflicts[:20]
        more = len(self.conflicts) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"{area}: {text}")


class ContentMissing(PublishFailed):
    """Bytes a release needs are not where they must be: absent from the scratch tree or the
    pool, or of the wrong size or SHA-256 (permanent). ``problems`` lists every file."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"{what}: {text}")


class SnapshotInvalid(PublishFailed):
    """A snapshot failed its checks, or an existing one cannot be read (permanent)."""

    def __init__(self, area: str, problems: list[str]) -> None:
        self.area = area
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"snapshot of {area} is not usable: {text}")


class StorageFailed(PublishFailed):
    """The file system refused an operation. Transient for conditions that may pass (disk full,
    quota, busy or stale shared storage); permanent otherwise (permissions, read-only, I/O
    errors of the disk). Only paths relative to the root appear in the message."""

    def __init__(self, action: str, where: str, exc: OSError) -> None:
        self.errno = exc.errno
        reason = exc.strerror or type(exc).__name__
        super().__init__(f"{action} {where}: {reason}", transient=exc.errno in TRANSIENT_ERRNOS)


class AreaBusy(PublishFailed):
    """An area's lock stayed taken past the timeout (transient: another daemon is at work)."""

    def __init__(self, lock: str, waited: float) -> None:
        self.lock = lock
        super().__init__(f"lock {lock} still taken after {waited:.0f} s", transient=True)


class LockLost(PublishFailed):
    """A lock held in the database could not be taken (the database is unreachable) or is no
    longer held (its connection broke): the change stops before its swap (transient)."""

    def __init__(self, lock: str, reason: str) -> None:
        self.lock = lock
        super().__init__(f"lock {lock}: {reason}", transient=True)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."
