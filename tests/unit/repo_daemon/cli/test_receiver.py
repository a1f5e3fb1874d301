"""``rollout receiver nginx-conf``: prints the proxy configuration from the receiver's settings."""

from __future__ import annotations

import pytest

from repo_daemon import cli


def test_prints_the_proxy_configuration_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_LISTEN_PORT", "8760")
    monkeypatch.setenv("ROLLOUT_RECEIVER_HEADER_TIMEOUT", "3")
    assert cli.main(["receiver", "nginx-conf", "--listen", "0.0.0.0:443", "--per-client", "7"]) == 0
    text = capsys.readouterr().out
    assert "    server 127.0.0.1:8760;\n" in text
    assert "    listen 0.0.0.0:443;\n" in text
    assert "    client_header_timeout 3s;\n" in text
    assert "    limit_conn rollout_receiver_per_client 7;\n" in text


def test_a_certificate_without_its_key_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["receiver", "nginx-conf", "--tls-certificate", "/etc/ssl/c.pem"]) == 2
    assert "give both a TLS certificate and its key, or neither" in capsys.readouterr().err


def test_bad_receiver_settings_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_RECEIVER_MAX_HEADER_BYTES", "10")
    assert cli.main(["receiver", "nginx-conf"]) == 2
    assert "receiver_max_header_bytes: at least 1024" in capsys.readouterr().err
