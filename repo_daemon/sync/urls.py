"""Checks of ``Sync-URL`` and ``Sync-Protocol`` before anything is fetched (pure): which
protocol, and whether the URL is one the protocol accepts (no options, shell characters,
credentials, ``.``/``..`` components or invisible characters).

It never connects, fetches or builds a command; each protocol's module does that with what
these checks return.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from repo_daemon.sync import errors

PROTOCOLS = ("rsync", "sftp", "https")
RSYNC_PORT = 873  # an rsync daemon's port when the URL names none

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
        raise errors.SyncUrlRefused(url, "it is empty")
    if len(url) > 2048:
        raise errors.SyncUrlRefused(url[:80] + "…", "it is longer than 2048 characters")
    if url.startswith("-"):
        raise errors.SyncUrlRefused(url, "it starts with '-' (it would read as an option)")
    for char in url:
        if char.isspace() or unicodedata.category(char)[0] in "CZ":
            raise errors.SyncUrlRefused(
                url, f"it contains whitespace or a control character {char!r}"
            )


def _check_segments(url: str, path: str, *, what: str) -> list[str]:
    """The ``/``-separated segments of ``path``; refuses empty, ``.``, ``..`` and odd ones."""
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise errors.SyncUrlRefused(url, f"its {what} has an empty, '.' or '..' component")
        if not _SEGMENT.fullmatch(segment):
            raise errors.SyncUrlRefused(
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
        raise errors.SyncUrlRefused(
            url, "not an rsync daemon URL (rsync://host[:port]/module/path or host::module/path)"
        )
    port = match.groupdict().get("port")
    if port is not None and not 0 < int(port) < 65536:
        raise errors.SyncUrlRefused(url, f"port {port} is out of range")
    path = match["path"].removesuffix("/")
    if not path:
        raise errors.SyncUrlRefused(url, "it names no rsync module")
    _check_segments(url, path, what="module path")
    return url if url.endswith("/") else url + "/"


def _rsync_match(url: str) -> re.Match[str]:
    match = _RSYNC_URL.fullmatch(url) or _RSYNC_DAEMON.fullmatch(url)
    if match is None:  # check_rsync_url refused it already
        raise errors.SyncUrlRefused(url, "not an rsync daemon URL")
    return match


def rsync_source_via(url: str, address: str) -> str:
    """The source ``check_rsync_url`` returns, pointed at ``address`` (the host's address the
    allowlist checked) instead of the host's name: ``rsync://[user@]address:port/path/``."""
    source = check_rsync_url(url)
    match = _rsync_match(source)
    user = f"{match['user']}@" if match["user"] else ""
    host = f"[{address}]" if ":" in address else address
    port = match.groupdict().get("port") or str(RSYNC_PORT)
    return f"rsync://{user}{host}:{port}/{match['path']}"


def endpoint(protocol: str, url: str, *, allow_http: bool = False) -> tuple[str, int]:
    """``(host, port)`` that ``url`` makes ``protocol`` (a name ``check_protocol`` returned)
    connect to: the host in lower case, without brackets or a trailing dot; the protocol's
    port when the URL names none. Refuses what the protocol's own check refuses (for SFTP:
    what is needed to find the host; ``parse_sftp_url`` checks the rest)."""
    if protocol == "rsync":
        match = _rsync_match(check_rsync_url(url))
        host = match["host"].strip("[]")
        port = int(match.groupdict().get("port") or RSYNC_PORT)
    else:
        if protocol == "https":
            check_https_url(url, allow_http=allow_http)
        else:
            check_common(url)
        parts = urlsplit(url)
        if parts.scheme != ("sftp" if protocol == "sftp" else parts.scheme):
            raise errors.SyncUrlRefused(url, "not an sftp:// URL")
        try:
            port = parts.port or {"sftp": 22, "https": 443, "http": 80}[parts.scheme]
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise errors.SyncUrlRefused(url, "its port is not a number from 1 to 65535")
        host = parts.hostname or ""
        if not host:
            raise errors.SyncUrlRefused(url, "it names no host")
    return host.lower().removesuffix("."), port


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
        raise errors.SyncUrlRefused(url, "not an sftp:// URL")
    try:
        port = 22 if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise errors.SyncUrlRefused(url, "its port is not a number from 1 to 65535")
    host = parts.hostname or ""
    if not re.fullmatch(_HOST, host) and not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
        raise errors.SyncUrlRefused(url, "it names no valid host")
    if parts.password is not None:
        raise errors.SyncUrlRefused(url, "passwords in the URL are not accepted; keys only")
    if parts.query or parts.fragment:
        raise errors.SyncUrlRefused(url, "queries and fragments are not accepted")
    user = unquote(parts.username) if parts.username else default_user
    if not user or not re.fullmatch(_USER, user):
        raise errors.SyncUrlRefused(
            url, "it names no (valid) user, and no default SFTP user is set"
        )
    path = unquote(parts.path).rstrip("/")
    if not path.startswith("/"):
        raise errors.SyncUrlRefused(url, "it names no directory")
    _check_segments(url, path[1:], what="path")
    return SftpTarget(user=user, host=host, port=port, path=path)


def check_https_url(url: str, *, allow_http: bool = False) -> str:
    """The base URL (without trailing ``/``) that package paths are appended to.

    Refused: other schemes (``http://`` unless ``allow_http``), credentials in the URL, queries
    and fragments, ``.``/``..`` path components (also percent-encoded ones).
    """
    check_common(url)
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise errors.SyncUrlRefused(
            url, "not an https:// URL" + ("" if allow_http else " (http:// is not allowed)")
        )
    if not parts.hostname:
        raise errors.SyncUrlRefused(url, "it names no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 0 < port < 65536:
        raise errors.SyncUrlRefused(url, "its port is not a number from 1 to 65535")
    if parts.username is not None or parts.password is not None:
        raise errors.SyncUrlRefused(url, "credentials in the URL are not accepted")
    if parts.query or parts.fragment:
        raise errors.SyncUrlRefused(url, "queries and fragments are not accepted")
    if any(s in (".", "..") for s in unquote(parts.path).split("/")):
        raise errors.SyncUrlRefused(url, "its path has a '.' or '..' component")
    return url.rstrip("/")


def check_protocol(protocol: str | None, url: str, *, allow_http: bool = False) -> str:
    """The protocol to use: ``Sync-Protocol`` in lower case (empty means rsync). Each
    protocol's own step checks the URL."""
    name = (protocol or "rsync").strip().lower() or "rsync"
    if name == "http" and allow_http:
        name = "https"
    if name not in PROTOCOLS:
        raise errors.SyncUrlRefused(
            url, f"Sync-Protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}"
        )
    return name
