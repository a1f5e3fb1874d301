"""``rollout db``: the bridge's database schema (create or upgrade it).

It never touches the rows: the queue's commands are ``repo_daemon.cli.queue``.
"""

from __future__ import annotations

import click

from bridge import secrets
from bridge.store import database
from repo_daemon.cli import root
from repo_daemon.daemon import assemble


@click.group("db")
def db() -> None:
    """Look after the bridge's database (the queue, the event log, the bridge's state)."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create the database schema, or bring it to the newest version. Safe to run again.

    `rollout daemon`, `serve` and `run` do this themselves at start.
    """
    settings = root.load_settings(ctx, require_tracker=False)
    with assemble.opened(settings) as jobs:
        current = database.schema_is_current(jobs.engine)
    state = "at the newest schema" if current else "NOT at the newest schema"
    click.echo(f"database {secrets.redact_url(settings.database())} is {state}")
    if not current:
        raise click.exceptions.Exit(1)
