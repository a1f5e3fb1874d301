"""The records a sync takes and gives back: ``SyncOptions`` (how to fetch, mapped from the
settings) and ``SyncResult`` (what a finished sync left in scratch). Data only: no I/O.

They live apart from ``fetch`` because every protocol's do step takes the one and returns the
other, and ``fetch`` imports those steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bridge.settings.model import SyncHost
from repo_daemon.sync import tree


@dataclass(frozen=True, kw_only=True)
class SyncResult:
    """What a finished sync left in ``dest``: regular files, their bytes, and the time taken;
    of them, ``placed_files`` (``placed_bytes``) were linked from the repository's pool before
    the transfer instead of being fetched (``transferred_*``: the rest)."""

    files: int
    bytes: int
    seconds: float
    placed_files: int = 0
    placed_bytes: int = 0
    # The walk of ``dest`` that counted them (``scratch.check_tree``), taken once the
    # transfer had ended: ``verify`` checks against it instead of walking again.
    listing: tree.Listing | None = field(default=None, compare=False, repr=False)

    @property
    def transferred_files(self) -> int:
        return self.files - self.placed_files

    @property
    def transferred_bytes(self) -> int:
        return self.bytes - self.placed_bytes


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """How to sync. The lead maps settings onto these (see docs/sync.md)."""

    timeout: float = 600.0  # RepositorySettings.sync_timeout: seconds without progress
    # The overall deadline (deadline.allowed): this many seconds, plus the release's declared
    # bytes at min_rate bytes/s (RepositorySettings.sync_deadline_min, sync_min_rate).
    deadline_min: float = 900.0
    min_rate: float = 1024.0**2
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
    # The hosts a Sync-URL may name, with their credentials (RepositorySettings.sync_hosts);
    # empty: any host, with the credentials above.
    sync_hosts: tuple[SyncHost, ...] = ()
    progress_log_interval: float = 5.0
