"""``rollout release show TICKET [--json]``: a release's timeline from the event log (states
with time spent, every change with its numbered attempts, publications, the staged-rollout
slot, early adopters, what the ticket was told), as text or JSON.

A command of the ``release`` group (``repo_daemon.cli.release``). It only reads: it never
migrates the database (it says to run ``rollout db upgrade``) and never calls RT.
"""

from __future__ import annotations

import json

import click

from bridge.store import release_events
from repo_daemon.cli import queue as queue_cli
from repo_daemon.cli import release
from repo_daemon.history import render, timeline


@release.release_group.command("show")
@click.argument("ticket", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@click.pass_context
def release_show(ctx: click.Context, ticket: int, as_json: bool) -> None:
    """Show what happened to the release of TICKET, attempt by attempt, and why it is where
    it is: its states with the time spent in each, every change with each attempt (its
    cause, who asked, its actions and their durations, its error), what was published
    where, the staged-rollout slot, early adopters and what the ticket was told.

    Exit 1 when the bridge has no events for TICKET.
    """
    jobs = queue_cli.open_jobs(ctx)
    events = release_events.events_of(jobs.engine, ticket)
    found = timeline.build(ticket, events, now=jobs.clock())
    if as_json:
        click.echo(json.dumps(timeline.as_dict(found), indent=2))
        return
    click.echo(render.text(found))
