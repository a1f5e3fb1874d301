"""``rollout events verify|rebuild|prune``: the event log's checks and retention, added to the
``rollout events`` group (``repo_daemon.cli.events``).

``verify`` walks the hash chain (``bridge.store.chain_check``), ``rebuild --check`` compares
the stored tables with what the log rebuilds (``bridge.store.rebuild``), ``prune`` deletes old
events by age and kind (``bridge.store.retention``), exported first. Exit status 1 names what
is wrong. It never migrates the database, and only ``prune`` changes anything.
"""

from __future__ import annotations

import getpass
import os
from datetime import timedelta
from pathlib import Path

import click

from bridge import errors, secrets
from bridge.settings import model as settings_model
from bridge.store import chain_check, database, rebuild, retention
from bridge.store import events as eventlog
from bridge.store import queue as job_queue
from repo_daemon.cli import root
from repo_daemon.cli.events import events_group
from repo_daemon.daemon import assemble


def _open_log(ctx: click.Context) -> tuple[settings_model.Settings, job_queue.Queue]:
    """The settings and the event log (with the queue), never migrated: says so when it
    should be."""
    settings = root.load_settings(ctx, require_tracker=False)
    log = assemble.open_queue(settings)
    ctx.call_on_close(log.engine.dispose)
    if not database.schema_is_current(log.engine):
        raise errors.BridgeError(
            f"the database {secrets.redact_url(settings.database())} has no current schema; "
            "run `rollout db upgrade` (or start the daemon)"
        )
    return settings, log


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _anchor(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    try:
        return chain_check.Anchor.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@events_group.command("verify")
@click.option(
    "--anchor",
    callback=_anchor,
    metavar="ID:HASH",
    help="A head printed by an earlier verify and kept elsewhere: it must still be in the log.",
)
@click.pass_context
def events_verify(ctx: click.Context, anchor: chain_check.Anchor | None) -> None:
    """Check the event log's hash chain: each event's hash, each link to the event before it,
    and each gap retention made.

    Prints the head (newest id and hash): keep it outside this database and pass it back as
    --anchor, since a chain cannot show that every event after some point was rewritten.
    Exit status 1 names the first broken link: edited, deleted or inserted.
    """
    report = chain_check.verify(_open_log(ctx)[1].engine, anchor=anchor)
    if report.broken is not None:
        click.echo(f"chain broken at {report.broken.describe()}")
        click.echo(
            f"{report.checked} events before it verified, up to {report.head_id}:{report.head_hash}"
        )
        ctx.exit(1)
    pruned = ""
    if report.pruned:
        many = "s" if report.pruned_records != 1 else ""
        pruned = (
            f", {report.pruned} deleted by retention (recorded by "
            f"{report.pruned_records} events_pruned event{many})"
        )
    checked = "" if anchor is None else f"; anchor {anchor.id} found"
    click.echo(f"chain verified: {report.checked} events{pruned}{checked}")
    click.echo(f"head: {report.head_id}:{report.head_hash}")


@events_group.command("rebuild")
@click.option(
    "--check",
    "compare",
    is_flag=True,
    help="Compare what the log rebuilds with the stored tables (the only mode).",
)
@click.pass_context
def events_rebuild(ctx: click.Context, compare: bool) -> None:
    """Rebuild each release's state, stays in states, areas and staged-rollout place, and each
    job's status and attempts, from the event log alone, and compare them with the stored
    tables. Exit status 1 lists each difference."""
    if not compare:
        raise click.UsageError("rebuild never writes the tables back; use --check to compare")
    report = rebuild.check(_open_log(ctx)[1].engine)
    counts = (
        f"{_many(report.releases, 'release')}, {_many(report.jobs, 'job')} and "
        f"{_many(report.slots, 'staged-rollout place')} checked against "
        f"{_many(report.events, 'event')}"
    )
    for ticket in report.not_checked:
        click.echo(f"release {ticket}: not checked (history pruned)")
    if report.differences:
        click.echo(f"{_many(len(report.differences), 'difference')} ({counts}):")
        for found in report.differences:
            click.echo(f"  {found.describe()}")
        ctx.exit(1)
    click.echo(f"no difference: {counts}")


@events_group.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0, min_open=True),
    required=True,
    metavar="DAYS",
    help="Delete events older than this many days.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(
        [k.value for k in eventlog.EventKind if k is not eventlog.EventKind.EVENTS_PRUNED]
    ),
    help="Only events of this kind; repeat for several (default: every kind).",
)
@click.option("--dry-run", is_flag=True, help="Say how many would be deleted; delete nothing.")
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where they are exported first (default: ROLLOUT_EVENT_EXPORT_DIR, "
    "<data dir>/event-exports).",
)
@click.option("--by", "actor", default=None, help="Who prunes, for the log (default: your login).")
@click.pass_context
def events_prune(
    ctx: click.Context,
    days: float,
    kinds: tuple[str, ...],
    dry_run: bool,
    export_dir: Path | None,
    actor: str | None,
) -> None:
    """Delete events older than DAYS (of the kinds given), never one another part still
    needs: a refusal still to be commented, a release's newest event, the events an open
    release or job is rebuilt from, retention's own records. They are exported (gzipped JSON
    Lines) before they are deleted, and an events_pruned event keeps the chain checkable."""
    settings, log = _open_log(ctx)
    rule = retention.Rule(
        kinds=tuple(eventlog.EventKind(k) for k in kinds), older_than=timedelta(days=days)
    )
    what = f"events older than {days:g} days" + (f" ({', '.join(kinds)})" if kinds else "")
    if dry_run:
        outcome = retention.prune(log, [rule], dry_run=True)
        click.echo(
            f"would delete {outcome.deleted} {what}; {outcome.held} held (still needed); "
            "nothing deleted (dry run)"
        )
        return
    directory = export_dir or settings.daemon.event_export_dir
    login = actor or os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        outcome = retention.prune(log, [rule], export_dir=directory, actor=login)
    except OSError as exc:
        raise errors.BridgeError(
            f"cannot export events to {directory} ({exc.strerror or exc}); events not "
            "exported were not deleted"
        ) from exc
    click.echo(f"deleted {outcome.deleted} {what}; {outcome.held} held (still needed)")
    for path in outcome.exports:
        click.echo(f"exported to {path}")
