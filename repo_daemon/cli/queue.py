"""``rollout queue list|show|retry|stats``: the operator's view of the queue of ticket changes
(RolloutProgress moves and the other fields the bridge follows), as tables or JSON.

It never migrates the database (it says to run ``rollout db upgrade`` instead), and changes
nothing but a retried job.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Sequence
from typing import Any

import click

from bridge import errors, records, secrets
from bridge.store import database
from bridge.store import queue as job_queue
from repo_daemon.cli import root
from repo_daemon.daemon import assemble


@click.group("queue")
def queue_group() -> None:
    """Inspect the queue of ticket changes and retry failed or dead jobs."""


def open_jobs(ctx: click.Context) -> job_queue.Queue:
    """The queue, for the operator commands: never migrates, says so when it should."""
    settings = root.load_settings(ctx, require_tracker=False)
    jobs = assemble.open_queue(settings)
    ctx.call_on_close(jobs.engine.dispose)
    if not database.schema_is_current(jobs.engine):
        raise errors.BridgeError(
            f"the database {secrets.redact_url(settings.database())} has no current schema; "
            "run `rollout db upgrade` (or start the daemon)"
        )
    return jobs


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _change(job: records.Job) -> str:
    return job.request.describe()


def _job_json(job: records.Job) -> dict[str, Any]:
    r = job.request
    return {
        "id": job.id,
        "ticket_id": r.ticket_id,
        "transaction_id": r.transaction_id,
        "field": r.field.label,
        "previous": r.before,
        "current": r.after,
        "emergency": r.emergency,
        "actor": r.actor,
        "source": r.source.label,
        "status": job.status.label,
        "attempts": job.attempts,
        "scheduled_at": _iso(job.scheduled_at),
        "created_at": _iso(job.created_at),
        "locked_by": job.locked_by,
        "locked_until": _iso(job.locked_until),
        "finished_at": _iso(job.finished_at),
        "last_error": job.last_error,
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _one_line(text: str | None, limit: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@queue_group.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.label for s in records.JobStatus]),
    help="Only jobs in this state; repeat for several (default: all).",
)
@click.option("--ticket", type=int, help="Only the jobs of this ticket.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N jobs."
)
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@click.pass_context
def queue_list(
    ctx: click.Context, states: tuple[str, ...], ticket: int | None, limit: int, as_json: bool
) -> None:
    """List jobs, newest first, with their state, tries and last error."""
    jobs = open_jobs(ctx).list_jobs(
        statuses=[records.JobStatus.parse(s) for s in states], ticket_id=ticket, limit=limit
    )
    if as_json:
        click.echo(json.dumps([_job_json(j) for j in jobs], indent=2))
        return
    if not jobs:
        click.echo("no jobs")
        return
    header = ["ID", "TICKET", "TXN", "CHANGE", "STATUS", "TRIES", "SOURCE", "SCHEDULED (UTC)",
              "LAST ERROR"]  # fmt: skip
    rows = [
        [
            str(j.id),
            str(j.ticket_id),
            str(j.request.transaction_id),
            _change(j),
            j.status.label,
            str(j.attempts),
            j.request.source.label,
            _time(j.scheduled_at),
            _one_line(j.last_error),
        ]
        for j in jobs
    ]
    click.echo(_table(header, rows, right={0, 1, 2, 5}))


@queue_group.command("show")
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the job and its events as JSON.")
@click.pass_context
def queue_show(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Show one job in full, with its events (oldest first)."""
    jobs = open_jobs(ctx)
    job = jobs.get(job_id)
    if job is None:
        raise job_queue.JobNotFound(f"there is no job {job_id}")
    events = list(reversed(jobs.events(job_id=job_id, limit=10_000)))
    if as_json:
        listed = [
            {"id": e.id, "at": _iso(e.at), "kind": e.kind.value, "detail": e.detail} for e in events
        ]
        click.echo(json.dumps({**_job_json(job), "events": listed}, indent=2))
        return
    r = job.request
    lines = [
        f"job {job.id}: ticket {r.ticket_id}, {_change(job)}",
        f"  status:        {job.status.label} ({job.status.description})",
        f"  attempts:      {job.attempts}",
        f"  transaction:   {r.transaction_id} by {r.actor or '-'}, {r.source.label} "
        f"({r.source.description})",
        f"  emergency:     {'yes' if r.emergency else 'no'}",
        f"  created:       {_time(job.created_at)} UTC",
        f"  scheduled:     {_time(job.scheduled_at)} UTC",
        f"  locked by:     {job.locked_by or '-'}",
        f"  locked until:  {_time(job.locked_until)}" + (" UTC" if job.locked_until else ""),
        f"  finished:      {_time(job.finished_at)}" + (" UTC" if job.finished_at else ""),
        f"  last error:    {job.last_error or '-'}",
        "events:" if events else "events: none",
    ]
    lines += [f"  {_time(e.at)}  {e.kind.value}  {e.detail}".rstrip() for e in events]
    click.echo("\n".join(lines))


@queue_group.command("retry")
@click.argument("job_id", type=int)
@click.option(
    "--by",
    "actor",
    default=None,
    help="Who re-runs it, for the event log (default: the login running the command).",
)
@click.pass_context
def queue_retry(ctx: click.Context, job_id: int, actor: str | None) -> None:
    """Queue a failed or dead job again, now, with a fresh count of tries.

    Fix what its last error names first (`rollout queue show ID`). Jobs in any other state
    cannot be retried (exit status 1). The event log records it as a manual re-run by you;
    the attempts before stay in the release's timeline (`rollout release show TICKET`).
    """
    jobs = open_jobs(ctx)
    before = jobs.get(job_id)
    job = jobs.retry(job_id, actor=actor or _login())
    was = before.status.label if before is not None else "?"
    click.echo(f"job {job.id} (ticket {job.ticket_id}, {_change(job)}) queued again; it was {was}")


def _login() -> str:
    """The login running the command (``SUDO_USER`` first: the person behind sudo)."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


@queue_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def queue_stats(ctx: click.Context, as_json: bool) -> None:
    """Count jobs per state, and how many are due and how long the oldest has waited."""
    stats = open_jobs(ctx).stats()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    rows = [[s.label, str(stats[s.label])] for s in records.JobStatus]
    rows.append(["due now", str(stats["due"])])
    rows.append(["oldest due", f"{stats['oldest_due_seconds']:.0f} s"])
    click.echo(_table(["STATE", "JOBS"], rows, right={1}))
