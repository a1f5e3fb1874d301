"""``rollout receiver``: what goes around the hook receiver; for now the nginx configuration
that fronts it on untrusted networks (``rollout receiver nginx-conf``).

It only parses options and prints: the renderer is ``repo_daemon.serving.receiver_proxy``'s, the
receiver itself is ``rollout serve`` / ``rollout run`` (``repo_daemon.cli.daemon``).
"""

from __future__ import annotations

from pathlib import Path

import click

from repo_daemon.cli import root

_pem = click.Path(dir_okay=False, path_type=Path)


@click.group("receiver")
def receiver_group() -> None:
    """The receiver of RT's hooks: configuration around it."""


@receiver_group.command("nginx-conf")
@click.option(
    "--listen",
    default="0.0.0.0:8443",
    show_default=True,
    help="nginx listen value (where RT and the outside reach the receiver).",
)
@click.option("--server-name", default="_", show_default=True, help="nginx server_name.")
@click.option(
    "--per-client",
    type=click.IntRange(min=1),
    help="Requests one client address may have in nginx at once (default: "
    "ROLLOUT_RECEIVER_MAX_CONNECTIONS_PER_CLIENT, else 100).",
)
@click.option("--tls-certificate", type=_pem, help="PEM certificate (chain): listen with TLS.")
@click.option("--tls-key", type=_pem, help="PEM private key of --tls-certificate.")
@click.pass_context
def receiver_nginx_conf(
    ctx: click.Context,
    listen: str,
    server_name: str,
    per_client: int | None,
    tls_certificate: Path | None,
    tls_key: Path | None,
) -> None:
    """Print nginx configuration (for its http { } block) that fronts the receiver: slow and
    idle clients, large headers and bodies cut, connections capped per client address, only
    POST /hooks/rt and GET /healthz passed on to ROLLOUT_LISTEN_HOST:ROLLOUT_LISTEN_PORT.
    Timeouts and sizes come from the receiver's settings (see docs/access.md)."""
    from repo_daemon.serving import receiver_proxy

    settings = root.load_settings(ctx, require_tracker=False)
    try:
        text = receiver_proxy.render_receiver_proxy(
            settings.receiver,
            listen=listen,
            server_name=server_name,
            per_client=per_client,
            tls_certificate=tls_certificate.absolute() if tls_certificate else None,
            tls_key=tls_key.absolute() if tls_key else None,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(text, nl=False)
