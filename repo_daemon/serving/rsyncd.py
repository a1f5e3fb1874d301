"""The rsyncd configuration the product ships for mirrors (``rollout repo rsyncd-conf``): one
read-only module of the public trees, ``.snapshots/`` included so a mirror can copy one
immutable snapshot, and ``.trees/`` so it can copy a tree-layout area's payload
(docs/serving.md), and one module per protected kind of area, offered only to the users with
a secret (docs/access.md).

A pure renderer: text in, text out, nothing read or written; values are checked by ``policy``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from repo_daemon.serving import policy

logger = logging.getLogger(__name__)

DEFAULT_MODULE = "repo"
DEFAULT_SECRETS_FILE = Path("/etc/rollout/rsyncd.secrets")
# The kinds of area only some may copy, and the rsync users (roles, teams) that may.
DEFAULT_PROTECTED: Mapping[str, Sequence[str]] = {
    "unverified": ("qc", "sr", "admin"),
    "stagerollout": ("early-adopters", "sr", "qc", "admin"),
}
# The payload trees of tree-layout areas (publish's names.TREES_DIR; serving reads no
# publish module). Their ``.meta`` switch is offered: the metadata links go through it.
TREES = ".trees"
# The bridge's state and what a change can leave half made: ``.*.swap-*`` covers an area's
# swap link and a tree's ``.meta.swap-*``; ``/.releases/`` (the release entries, of protected
# kinds too) is no mirror's business: a tree's manifest names its links, the tree its files.
_HIDDEN = "/.pool/ /.locks/ /.releases/ .building-* .deleting-* .*.swap-* /.metadata-cache/"


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
    protected: Mapping[str, Sequence[str]] | None = None,
    secrets_file: Path = DEFAULT_SECRETS_FILE,
) -> str:
    """An ``rsyncd.conf`` with one read-only module, ``module``, for the whole tree below
    ``root``: the areas (symlinks into ``.snapshots/`` or ``.trees/``, which must stay inside
    the module for rsync ≥ 3.5 to follow them), ``.snapshots/`` itself, the immutable trees
    consistent mirrors copy, and ``.trees/``, the payload of tree-layout areas.
    ``.pool/``, ``.locks/``, ``.releases/``, half-built or half-deleted snapshots and stale
    swap links (``.meta.swap-*`` too) are excluded by the daemon, and so is every option
    that makes it send what a symlink points at (``-L``, ``-k``, ``--copy-unsafe-links``).
    Run it with ``rsync --daemon --no-detach --config=FILE``.

    ``use_chroot`` (needs a daemon started as root) chroots every transfer into ``root``;
    ``uid``/``gid`` are the accounts transfers run as (None: the daemon's own). pid and lock
    files go into ``run_dir``; the log into ``log_file`` (None: syslog). Raises
    ``ValueError`` for values unsafe in rsyncd.conf.

    ``protected`` (kind of area → rsync user names; default ``DEFAULT_PROTECTED``): those
    areas, their snapshots and trees are left out of ``module`` and offered each in a module of its
    own, ``<module>-<kind>``, only to those users with their secret in ``secrets_file``
    (``name:secret`` lines, mode 0600, owned by the daemon's user; docs/access.md).
    ``production`` cannot be protected here: its areas are the public module.
    """
    base = policy.config_root(root)
    run = policy.config_root(run_dir)
    kinds = dict(DEFAULT_PROTECTED if protected is None else protected)
    if set(kinds) - {"unverified", "stagerollout"}:
        raise ValueError(f"only unverified and stagerollout can be protected, not {sorted(kinds)}")
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
        f"    exclude = {_HIDDEN}"
        + "".join(
            f" /{kind}/*** /{policy.SNAPSHOTS}/{kind}~*/*** /{TREES}/{kind}~*/***" for kind in kinds
        ),
    ]
    secrets = policy.config_root(secrets_file) if kinds else ""
    for kind in kinds:
        users = [policy.check_value("rsync user", u, policy.SAFE_WORD) for u in kinds[kind]]
        lines += [
            "",
            f"[{module}-{kind}]",
            f"    comment = Rollout bridge {kind} areas (read only, with a secret)",
            f"    path = {base}",
            f"    use chroot = {'yes' if use_chroot else 'no'}",
            "    read only = yes",
            "    list = yes",
            "    munge symlinks = no",
            "    refuse options = copy-links copy-dirlinks copy-unsafe-links",
            f"    auth users = {', '.join(users) if users else '!nobody'}",
            f"    secrets file = {secrets}",
            "    strict modes = yes",
            # Only this kind's areas, snapshots and trees (stagerollout areas are shared: they
            # may use the tree layout): the filter chain is filter, include, then exclude, so
            # leftovers go first and everything not included last.
            f"    filter = {' '.join('- ' + p for p in _HIDDEN.split())}",
            f"    include = /{kind}/*** /{policy.SNAPSHOTS}/ /{policy.SNAPSHOTS}/{kind}~*/***"
            f" /{TREES}/ /{TREES}/{kind}~*/***",
            "    exclude = *",
        ]
    return "\n".join(lines) + "\n"
