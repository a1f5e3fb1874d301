"""The long-running commands and one-off reconciliation: ``rollout daemon``, ``serve``, ``run``
and ``reconcile``.

Each builds ``Settings`` and hands over to ``repo_daemon.daemon.assemble``; nothing here
schedules, serves or processes anything itself.
"""

from __future__ import annotations

import click

from bridge.intake import reconcile as reconciliation
from bridge.tracker.client import TrackerClient
from repo_daemon.cli import root
from repo_daemon.daemon import assemble

_host_option = click.option(
    "--host", help="Address the receiver listens on (default: ROLLOUT_LISTEN_HOST, else 127.0.0.1)."
)
_port_option = click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port the receiver listens on (default: ROLLOUT_LISTEN_PORT, else 8750).",
)
_reconcile_option = click.option(
    "--reconcile/--no-reconcile",
    "reconcile_changes",
    default=True,
    show_default=True,
    help="Look in RT's history for changes whose hook never came, at start and every "
    "ROLLOUT_RECONCILE_INTERVAL seconds. With several daemons, one reconciling is enough.",
)


@click.command("daemon")
@_reconcile_option
@click.pass_context
def daemon(ctx: click.Context, reconcile_changes: bool) -> None:
    """Run the repo daemon in the foreground: drain the queue, reconcile, comment refusals.

    Migrates the database first. Several daemons may share one PostgreSQL queue. SIGTERM or
    SIGINT: the job in hand is finished, nothing more is claimed, and the daemon exits 0.
    """
    settings = root.load_settings(ctx)
    assemble.run_daemon(settings, reconcile_changes=reconcile_changes)


@click.command("serve")
@_host_option
@_port_option
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run only the HTTP receiver of RT's hooks (until SIGTERM or SIGINT).

    Migrates the database first. Use it with one or more `rollout daemon` processes on the
    same database; `rollout run` does both in one process.
    """
    settings = root.load_settings(ctx, require_tracker=False, listen_host=host, listen_port=port)
    assemble.run_serve(settings)


@click.command("run")
@_host_option
@_port_option
@_reconcile_option
@click.pass_context
def run(ctx: click.Context, host: str | None, port: int | None, reconcile_changes: bool) -> None:
    """Run the receiver and the daemon in one process (the embedded default).

    The scheduler runs in the background, the receiver in the foreground; the database is
    migrated first. SIGTERM or SIGINT stops both: the receiver answers the requests in flight,
    the daemon finishes the job in hand and claims nothing more; then it exits 0.
    """
    settings = root.load_settings(ctx, listen_host=host, listen_port=port)
    assemble.run_all(settings, reconcile_changes=reconcile_changes)


@click.command("reconcile")
@click.option(
    "--since",
    type=click.IntRange(min=0),
    metavar="TXN",
    help="Backfill: queue every RolloutProgress change after RT transaction TXN (0 for all). "
    "Without it, start from the stored cursor (on the first run: from the newest change).",
)
@click.pass_context
def reconcile(ctx: click.Context, since: int | None) -> None:
    """Queue RolloutProgress changes in RT whose hook never reached the bridge, once.

    Asks RT for the changes on tickets of the release queue after the stored cursor and queues
    the missing ones as recovered. Changes queued already are not queued again.
    """
    settings = root.load_settings(ctx)
    with assemble.opened(settings) as jobs, TrackerClient(settings.tracker) as client:
        reconciler = reconciliation.Reconciler(jobs, client, settings.queue)
        for report in reconciler.run_until_done(since=since):
            click.echo(f"reconciliation: {report.summary()}")
            for job_id in report.queued:
                click.echo(f"  queued job {job_id}")
