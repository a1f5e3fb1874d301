"""The allowlist of sync hosts as the settings give it: tables, a list, the environment; every
problem named; the documented example loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import errors
from bridge.settings import load as settings_load
from bridge.settings import model as settings_model
from bridge.settings import sync_hosts
from bridge.settings.model import SyncHost
from tests.support import paths


def _load(
    env: dict[str, str], text: str | None = None, tmp_path: Path | None = None
) -> settings_model.Settings:
    config = None
    if text is not None:
        assert tmp_path is not None
        config = tmp_path / "bridge.toml"
        config.write_text(text)
    return settings_load.load_settings(env, config_file=config, require_tracker=False)


def test_no_sync_hosts_means_any_host() -> None:
    assert _load({}).repository.sync_hosts == ()


def test_the_environment_lists_names_addresses_and_networks() -> None:
    loaded = _load({"ROLLOUT_SYNC_HOSTS": " Mirror.Example.ORG. , *.provider.example,192.0.2.0/24,"
                    "[2001:DB8::1],127.0.0.1"})  # fmt: skip
    assert [h.host for h in loaded.repository.sync_hosts] == [
        "mirror.example.org", "*.provider.example", "192.0.2.0/24", "2001:db8::1", "127.0.0.1",
    ]  # fmt: skip


def test_tables_carry_ports_protocols_and_credentials(tmp_path: Path) -> None:
    (tmp_path / "pass").write_text("secret\n")
    text = f"""
[[sync_hosts]]
host = "files.partner.test"
ports = [873, 8873]
protocols = ["RSYNC", "https"]
rsync_password_file = "{tmp_path / "pass"}"
sftp_user = "release"
"""
    loaded = _load({}, text, tmp_path)
    assert loaded.repository.sync_hosts == (
        SyncHost(host="files.partner.test", ports=(873, 8873), protocols=("rsync", "https"),
                 rsync_password_file=tmp_path / "pass", sftp_user="release"),
    )  # fmt: skip


def test_every_problem_is_named(tmp_path: Path) -> None:
    odd = (
        '{ host = "ok.test", ports = [0, "x"], protocols = ["ftp"], colour = "red", '
        'sftp_key_file = "/no/such/key", sftp_user = "-x" }'
    )
    text = f"""
sync_hosts = [
  "10.0.0.1/8",
  "bad host",
  {odd},
  {{ ports = [22] }},
  "ok.test",
  "ok.test",
]
"""
    with pytest.raises(errors.ConfigError) as caught:
        _load({}, text, tmp_path)
    problems = "\n".join(caught.value.problems)
    assert "'10.0.0.1/8' is not a host name" in problems  # host bits set
    assert "'bad host' is not a host name" in problems
    assert "unknown key colour" in problems
    assert "ports: 0 is not from 1 to 65535" in problems
    assert "ports: 'x' is not a port number" in problems
    assert "protocols: 'ftp' not among rsync, sftp, https" in problems
    assert "sftp_key_file: /no/such/key is not a readable file" in problems
    assert "sftp_user '-x' is not a user name" in problems
    assert "host '': host is not set" in problems
    assert "ok.test is listed more than once" in problems


@pytest.mark.parametrize("text", ["127.1", "0x7f.0.0.1", "-a.test", "a..test", "*", "*.*.test"])
def test_odd_hosts_are_refused(text: str) -> None:
    assert sync_hosts.normalise_host(text) is None


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = (paths.ROOT / "docs" / "configuration.md").read_text()
    section = doc.split("## Sync hosts", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    loaded = _load({}, example, tmp_path)
    assert loaded.repository.sync_hosts == (
        SyncHost(host="mirror.example.org", ports=(873,), protocols=("rsync",)),
        SyncHost(host="*.provider.example"),
        SyncHost(host="192.0.2.0/24", sftp_user="release"),
    )
