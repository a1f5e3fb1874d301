"""The nginx configuration in front of the receiver: its numbers are the receiver's settings,
unsafe values are refused, TLS takes both files, and docs/access.md shows what the
command prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.intake import connections
from bridge.settings import model as settings_model
from repo_daemon.serving import receiver_proxy
from tests.support import paths

DOC = (paths.ROOT / "docs" / "access.md").read_text()


def test_the_numbers_are_the_receivers_settings() -> None:
    receiver = settings_model.ReceiverSettings(
        port=9000,
        max_body_bytes=32768,
        limits=settings_model.IntakeLimits(
            header_timeout=2.5, body_timeout=7, max_header_bytes=4096, max_connections_per_client=9
        ),
    )
    text = receiver_proxy.render_receiver_proxy(receiver, listen="0.0.0.0:80")
    for line in (
        "server 127.0.0.1:9000;",
        "listen 0.0.0.0:80;",
        "client_header_timeout 3s;",
        "client_body_timeout 7s;",
        "large_client_header_buffers 2 2k;",
        "client_max_body_size 32768;",
        "limit_conn rollout_receiver_per_client 9;",
        "proxy_request_buffering on;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
    ):
        assert f"    {line}\n" in text, line
    assert "ssl" not in text
    assert "per_client 4;" in receiver_proxy.render_receiver_proxy(receiver, per_client=4)


def test_without_a_per_client_cap_nginx_still_has_one() -> None:
    receiver = settings_model.ReceiverSettings(
        limits=settings_model.IntakeLimits(max_connections_per_client=0)
    )
    assert "limit_conn rollout_receiver_per_client 100;" in (
        receiver_proxy.render_receiver_proxy(receiver)
    )


@pytest.mark.parametrize(
    ("host", "upstream"),
    [("0.0.0.0", "127.0.0.1:8750"), ("::", "[::1]:8750"), ("::1", "[::1]:8750"),  # noqa: S104
     ("10.0.0.5", "10.0.0.5:8750"), ("receiver.internal", "receiver.internal:8750")],
)  # fmt: skip
def test_the_upstream_is_where_the_receiver_listens(host: str, upstream: str) -> None:
    receiver = settings_model.ReceiverSettings(host=host)
    assert receiver_proxy.upstream_address(receiver) == upstream


def test_tls_takes_a_certificate_and_its_key() -> None:
    receiver = settings_model.ReceiverSettings()
    text = receiver_proxy.render_receiver_proxy(
        receiver, tls_certificate=Path("/etc/ssl/c.pem"), tls_key=Path("/etc/ssl/k.pem")
    )
    assert "listen 0.0.0.0:8443 ssl;" in text
    assert "ssl_certificate /etc/ssl/c.pem;" in text
    assert "ssl_certificate_key /etc/ssl/k.pem;" in text
    with pytest.raises(ValueError, match="both a TLS certificate and its key"):
        receiver_proxy.render_receiver_proxy(receiver, tls_certificate=Path("/etc/ssl/c.pem"))
    with pytest.raises(ValueError, match="must be absolute"):
        receiver_proxy.render_receiver_proxy(
            receiver, tls_certificate=Path("c.pem"), tls_key=Path("/k.pem")
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"listen": "80; include /etc/passwd"},
        {"server_name": "x; return 200"},
        {"tls_certificate": Path("/etc/ssl/a b.pem"), "tls_key": Path("/k.pem")},
    ],
)
def test_values_unsafe_in_nginx_conf_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not safe in a configuration file"):
        receiver_proxy.render_receiver_proxy(settings_model.ReceiverSettings(), **kwargs)  # type: ignore[arg-type]


def test_the_standalone_conf_wraps_the_proxy(tmp_path: Path) -> None:
    text = receiver_proxy.render_receiver_proxy_conf(
        settings_model.ReceiverSettings(), workdir=tmp_path, listen="127.0.0.1:8081", user="root"
    )
    assert text.startswith("# Rollout bridge: a standalone nginx in front of the hook receiver.\n")
    assert "user root;\n" in text and f"pid {tmp_path}/nginx.pid;" in text
    assert "    limit_conn_zone $binary_remote_addr zone=rollout_receiver_per_client:10m;" in text


def test_the_doc_shows_what_the_command_prints() -> None:
    shown = re.search(
        r"```nginx\n(# Rollout bridge: nginx in front of the hook receiver.*?)```", DOC, flags=re.S
    )
    assert shown is not None
    receiver = settings_model.ReceiverSettings(
        limits=settings_model.IntakeLimits(uncapped_clients=("127.0.0.1/32",))
    )
    assert shown.group(1) == receiver_proxy.render_receiver_proxy(
        receiver,
        server_name="hooks.example.org",
        tls_certificate=Path("/etc/ssl/rollout/hooks.pem"),
        tls_key=Path("/etc/ssl/rollout/hooks.key"),
    )


def test_the_docs_log_lines_are_the_receivers() -> None:
    block = re.search(r"logger `bridge.intake.connections`\):\n\n```\n(.*?)```", DOC, flags=re.S)
    assert block is not None
    kinds = {kind.value for kind in connections.Trouble}
    lines = block.group(1).splitlines()
    assert lines
    for line in lines:
        level, name, message = line.split(" ", 2)
        assert (level in ("INFO", "WARNING"), name) == (True, "bridge.intake.connections:")
        assert any(message.startswith(f"{kind}: ") for kind in kinds), message
