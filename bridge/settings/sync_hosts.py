"""The allowlist of provider hosts a Sync-URL may name (``sync_hosts``), read from the settings:
``[[sync_hosts]]`` tables in the settings file (with per-host ports, protocols and
credentials), or a list of hosts (``ROLLOUT_SYNC_HOSTS=mirror.example.org,192.0.2.0/24``, or
``sync_hosts = [...]``). Each host is a name (``*.example.org`` for every name below it), an
address or a network in CIDR form; it is checked and normalised here, every problem collected
and named by its setting. Pure apart from checking that the credential files named exist: it
resolves no name and connects nowhere (``repo_daemon.sync.allowlist`` applies the list).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge.settings import model

TABLE_KEYS = (
    "host", "ports", "protocols", "rsync_password_file", "sftp_user", "sftp_key_file",
    "https_ca_file",
)  # fmt: skip
PROTOCOLS = ("rsync", "sftp", "https")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def read(value: Any, problems: list[str]) -> tuple[model.SyncHost, ...]:
    """The allowed hosts from ``sync_hosts``: a TOML array of tables and/or host strings, or a
    comma-separated string (environment). Nothing set: ``()``, any host (the caller warns)."""
    if value is None or value == "" or value == []:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    hosts: list[model.SyncHost] = []
    for item in items:
        if isinstance(item, Mapping):
            found = _table(item, problems)
        elif isinstance(item, str):
            if not item.strip():
                continue
            found = _host_only(item, problems)
        else:
            problems.append(f"sync_hosts: {item!r} is neither a host nor a [[sync_hosts]] table")
            continue
        if found is not None:
            hosts.append(found)
    seen = [(h.host, h.ports, h.protocols) for h in hosts]
    twice = sorted({h for h, p, q in seen if seen.count((h, p, q)) > 1})
    if twice:
        problems.append(f"sync_hosts: {', '.join(twice)} is listed more than once")
    return tuple(hosts)


def normalise_host(text: str) -> str | None:
    """``text`` as the allowlist compares it: a network (``10.0.0.0/8``), an address
    (``192.0.2.7``, ``::1``, without brackets) or a name in lower case without a trailing dot
    (``*.`` first for every name below it); None when it is none of these."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=True))
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.lower().removesuffix(".")
    # A last label of digits only would read as an address to the resolver (127.1, 0x7f.1).
    if len(name) > 253 or not _NAME.fullmatch(name) or name.rsplit(".", 1)[-1].isdigit():
        return None
    return name


def _host(value: Any, where: str, problems: list[str]) -> str | None:
    text = str(value or "").strip()
    host = normalise_host(text) if text else None
    if host is None:
        problems.append(
            f"{where}: {text!r} is not a host name (mirror.example.org, *.example.org), an "
            "address or a network (192.0.2.0/24; no host bits set)"
            if text
            else f"{where}: host is not set"
        )
    return host


def _host_only(text: str, problems: list[str]) -> model.SyncHost | None:
    host = _host(text, f"sync_hosts: {text.strip()!r}", problems)
    return model.SyncHost(host=host) if host is not None else None


def _table(table: Mapping[str, Any], problems: list[str]) -> model.SyncHost | None:
    where = f"sync_hosts: host {str(table.get('host') or '')!r}"
    unknown = sorted(set(map(str, table)) - set(TABLE_KEYS))
    if unknown:
        known = ", ".join(TABLE_KEYS)
        problems.append(f"{where}: unknown key {', '.join(unknown)} (known: {known})")
    host = _host(table.get("host"), where, problems)
    ports = _ports(table.get("ports"), where, problems)
    protocols = _protocols(table.get("protocols"), where, problems)
    user = str(table["sftp_user"]).strip() if table.get("sftp_user") else None
    if user is not None and not _USER.fullmatch(user):
        problems.append(f"{where}: sftp_user {user!r} is not a user name")
    files = {
        key: _file(table.get(key), f"{where}: {key}", problems)
        for key in ("rsync_password_file", "sftp_key_file", "https_ca_file")
    }
    if host is None:
        return None
    return model.SyncHost(
        host=host,
        ports=ports,
        protocols=protocols,
        sftp_user=user,
        rsync_password_file=files["rsync_password_file"],
        sftp_key_file=files["sftp_key_file"],
        https_ca_file=files["https_ca_file"],
    )


def _ports(value: Any, where: str, problems: list[str]) -> tuple[int, ...]:
    if value is None or value == []:
        return ()
    items = value if isinstance(value, list) else [value]
    ports = []
    for item in items:
        if isinstance(item, bool) or not str(item).strip().isdigit():
            problems.append(f"{where}: ports: {item!r} is not a port number")
            continue
        port = int(str(item).strip())
        if not 0 < port < 65536:
            problems.append(f"{where}: ports: {port} is not from 1 to 65535")
            continue
        ports.append(port)
    return tuple(dict.fromkeys(ports))


def _protocols(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    items = value if isinstance(value, list) else [value]
    names = [str(item).strip().lower() for item in items]
    wrong = [n for n in names if n not in PROTOCOLS]
    if wrong:
        problems.append(
            f"{where}: protocols: {', '.join(map(repr, wrong))} not among {', '.join(PROTOCOLS)}"
        )
    return tuple(dict.fromkeys(n for n in names if n in PROTOCOLS))


def _file(value: Any, where: str, problems: list[str]) -> Path | None:
    if not value:
        return None
    path = Path(str(value))
    if not path.is_file():
        problems.append(f"{where}: {path} is not a readable file")
    return path
