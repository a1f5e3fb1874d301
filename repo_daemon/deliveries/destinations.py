"""Where a delivery may go: the endpoint URL's shape (``check_url``) and the addresses a
connection may be made to (``DestinationPolicy``): every globally routable unicast address,
and whatever the operator's allowlist of CIDRs contains.

Pure: no I/O (the caller resolves names and passes the addresses), no settings (the caller
passes the allowlist). It decides only; ``pinning`` enforces it at connect time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bridge import printable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "ROLLOUT_WEBHOOK_ALLOW_CIDRS"
"""The setting named in refusals: the CIDRs a delivery may reach although the policy refuses
them (e.g. ``127.0.0.0/8`` for a receiver on the same machine)."""

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))


@dataclass(frozen=True)
class DestinationPolicy:
    """Which addresses a delivery may connect to.

    Refused, unless a network of ``allow`` contains the address: unspecified, loopback,
    link-local (the cloud metadata address 169.254.169.254 among them), multicast, shared
    (CGNAT, 100.64/10), private (10/8, 172.16/12, 192.168/16, fc00::/7), site-local, reserved,
    and anything else not globally routable. IPv4-mapped (``::ffff:a.b.c.d``), NAT64
    (``64:ff9b::/96``) and 6to4 (``2002::/16``) IPv6 addresses are judged by the IPv4 address
    inside them, and allowed when the allowlist contains either form.
    """

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> DestinationPolicy:
        """A policy allowing ``cidrs`` (``ValueError`` naming the entry that is no CIDR;
        host bits are allowed, ``127.0.0.1/8`` is ``127.0.0.0/8``)."""
        networks = []
        for text in cidrs:
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{printable.escape(text)!r} is not a CIDR") from None
        return cls(tuple(networks))

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why ``address`` is refused (``"loopback"``, ``"private"``, …), or ``None`` when a
        delivery may connect to it. ``ValueError`` when it is no IP address."""
        ip = ipaddress.ip_address(address.split("%")[0]) if isinstance(address, str) else address
        judged = _inner(ip)
        for candidate in (ip, judged):
            if any(candidate.version == n.version and candidate in n for n in self.allow):
                return None
        reason = _category(judged)
        if reason is not None and judged != ip:
            return f"{reason}: {judged}"
        return reason

    def refused(self, host: str, addresses: Sequence[str]) -> str | None:
        """The refusal of the first refused address ``host`` resolved to, as one line for an
        error (address, why, the host, and how to allow it); ``None`` when all may be reached.
        A name with any refused address is refused whole."""
        found = self.first_refused(addresses)
        if found is None:
            return None
        address, reason = found
        cidr = address + ("/128" if ":" in address else "/32")
        name = "" if _same(address, host) else f" for {printable.escape(host)}"
        return f"{address} ({reason}){name}; allow it with {ALLOW_SETTING} (e.g. {cidr})"

    def first_refused(self, addresses: Sequence[str]) -> tuple[str, str] | None:
        """``(address, why)`` for the first refused address (its zone dropped), or ``None``."""
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                return address.split("%")[0], reason
        return None


def _inner(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 address stands for; else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def _same(address: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(address) == ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False


def _category(ip: IPAddress) -> str | None:
    metadata = ", cloud metadata" if ip in _METADATA else ""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local" + metadata
    if ip.is_multicast:  # before is_global: Python counts global multicast as global
        return "multicast"
    if ip in _CGNAT:
        return "shared address space (CGNAT)"
    if any(ip.version == n.version and ip in n for n in _PRIVATE):
        return "private" + metadata
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def check_url(url: str) -> str | None:
    """What makes ``url`` unusable as an endpoint (one line, starting "refused destination:"),
    or ``None``: only ``http`` and ``https`` URLs with a host, a valid port and no credentials.
    The message names the host at most, never the path or query (where tokens live)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        return "refused destination: the endpoint is not a valid URL (or has an invalid port)"
    host = printable.escape(parts.hostname or "")
    if parts.scheme.lower() not in ("http", "https"):
        scheme = printable.escape(parts.scheme)[:20] or "none"
        return f"refused destination: only http and https URLs are delivered to (scheme: {scheme})"
    if not host:
        return "refused destination: the endpoint's URL has no host"
    if parts.username is not None or parts.password is not None:
        return (
            f"refused destination: the URL for {host} carries credentials (user:password@); "
            "deliveries are authenticated by their signature, remove them from the URL"
        )
    return None
