"""``rollout metrics backfill``: the metrics' records of releases older than the bridge, rebuilt
from RT's ticket history (``repo_daemon.metrics.backfill``; docs/backfill.md).

A click command the ``rollout metrics`` group adds. It reads RT with the bridge's account and
writes only the bridge's database (never RT); it never migrates the database.
"""

from __future__ import annotations

import time

import click

from bridge import errors, secrets
from bridge.store import database
from bridge.tracker.client import TrackerClient
from repo_daemon.cli import root
from repo_daemon.daemon import assemble
from repo_daemon.metrics import backfill as backfilling


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render(report: backfilling.Report, seconds: float | None = None) -> list[str]:
    """The lines ``backfill`` prints for ``report``."""
    did = "would backfill" if report.dry_run else "backfilled"
    took = "" if seconds is None else f" in {seconds:.1f} s"
    lines = [
        f"{did} {_many(len(report.backfilled), 'release')} of "
        f"{_many(report.tickets, 'ticket')}{took}; {len(report.known)} known to the bridge left "
        f"alone, {len(report.skipped)} skipped"
    ]
    for skipped in report.skipped:
        lines.append(f"  skipped #{skipped.ticket_id}: {skipped.reason}")
    for ticket, note in report.notes:
        lines.append(f"  note #{ticket}: {note}")
    return lines


@click.command("backfill")
@click.option(
    "--dry-run", is_flag=True, help="Read RT and say what would be written; write nothing."
)
@click.option(
    "--ticket",
    type=click.IntRange(min=1),
    metavar="N",
    help="Only this ticket (when the bridge has no release for it).",
)
@click.pass_context
def backfill(ctx: click.Context, dry_run: bool, ticket: int | None) -> None:
    """Rebuild the metrics' records (stays in states, early-adopter acceptances, the
    StageRollout Report's time) of the queue's tickets the bridge has no release for, from
    RT's ticket history. Tickets the bridge knows are left alone, so running it again writes
    nothing; a ticket whose history cannot be read is skipped and listed (docs/backfill.md)."""
    settings = root.load_settings(ctx)
    jobs = assemble.open_queue(settings)
    ctx.call_on_close(jobs.engine.dispose)
    if not database.schema_is_current(jobs.engine):
        raise errors.BridgeError(
            f"the database {secrets.redact_url(settings.database())} has no current schema; "
            "run `rollout db upgrade` (or start the daemon)"
        )
    started = time.monotonic()
    with TrackerClient(settings.tracker) as client:
        report = backfilling.backfill(
            jobs.engine,
            client,
            queue=settings.queue,
            teams=settings.workflow.early_adopters,
            ticket=ticket,
            dry_run=dry_run,
        )
    for line in render(report, time.monotonic() - started):
        click.echo(line)
