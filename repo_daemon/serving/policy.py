"""What the published trees serve, and how: the one policy the nginx and rsyncd renderers and the
embedded server share. Which hidden names are visible, content types, ``Cache-Control``, and the
values that are safe to write into a configuration file.

Pure: no I/O. It renders nothing and serves nothing (``nginx``, ``rsyncd`` and ``static`` do).
Never served anywhere: ``.pool/`` and ``.locks/``; ``.snapshots/`` and ``.trees/`` only through
rsync; a tree's ``.meta`` switch and its ``.meta.swap-*`` links nowhere (hidden names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from repo_daemon.publish import index, manifest

SNAPSHOTS = ".snapshots"
# The tree layout (docs/serving.md, "Symlinks"): an area links to its payload tree ``.trees/<key>``,
# whose ``.meta`` link (hidden: never served nor listed) points at its live metadata snapshot.
TREES = ".trees"
META = ".meta"
# The hidden names a client or mirror may fetch from an area.
VISIBLE_HIDDEN = frozenset({manifest.MANIFEST_NAME, index.SERIAL_NAME})

# Content types by suffix, the same for nginx and the embedded server. Everything else (and
# apt's Packages, Release, InRelease) is application/octet-stream, or text/plain below.
CONTENT_TYPES: Mapping[str, str] = {
    "rpm": "application/x-rpm",
    "deb": "application/vnd.debian.binary-package",
    "udeb": "application/vnd.debian.binary-package",
    "xml": "application/xml",
    "gz": "application/gzip",
    "xz": "application/x-xz",
    "zst": "application/zstd",
    "bz2": "application/x-bzip2",
    "json": "application/json",
    "html": "text/html",
    "txt": "text/plain",
    "repo": "text/plain",
    "sources": "text/plain",
    "list": "text/plain",
    "asc": "application/pgp-keys",
    "gpg": "application/pgp-signature",
    "key": "application/pgp-keys",
    "sig": "application/pgp-signature",
}
TEXT_NAMES = frozenset({"Release", "InRelease", "Packages", index.SERIAL_NAME})
# The types nginx adds "; charset=utf-8" to (charset_types below).
_CHARSET_TYPES = frozenset({"text/html", "text/plain", "application/json"})

# Caching. Metadata and pages change with every publication: clients revalidate each time
# (ETag / Last-Modified make that a 304). Content-addressed files never change under their name.
# Packages keep their name and bytes in practice, but a release can be replaced while it is
# still in unverified, so a day, not forever.
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
PACKAGE = "public, max-age=86400"
_NO_CACHE_NAMES = re.compile(
    r"(?:^|/)(?:repomd\.xml(?:\.asc|\.key)?|(?:In)?Release(?:\.gpg)?|Packages(?:\.gz|\.xz)?"
    r"|index\.(?:json|html)|\.rollout-manifest\.json|\.rollout-serial|RPM-GPG-KEY-[^/]*"
    r"|[^/]*\.(?:repo|sources|list|asc))$"
)
_IMMUTABLE = re.compile(r"/by-hash/|(?:^|/)repodata/[0-9a-f]{64}-[^/]*$")

# Values written into configuration files. Conservative on purpose: a root path with a
# space, "$", ";", quote or newline would change the meaning of nginx.conf or rsyncd.conf.
SAFE_PATH = re.compile(r"/[A-Za-z0-9._+,@=~/-]*")
SAFE_LISTEN = re.compile(r"[A-Za-z0-9.:\[\]_-]+")
SAFE_NAMES = re.compile(r"[A-Za-z0-9.*_ -]+")
SAFE_WORD = re.compile(r"[A-Za-z0-9._-]+")


def cache_control(path: str) -> str:
    """The ``Cache-Control`` value for URL path ``path`` (the nginx locations say the same):
    ``NO_CACHE`` for directories, indexes, repository metadata and client files;
    ``IMMUTABLE`` for ``by-hash/`` and checksum-named ``repodata/`` files; ``PACKAGE`` else."""
    if path.endswith("/") or path == "":
        return NO_CACHE
    if _IMMUTABLE.search(path):
        return IMMUTABLE
    if _NO_CACHE_NAMES.search(path):
        return NO_CACHE
    return PACKAGE


def content_type(name: str) -> str:
    """The ``Content-Type`` for a file called ``name``."""
    if name in TEXT_NAMES:
        return "text/plain; charset=utf-8"
    suffix = name.rpartition(".")[2] if "." in name.lstrip(".") else ""
    kind = CONTENT_TYPES.get(suffix, "application/octet-stream")
    return f"{kind}; charset=utf-8" if kind in _CHARSET_TYPES else kind


def check_value(what: str, value: str, pattern: re.Pattern[str]) -> str:
    """``value`` when it matches ``pattern``; else ``ValueError`` naming ``what``."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not safe in a configuration file")
    return value


def config_root(root: Path) -> str:
    """``root`` as written into a configuration file: absolute and safe, else ``ValueError``."""
    text = check_value("repository root", str(root), SAFE_PATH)
    if not root.is_absolute():
        raise ValueError(f"repository root {str(root)!r} must be absolute")
    return text.rstrip("/") or "/"
