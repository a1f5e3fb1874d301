"""URL and protocol checks (pure): accepted forms and what is refused."""

from __future__ import annotations

import pytest

from repo_daemon.sync import errors, urls


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("rsync://mirror.example.org/releases/arc/7.1.2/", None),
        ("rsync://mirror.example.org/releases/arc/7.1.2", "rsync://mirror.example.org/releases/arc/7.1.2/"),
        ("rsync://127.0.0.1:8730/rel", "rsync://127.0.0.1:8730/rel/"),
        ("rsync://mirror@mirror.example.org/rel/x", "rsync://mirror@mirror.example.org/rel/x/"),
        ("rsync://[::1]:873/rel/x/", None),
        ("mirror.example.org::releases/arc-ce", "mirror.example.org::releases/arc-ce/"),
        ("user@mirror.example.org::rel/a_b/c+d~e=f,g@h/", None),
    ],
)  # fmt: skip
def test_rsync_urls_accepted(url: str, source: str | None) -> None:
    assert urls.check_rsync_url(url) == (source or url)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("sftp://rel@sftp.example.org/srv/rel/a", ("rel", "sftp.example.org", 22, "/srv/rel/a")),
        ("sftp://rel@127.0.0.1:2222/srv/rel/", ("rel", "127.0.0.1", 2222, "/srv/rel")),
        ("sftp://sftp.example.org/srv", ("mirror", "sftp.example.org", 22, "/srv")),
    ],
)  # fmt: skip
def test_sftp_urls_accepted(url: str, target: tuple[str, str, int, str]) -> None:
    parsed = urls.parse_sftp_url(url, default_user="mirror")
    assert (parsed.user, parsed.host, parsed.port, parsed.path) == target


@pytest.mark.parametrize(
    "url",
    [
        "sftp://user:secret@host/srv",
        "sftp://host/srv",  # no user and no default
        "sftp://user@host",
        "sftp://user@host/",
        "sftp://user@host/srv/../etc",
        "sftp://user@host/srv/%2e%2e/etc",
        "sftp://user@host/srv?x=1",
        "sftp://user@host:0/srv",
        "sftp://user@host:70000/srv",
        "sftp://user@host/srv; rm",
        "sftp://-oProxyCommand=id/srv",
        "sftp://user@host/srv/$(id)",
        "rsync://host/mod",
        "-sftp://user@host/srv",
    ],
)
def test_sftp_urls_refused(url: str) -> None:
    with pytest.raises(errors.SyncUrlRefused):
        urls.parse_sftp_url(url)


@pytest.mark.parametrize(
    ("protocol", "name"), [(None, "rsync"), ("", "rsync"), (" RSYNC ", "rsync"), ("SFTP", "sftp"),
                           ("https", "https")],
)  # fmt: skip
def test_check_protocol(protocol: str | None, name: str) -> None:
    assert urls.check_protocol(protocol, "x") == name


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(errors.SyncUrlRefused, match="Sync-Protocol 'ftp'"):
        urls.check_protocol("ftp", "ftp://x/")
    with pytest.raises(errors.SyncUrlRefused):
        urls.check_protocol("http", "http://x/")
