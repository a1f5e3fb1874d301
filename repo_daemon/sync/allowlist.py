"""Which provider hosts a sync may connect to (settings: ``sync_hosts``), where exactly it
connects, and which credentials it offers there.

``decide`` is the rule (pure, given the addresses a name resolves to): a host is allowed when
an entry names it (a name, or ``*.`` and a domain), or when it is an address inside an entry's
network; a name that no entry names is looked up once, and allowed when one of its addresses
lies inside an entry's network, which is then the address connected to (``Destination.
address``: the protocols connect there and nowhere else, so a second look-up cannot lead
elsewhere). An entry may restrict ports and protocols. ``check`` adds the one look-up of a name
(``resolve``). ``options_for`` gives the sync options with the credentials of the entry that
allowed the host: the global ones only where the entry names none of its own.

With no entries, every host is allowed (as before the allowlist; the daemon warns at start-up).
It never connects anywhere; refusals never show an address the host was resolved to.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.settings.model import SyncHost
from repo_daemon.sync import errors, records

Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True, kw_only=True)
class Destination:
    """Where a sync connects: the ``host`` the Sync-URL names, its ``port``, the ``address``
    to connect to instead of looking the name up (an allowlisted address or the checked
    address of the name; None: the name is allowed as such), and the ``entry`` of the
    allowlist that allowed it (None: no allowlist is configured)."""

    host: str
    port: int
    address: str | None = None
    entry: SyncHost | None = None


def describe(entry: SyncHost) -> str:
    """``mirror.example.org``, ``192.0.2.0/24 (port 873; rsync)``: an entry as the ticket
    names it."""
    limits = []
    if entry.ports:
        noun = "port" if len(entry.ports) == 1 else "ports"
        limits.append(f"{noun} {', '.join(map(str, entry.ports))}")
    if entry.protocols:
        limits.append(", ".join(entry.protocols))
    return entry.host + (f" ({'; '.join(limits)})" if limits else "")


def allowed_text(hosts: Sequence[SyncHost]) -> str:
    """The allowed hosts, for a refusal."""
    return "; ".join(describe(h) for h in hosts)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _network(entry: SyncHost) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The entry's network (an address is a network of one); None for a name."""
    try:
        return ipaddress.ip_network(entry.host)
    except ValueError:
        return None


def name_matches(pattern: str, host: str) -> bool:
    """Whether the name ``host`` is the entry's name, or below it for ``*.domain``."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _applies(entry: SyncHost, protocol: str, port: int) -> bool:
    return (not entry.ports or port in entry.ports) and (
        not entry.protocols or protocol in entry.protocols
    )


def _inside(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    found = _address(address.split("%", 1)[0])
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        found = found.ipv4_mapped
    return found is not None and found in network


def needs_lookup(protocol: str, host: str, port: int, hosts: Sequence[SyncHost]) -> bool:
    """Whether ``decide`` needs the addresses of ``host``: it is a name no entry names, and
    some entry is a network that would allow the protocol and port."""
    if not hosts or _address(host) is not None:
        return False
    applying = [h for h in hosts if _applies(h, protocol, port)]
    if any(_network(h) is None and name_matches(h.host, host) for h in applying):
        return False
    return any(_network(h) is not None for h in applying)


def decide(
    protocol: str,
    url: str,
    host: str,
    port: int,
    hosts: Sequence[SyncHost],
    addresses: Sequence[str] = (),
) -> Destination:
    """Where to connect for ``host``:``port`` by ``protocol``, or ``SyncUrlRefused`` naming the
    allowed hosts. ``addresses``: what the name resolved to (``needs_lookup``), in the
    resolver's order; the first inside an allowed network is the one connected to."""
    if not hosts:
        return Destination(host=host, port=port)
    literal = _address(host)
    applying = [h for h in hosts if _applies(h, protocol, port)]
    for entry in applying:
        network = _network(entry)
        if network is None:
            if literal is None and name_matches(entry.host, host):
                return Destination(host=host, port=port, entry=entry)
        elif literal is not None and _inside(host, network):
            return Destination(host=host, port=port, address=str(literal), entry=entry)
    if literal is None:
        for address in addresses:
            for entry in applying:
                network = _network(entry)
                if network is not None and _inside(address, network):
                    return Destination(host=host, port=port, address=address, entry=entry)
    where = f"{host} port {port}" if any(h.ports for h in hosts) else host
    how = (
        " (it is not named there, and none of the addresses its name resolves to is in an "
        "allowed network)"
        if addresses
        else ""
    )
    raise errors.SyncUrlRefused(
        url,
        f"{protocol} from {where} is not allowed{how}; the bridge syncs only from the hosts "
        f"its settings allow (sync_hosts): {allowed_text(hosts)}. Ask the repository's "
        "operators if your host should be one of them",
    )


def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (one look-up), in the resolver's order, without repeats.
    ``SyncError`` (transient) when the name does not resolve; the message names no server."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise errors.SyncError(
            f"the host name {errors.printable(host)} could not be resolved", transient=True
        ) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def check(
    protocol: str,
    url: str,
    host: str,
    port: int,
    hosts: Sequence[SyncHost],
    *,
    resolver: Resolver = resolve,
) -> Destination:
    """``decide``, looking ``host`` up first when it must be checked by address."""
    addresses = resolver(host, port) if needs_lookup(protocol, host, port, hosts) else ()
    return decide(protocol, url, host, port, hosts, addresses)


def options_for(options: records.SyncOptions, destination: Destination) -> records.SyncOptions:
    """``options`` with the credentials of the entry that allowed the host: each one the entry
    names replaces the global one, which stays only where the entry names none."""
    entry = destination.entry
    if entry is None:
        return options
    changes = {
        name: getattr(entry, name)
        for name in ("rsync_password_file", "sftp_user", "sftp_key_file", "https_ca_file")
        if getattr(entry, name) is not None
    }
    return dataclasses.replace(options, **changes) if changes else options
