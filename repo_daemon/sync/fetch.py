"""The entry points of the sync: fetch a release's files from its provider into a scratch
directory by the ticket's ``Sync-Protocol`` (``rsync``, the default; ``sftp``; ``https``),
and fetch-then-verify against release.xml. It checks the protocol and the size promised,
reports progress, and hands the work to the protocol's module (``rsync``, ``sftp``,
``https``); the errors it raises are in ``sync.errors``.

It never decides whether the files are right (``verify`` does that against release.xml),
never publishes, never passes anything to a shell, and never writes outside ``dest``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import (
    allowlist,
    deadline,
    errors,
    https,
    placing,
    records,
    rsync,
    scratch,
    sftp,
    urls,
    verify,
)

# By name: ``progress`` is the callback's keyword in the signatures below.
from repo_daemon.sync.progress import Progress, ProgressCallback

logger = logging.getLogger(__name__)


def sync(
    protocol: str | None,
    url: str,
    dest: Path,
    *,
    packages: Sequence[release_model.PackageFile] | None = None,
    options: records.SyncOptions | None = None,
    progress: ProgressCallback | None = None,
    log_extra: Mapping[str, object] | None = None,
    on_file: Callable[[str], None] | None = None,
    pool: placing.PoolFiles | None = None,
    on_placed: Callable[[placing.Placed], None] | None = None,
) -> records.SyncResult:
    """Fetch ``url`` into ``dest`` by ``protocol`` (``Sync-Protocol``; empty means rsync).

    ``packages`` (release.xml's files) is needed for HTTPS, which fetches exactly those files;
    for rsync and SFTP it gives the expected total for progress and an early size check. A
    release larger than ``options.max_bytes`` is refused before anything is fetched (and rsync
    is stopped when it passes the limit). ``dest`` is created; an existing one is resumed into
    and ends as an exact copy. Afterwards the tree must hold only directories and regular
    files. ``on_file(path)`` is called (from another thread) as each file is complete, e.g.
    ``verify.Prehash.file_done``. Raises the ``sync.errors.SyncError`` subclasses, and
    ``SyncDeadlinePassed`` when the whole sync (connecting included) takes longer than its
    deadline: ``options.deadline_min`` plus the declared bytes (without ``packages``: the
    most a release may have) at ``options.min_rate``; the transfer is stopped then. A failure
    to write scratch (a full disk: ``scratch.ScratchFull``) is the bridge's, transient.

    With ``pool`` (the repository's, ``publish.pool.Pool``) and ``packages``, every package
    the pool already holds is first linked into ``dest`` from it (``placing.place``; given
    to ``on_placed``) and not fetched: rsync excludes it (so it neither fetches, touches nor
    deletes it), SFTP and HTTPS skip it. The result counts what was placed.
    """
    notify = on_file or (lambda _path: None)
    name, destination, options = check_source(protocol, url, options)
    total = sum(p.size for p in packages) if packages is not None else None
    if total is not None and total > options.max_bytes:
        raise errors.SyncRefused(
            f"release.xml promises {total} bytes, more than the {options.max_bytes} bytes "
            "a release may have"
        )
    report = Progress(
        progress,
        total=total,
        label=f"sync {errors.printable(url)}",
        log_interval=options.progress_log_interval,
        log_extra=log_extra,
    )
    if name == "https" and packages is None:
        raise errors.SyncError("an HTTPS sync needs release.xml's list of files", transient=False)
    declared = total if total is not None else options.max_bytes
    limit = deadline.Deadline(
        deadline.allowed(declared, base=options.deadline_min, min_rate=options.min_rate),
        declared_bytes=total,
        min_rate=options.min_rate,
    )
    try:
        placed = placing.NOTHING
        if pool is not None and packages:
            scratch.prepare_dest(dest)
            placed = placing.place(pool, dest, packages)
        if on_placed is not None:
            on_placed(placed)
        if name == "rsync":
            result = rsync.sync_rsync(url, dest, options=options, report=report, on_file=notify,
                                      address=destination.address, deadline=limit,
                                      placed=placed)  # fmt: skip
        elif name == "sftp":
            result = sftp.sync_sftp(url, dest, options=options, report=report, on_file=notify,
                                    address=destination.address, deadline=limit,
                                    placed=placed)  # fmt: skip
        else:
            assert packages is not None
            result = https.sync_https(url, dest, packages, options=options, report=report,
                                      on_file=notify, address=destination.address,
                                      deadline=limit, placed=placed)  # fmt: skip
    except OSError as exc:  # writing scratch: a full disk, the bridge's file system
        raise scratch.write_failed(exc, dest, total) from exc
    result = dataclasses.replace(result, placed_files=placed.count, placed_bytes=placed.bytes)
    if result.bytes > options.max_bytes:
        raise errors.SyncRefused(
            f"the tree at {errors.printable(url)} holds {result.bytes} bytes, more than the "
            f"{options.max_bytes} bytes a release may have"
        )
    logger.info(
        "synced %d files (%d bytes) from %s by %s in %.1f s: %d files (%d bytes) placed from "
        "the pool, %d files (%d bytes) transferred",
        result.files, result.bytes, errors.printable(url), name, result.seconds,
        result.placed_files, result.placed_bytes, result.transferred_files,
        result.transferred_bytes, extra=report.log_extra,
    )  # fmt: skip
    return result


def check_source(
    protocol: str | None,
    url: str,
    options: records.SyncOptions | None = None,
    *,
    resolver: allowlist.Resolver = allowlist.resolve,
) -> tuple[str, allowlist.Destination, records.SyncOptions]:
    """Whether the sync may fetch ``url`` by ``protocol``, before anything connects: the
    protocol's name, where it connects (``allowlist.Destination``) and the options with that
    host's credentials. Refuses (``SyncUrlRefused``) an unknown protocol, a URL the protocol
    does not accept and a host the allowlist (``options.sync_hosts``) does not name; a name
    checked by address is looked up once (``SyncError``, transient, when it does not
    resolve). ``sync`` calls it first; the workflow calls it at intake."""
    options = options or records.SyncOptions()
    name = urls.check_protocol(protocol, url, allow_http=options.allow_http)
    host, port = urls.endpoint(name, url, allow_http=options.allow_http)
    destination = allowlist.check(name, url, host, port, options.sync_hosts, resolver=resolver)
    options = allowlist.options_for(options, destination)
    if name == "sftp":  # the URL's user, or the host's (or global) default user
        urls.parse_sftp_url(url, options.sftp_user)
    return name, destination, options


def sync_and_verify(
    protocol: str | None,
    url: str,
    dest: Path,
    packages: Sequence[release_model.PackageFile],
    *,
    options: records.SyncOptions | None = None,
    progress: ProgressCallback | None = None,
    log_extra: Mapping[str, object] | None = None,
    pool: placing.PoolFiles | None = None,
) -> records.SyncResult:
    """``sync`` then ``verify.verify``, with each file hashed (one background thread) as soon
    as it is complete, so that most of the hashing overlaps the transfer; what that thread
    has not reached when the transfer ends is hashed by ``verify``'s threads. With ``pool``, the
    files placed from it (see ``sync``) are vouched for by the pool's name and size and not
    hashed, as long as they are still the pool's inode. Raises what either raises
    (``ChecksumMismatch`` listing every difference)."""

    def trust(placed: placing.Placed) -> None:
        for path, (identity, sha256) in placed.files.items():
            prehash.trust(path, identity, sha256)

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
            pool=pool,
            on_placed=trust,
        )
        # What the hashing thread has not started yet, verify hashes with all its threads:
        # the transfer is over, both cores are free for the tail.
        prehash.close(cancel=True)
    verify.verify(dest, packages, prehash=prehash, listing=result.listing)
    return result
