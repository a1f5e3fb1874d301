"""The rsyncd configuration the product ships for mirrors (``rollout repo rsyncd-conf``): one
read-only module of the trees, ``.snapshots/`` included so a mirror can copy one immutable
snapshot (docs/serving.md).

A pure renderer: text in, text out, nothing read or written; values are checked by ``policy``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from repo_daemon.serving import policy

logger = logging.getLogger(__name__)

DEFAULT_MODULE = "repo"


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
    excluded by the daemon, and so is every option that makes it send what a symlink points
    at (``-L``, ``-k``, ``--copy-unsafe-links``). Run it with
    ``rsync --daemon --no-detach --config=FILE``.

    ``use_chroot`` (needs a daemon started as root) chroots every transfer into ``root``;
    ``uid``/``gid`` are the accounts transfers run as (None: the daemon's own). pid and lock
    files go into ``run_dir``; the log into ``log_file`` (None: syslog). Raises
    ``ValueError`` for values unsafe in rsyncd.conf.
    """
    base = policy.config_root(root)
    run = policy.config_root(run_dir)
    policy.check_value("address", address, policy.SAFE_LISTEN)
    policy.check_value("module name", module, policy.SAFE_WORD)
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
        lines.append(f"log file = {policy.config_root(log_file)}")
    else:
        lines.append("syslog facility = daemon")
    if uid is not None:
        lines.append(f"uid = {policy.check_value('uid', uid, policy.SAFE_WORD)}")
    if gid is not None:
        lines.append(f"gid = {policy.check_value('gid', gid, policy.SAFE_WORD)}")
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
        # Never send what a symlink points at (-L, -k, --copy-unsafe-links): a link planted in
        # a snapshot would hand out the pool or another area. Links go as links; a path asked
        # for through one is still resolved inside the chroot (docs/serving.md).
        "    refuse options = copy-links copy-dirlinks copy-unsafe-links",
        "    exclude = /.pool/ /.locks/ .building-* .deleting-* .*.swap-*",
    ]
    return "\n".join(lines) + "\n"
