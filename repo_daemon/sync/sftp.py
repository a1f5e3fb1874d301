"""Fetching by SFTP (paramiko): connecting with a key and a checked host key, listing the
remote tree (refusing symlinks, special files and unsafe names before anything is
downloaded), and mirroring its regular files into scratch, keeping those an earlier attempt
already fetched.

It never authenticates with a password, never accepts an unknown host key unless configured
to, and never decides whether the files are right (``verify`` does).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from bridge import printable
from repo_daemon.release_xml import limits
from repo_daemon.sync import deadline as sync_deadline
from repo_daemon.sync import errors, placing, progress, records, scratch, urls, verify

logger = logging.getLogger(__name__)


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


def _connect(
    target: urls.SftpTarget,
    options: records.SyncOptions,
    address: str | None = None,
    on_socket: Callable[[socket.socket], None] = lambda _sock: None,
) -> Any:
    """A connected ``paramiko.SSHClient`` (key authentication, host key checked against the
    host's name). With ``address`` (the host's address the allowlist checked), the connection
    goes there and nowhere else. ``on_socket`` is given the TCP connection as soon as it is
    made, before SSH speaks on it (so a deadline can cut a handshake that trickles)."""
    where = f"{target.user}@{target.host}:{target.port}"
    if options.sftp_key_file is None:
        raise errors.SftpFailed(
            "no SSH key is configured for SFTP syncs (sftp_key_file)", transient=False
        )
    try:
        key = paramiko.PKey.from_path(options.sftp_key_file)
    except (
        OSError,
        ValueError,
        paramiko.SSHException,
        paramiko.pkey.UnknownKeyType,
    ) as exc:
        raise errors.SftpFailed(
            f"cannot use the SFTP key file {options.sftp_key_file}: "
            f"{getattr(exc, 'strerror', None) or exc}",
            transient=False,
        ) from exc
    client = paramiko.SSHClient()
    if options.sftp_known_hosts is not None:
        try:
            client.load_host_keys(os.fspath(options.sftp_known_hosts))
        except OSError as exc:
            raise errors.SftpFailed(
                f"cannot read the SFTP known_hosts file {options.sftp_known_hosts}: {exc.strerror}",
                transient=False,
            ) from exc
    elif not options.sftp_allow_unknown_hosts:
        raise errors.SftpFailed(
            "no known_hosts file is configured for SFTP syncs (sftp_known_hosts), and unknown "
            "hosts are not accepted",
            transient=False,
        )
    client.set_missing_host_key_policy(
        _AcceptAndLog() if options.sftp_allow_unknown_hosts else _RejectUnknown()
    )
    try:
        sock = _open_socket(address or target.host, target, options)
        on_socket(sock)
        client.connect(
            target.host,
            port=target.port,
            sock=sock,
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
        raise errors.SftpFailed(
            f"the SSH host key of {exc} is not in the known_hosts file; an operator must add it",
            transient=False,
        ) from None
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise errors.SftpFailed(
            f"the SSH host key of {target.host} does NOT match the known_hosts file (got "
            f"{exc.key.get_name()} {exc.key.fingerprint}); refusing to connect",
            transient=False,
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise errors.SftpFailed(
            f"SSH authentication as {where} refused: {exc}", transient=False
        ) from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        raise errors.SftpFailed(f"cannot connect to {where}: {_plain(exc)}",
                         transient=True) from exc  # fmt: skip
    return client


def _open_socket(address: str, target: urls.SftpTarget, options: records.SyncOptions) -> Any:
    """A TCP connection to ``address`` (for ``target``'s host), for paramiko to speak SSH on."""
    return socket.create_connection((address, target.port), timeout=options.connect_timeout)


def _shut_down(sockets: list[socket.socket]) -> None:
    """Shut the connections down: a read blocked on one wakes (closing would not wake it),
    and the server sees the connection closed."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _plain(exc: BaseException) -> str:
    """An SSH failure's own words (they name no address), or a network failure's plain ones."""
    if isinstance(exc, OSError | EOFError):
        return errors.plain_reason(exc)
    return str(exc) or type(exc).__name__


@dataclass(frozen=True, kw_only=True)
class _RemoteFile:
    path: str  # relative, with /
    size: int
    mtime: int


def _list_tree(sftp: Any, root: str) -> tuple[list[_RemoteFile], list[str]]:
    """Regular files below ``root`` and the entries that are refused (``lstat`` semantics),
    named escaped: symlinks and special files, and names, paths and depths the limits refuse
    (``release_xml.limits``; a directory refused is not listed further)."""
    files: list[_RemoteFile] = []
    refused: list[str] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            listed = sftp.listdir_attr(root + "/" + prefix)
        except UnicodeDecodeError as exc:  # paramiko decodes names as UTF-8, strictly
            name = printable.escape(bytes(exc.object)) if isinstance(exc.object, bytes) else "?"
            refused.append(f"{printable.escape(prefix)}{name} (its name is not valid UTF-8)")
            continue
        for attr in sorted(listed, key=lambda a: a.filename):
            name = str(attr.filename)
            rel = prefix + name
            mode = attr.st_mode or 0
            unsafe = _unsafe_name(name, rel)
            if unsafe:
                refused.append(f"{printable.escape(rel)} ({unsafe})")
            elif stat.S_ISDIR(mode):
                pending.append(rel + "/")
            elif stat.S_ISREG(mode):
                files.append(
                    _RemoteFile(path=rel, size=attr.st_size or 0, mtime=attr.st_mtime or 0)
                )
            else:
                refused.append(f"{printable.escape(rel)} ({verify.entry_kind(mode)})")
    return files, refused


def _unsafe_name(name: str, rel: str) -> str | None:
    """Why a name must not become a path component here (empty, ``.``, ``..``, with a ``/``
    or ``\\``, or what ``limits`` refuses in a name, a path or its depth), or None."""
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        return "unsafe name"
    return limits.entry_problem(name, rel)


def sync_sftp(
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
    """Mirror the remote directory of ``url`` into ``dest`` over SFTP, connecting to
    ``address`` when given; see ``fetch.sync``. The ``placed`` files (linked from the pool)
    are neither downloaded nor removed.

    The remote tree is listed first (refusing symlinks, specials and unsafe names before
    anything is downloaded); files whose size and time already match are kept (resume).
    When the ``deadline`` passes, the SSH connection is closed (also in the middle of a read)
    and ``SyncDeadlinePassed`` is raised.
    """
    target = urls.parse_sftp_url(url, options.sftp_user)
    scratch.prepare_dest(dest)
    started = time.monotonic()
    limit = deadline or sync_deadline.Deadline(float("inf"))
    sockets: list[socket.socket] = []
    client = None
    try:
        # Connecting counts too: an SSH server may trickle its banner and key exchange.
        with limit.watch(lambda: _shut_down(sockets), what=f"sync {errors.printable(url)}"):
            client = _connect(target, options, address, on_socket=sockets.append)
            _mirror(client, url, target, dest, options, report, on_file, limit, placed)
    except errors.SyncDeadlinePassed:
        raise
    except (errors.SyncError, paramiko.SSHException, EOFError, OSError) as exc:
        if limit.fired.is_set():  # what cutting the connection made of the read in hand
            raise limit.error(url, report) from exc
        raise
    finally:
        if client is not None:
            client.close()
        _shut_down(sockets)
    summary = scratch.check_tree(dest)
    return records.SyncResult(files=summary.files, bytes=summary.bytes, listing=summary.listing,
                              seconds=time.monotonic() - started)  # fmt: skip


def _mirror(
    client: Any,
    url: str,
    target: urls.SftpTarget,
    dest: Path,
    options: records.SyncOptions,
    report: progress.Progress,
    on_file: Callable[[str], None],
    limit: sync_deadline.Deadline,
    placed: placing.Placed,
) -> None:
    """List the remote tree, refuse what must be, and fetch what is neither here yet nor
    placed from the pool."""
    try:
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(options.timeout)
        try:
            if not stat.S_ISDIR(sftp.stat(target.path).st_mode or 0):
                raise errors.SftpFailed(f"{url} is not a directory", transient=False)
            files, refused = _list_tree(sftp, target.path)
        except OSError as exc:
            raise _wrap_os_error(exc, f"listing {url}") from exc
        if refused:
            raise errors.SyncRefused(
                f"the tree at {url} holds {len(refused)} entries that are not accepted (only "
                "directories and regular files with names within the limits of "
                "docs/release-xml.md; symlinks and special files never): "
                + ", ".join(refused[:20])
                + (f" and {len(refused) - 20} more" if len(refused) > 20 else ""),
                [r.rsplit(" (", 1)[0] for r in refused],
            )
        total = sum(f.size for f in files)
        if total > options.max_bytes:
            raise errors.SyncRefused(
                f"the tree at {url} holds {total} bytes, more than the {options.max_bytes} "
                "bytes a release may have"
            )
        if report.total is None:
            report.total = total
        scratch.prune(dest, {f.path for f in files} | placed.paths)
        report.add(placed.bytes)
        for remote in files:
            if remote.path in placed.files:
                continue  # the pool's bytes: verified by the pool's name and size
            limit.check(url, report)
            _fetch_file(sftp, target.path + "/" + remote.path, dest, remote, report, url)
            limit.check(url, report)  # a read the closed connection ended early
            on_file(remote.path)
    except (paramiko.SSHException, EOFError, TimeoutError) as exc:
        raise errors.SftpFailed(f"SFTP from {url} failed: {_plain(exc)}",
                         transient=True) from exc  # fmt: skip


def _fetch_file(
    sftp: Any,
    remote_path: str,
    dest: Path,
    remote: _RemoteFile,
    report: progress.Progress,
    url: str,
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
    part = scratch.part_name(target)
    try:
        with sftp.open(remote_path, "rb") as source, scratch.open_new(part) as out:
            source.prefetch(remote.size)
            left = remote.size
            while left > 0:
                data = source.read(min(scratch.CHUNK, left))
                if not data:
                    raise errors.SftpFailed(
                        f"{remote.path} at {url} became shorter while it was fetched",
                        transient=True,
                    )
                out.write(data)
                left -= len(data)
                report.add(len(data))
        os.utime(part, (remote.mtime, remote.mtime))
        part.replace(target)
    except OSError as exc:
        raise _wrap_os_error(exc, f"fetching {remote.path} from {url}") from exc
    finally:
        part.unlink(missing_ok=True)


def _wrap_os_error(exc: OSError, doing: str) -> errors.SyncError:
    if isinstance(exc, TimeoutError | socket.timeout):
        return errors.SftpFailed(f"{doing}: timed out", transient=True)
    if exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
        return errors.SftpFailed(f"{doing}: {exc.strerror or exc}", transient=False)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return errors.SyncError(f"{doing}: {exc.strerror} (our scratch disk)", transient=True)
    return errors.SftpFailed(f"{doing}: {exc.strerror or errors.plain_reason(exc)}", transient=True)
