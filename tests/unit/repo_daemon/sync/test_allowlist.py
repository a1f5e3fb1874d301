"""The allowlist of sync hosts: which hosts are allowed (by name, address or network), which
address is connected to, which credentials are offered, and what a refusal says. The
resolver is a stand-in: the unit tier connects nowhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bridge.settings.model import SyncHost
from repo_daemon.sync import allowlist, records, urls
from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync

PROVIDER = SyncHost(host="mirror.example.org")
DOMAIN = SyncHost(host="*.provider.example")
NETWORK = SyncHost(host="10.20.0.0/16", ports=(873,), protocols=("rsync",))
LOOPBACK = SyncHost(host="127.0.0.1")
HOSTS = (PROVIDER, DOMAIN, NETWORK, LOOPBACK)


class Resolver:
    """Answers look-ups from a table and counts them."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.table:
            raise sync_errors.SyncError(
                f"the host name {host} could not be resolved", transient=True
            )
        return self.table[host]


def _check(url: str, hosts: Sequence[SyncHost] = HOSTS, resolver: Resolver | None = None,
           protocol: str | None = None) -> allowlist.Destination:  # fmt: skip
    options = records.SyncOptions(sync_hosts=tuple(hosts))
    _name, destination, _options = sync.check_source(
        protocol, url, options, resolver=resolver or Resolver({})
    )
    return destination


@pytest.mark.parametrize(
    ("url", "entry"),
    [
        ("rsync://mirror.example.org/rel/1/", PROVIDER),
        ("rsync://MIRROR.Example.ORG:8873/rel/1/", PROVIDER),  # any port: the entry names none
        ("mirror.example.org::rel/1/", PROVIDER),
        ("rsync://a.provider.example/rel/", DOMAIN),
        ("rsync://deep.down.provider.example/rel/", DOMAIN),
        ("rsync://127.0.0.1:8730/rel/", LOOPBACK),
    ],
)
def test_hosts_named_by_the_allowlist_are_allowed_without_a_look_up(
    url: str, entry: SyncHost
) -> None:
    resolver = Resolver({})
    destination = _check(url, resolver=resolver)
    assert destination.entry == entry
    assert resolver.asked == []


def test_a_name_is_connected_to_by_name_and_a_listed_address_as_itself() -> None:
    assert _check("rsync://mirror.example.org/rel/").address is None
    assert _check("rsync://10.20.3.4/rel/").address == "10.20.3.4"
    assert _check("rsync://127.0.0.1/rel/").address == "127.0.0.1"


@pytest.mark.parametrize(
    "url",
    [
        "rsync://provider.example/rel/",  # *.provider.example is only what is below it
        "rsync://evilprovider.example/rel/",
        "rsync://mirror.example.org.evil.test/rel/",
        "rsync://127.0.0.2/rel/",
        "rsync://10.21.0.1/rel/",
        "rsync://10.20.0.1:8873/rel/",  # the network allows port 873 only
        "https://10.20.0.1:873/rel",  # ... and rsync only
        "sftp://u@10.20.0.1:873/rel",
    ],
)
def test_other_hosts_ports_and_protocols_are_refused_naming_the_allowed_hosts(url: str) -> None:
    outside = Resolver({url.split("/")[2]: ["192.0.2.66"]})  # names: somewhere else
    with pytest.raises(sync_errors.SyncUrlRefused) as caught:
        _check(url, resolver=outside, protocol=url.split(":")[0])
    message = str(caught.value)
    assert not caught.value.transient
    assert (
        "the bridge syncs only from the hosts its settings allow (sync_hosts): "
        "mirror.example.org; *.provider.example; 10.20.0.0/16 (port 873; rsync); 127.0.0.1"
    ) in message


def test_a_name_not_listed_is_checked_by_the_addresses_it_resolves_to() -> None:
    resolver = Resolver({"files.partner.test": ["192.0.2.1", "10.20.9.9", "10.20.1.1"]})
    destination = _check("rsync://files.partner.test/rel/", resolver=resolver)
    # looked up once; the first address inside an allowed network is the one connected to
    assert resolver.asked == [("files.partner.test", 873)]
    assert (destination.host, destination.address, destination.entry) == (
        "files.partner.test", "10.20.9.9", NETWORK,
    )  # fmt: skip


def test_a_name_resolving_outside_the_networks_is_refused_without_showing_its_addresses() -> None:
    resolver = Resolver({"intranet.test": ["10.99.0.5", "fd00::5"]})
    with pytest.raises(sync_errors.SyncUrlRefused) as caught:
        _check("rsync://intranet.test/rel/", resolver=resolver)
    message = str(caught.value)
    assert "rsync from intranet.test port 873 is not allowed (it is not named there" in message
    assert "10.99.0.5" not in message and "fd00::5" not in message


def test_a_name_is_not_looked_up_when_no_network_could_allow_it() -> None:
    resolver = Resolver({"elsewhere.test": ["10.20.0.1"]})
    with pytest.raises(sync_errors.SyncUrlRefused):
        _check("https://elsewhere.test/rel", resolver=resolver)  # NETWORK is rsync only
    assert resolver.asked == []


def test_a_name_that_does_not_resolve_is_a_transient_failure() -> None:
    with pytest.raises(sync_errors.SyncError, match="could not be resolved") as caught:
        _check("rsync://gone.test/rel/")
    assert caught.value.transient


def test_ipv6_and_mapped_addresses() -> None:
    hosts = (SyncHost(host="2001:db8::/32"), SyncHost(host="192.0.2.0/24"))
    assert _check("rsync://[2001:db8::7]/rel/", hosts).address == "2001:db8::7"
    resolver = Resolver({"mapped.test": ["::ffff:192.0.2.9"]})
    assert _check("rsync://mapped.test/rel/", hosts, resolver).address == "::ffff:192.0.2.9"


def test_without_an_allowlist_every_host_is_allowed_as_before() -> None:
    destination = _check("rsync://anywhere.test:1234/rel/", hosts=())
    assert (destination.host, destination.port, destination.address, destination.entry) == (
        "anywhere.test", 1234, None, None,
    )  # fmt: skip


def test_credentials_are_those_of_the_entry_that_allowed_the_host(tmp_path: Path) -> None:
    own, default = tmp_path / "own.pass", tmp_path / "global.pass"
    key, ca = tmp_path / "own.key", tmp_path / "own-ca.pem"
    partner = SyncHost(host="partner.test", rsync_password_file=own, sftp_user="rel",
                       sftp_key_file=key, https_ca_file=ca)  # fmt: skip
    plain = SyncHost(host="plain.test")
    options = records.SyncOptions(
        rsync_password_file=default, sftp_user="bridge", sync_hosts=(partner, plain)
    )
    _, _, theirs = sync.check_source("rsync", "rsync://partner.test/rel/", options)
    assert (theirs.rsync_password_file, theirs.sftp_user, theirs.sftp_key_file,
            theirs.https_ca_file) == (own, "rel", key, ca)  # fmt: skip
    # An entry that names none of its own gets the global ones (the settings of before).
    _, _, others = sync.check_source("rsync", "rsync://plain.test/rel/", options)
    assert (others.rsync_password_file, others.sftp_user) == (default, "bridge")


def test_the_sftp_user_of_the_host_completes_the_url() -> None:
    hosts = (SyncHost(host="sftp.partner.test", sftp_user="release"),)
    options = records.SyncOptions(sync_hosts=hosts)
    sync.check_source("sftp", "sftp://sftp.partner.test/srv/rel", options)
    with pytest.raises(sync_errors.SyncUrlRefused, match="no default SFTP user"):
        sync.check_source("sftp", "sftp://other.test/srv/rel", records.SyncOptions())


def test_rsync_is_pointed_at_the_checked_address() -> None:
    assert urls.rsync_source_via("rsync://u@files.test:8873/rel/a", "10.20.9.9") == (
        "rsync://u@10.20.9.9:8873/rel/a/"
    )
    assert urls.rsync_source_via("files.test::rel/a/", "2001:db8::7") == (
        "rsync://[2001:db8::7]:873/rel/a/"
    )


@pytest.mark.parametrize(
    ("protocol", "url", "expected"),
    [
        ("rsync", "rsync://Files.Test/rel/", ("files.test", 873)),
        ("rsync", "u@files.test::rel", ("files.test", 873)),
        ("rsync", "rsync://[::1]:99/rel", ("::1", 99)),
        ("sftp", "sftp://u@files.test/srv", ("files.test", 22)),
        ("https", "https://files.test./rel", ("files.test", 443)),
        ("https", "https://files.test:8443/rel", ("files.test", 8443)),
    ],
)
def test_the_endpoint_of_each_protocol(protocol: str, url: str, expected: tuple[str, int]) -> None:
    assert urls.endpoint(protocol, url) == expected


def test_the_refusal_docs_sync_md_shows_is_the_real_one() -> None:
    from tests.support import paths

    doc = (paths.ROOT / "docs" / "sync.md").read_text()
    shown = doc.split("## Allowed hosts", 1)[1].split("```\n", 2)[1].strip()
    hosts = (
        SyncHost(host="mirror.example.org"),
        SyncHost(host="192.0.2.0/24", ports=(873,), protocols=("rsync",)),
    )
    with pytest.raises(sync_errors.SyncUrlRefused) as caught:
        _check("rsync://10.1.2.3:8873/rel/", hosts)
    # as the workflow's failure comment words it (tests/integration/test_sync_allowlist_rt.py)
    assert shown == (
        f"Processing failed: Submitted → Unverified failed: {caught.value}. Fix the cause, then "
        "set RolloutProgress to Unverified to retry, or to Rejected."
    )
