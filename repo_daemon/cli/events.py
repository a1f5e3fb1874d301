"""``rollout events``: the event log's command group. The audit feed (``events_feed``) and the
checks (``events_check``: verify, rebuild, prune) add their commands to it.

It holds no logic of its own.
"""

from __future__ import annotations

import click


@click.group("events", invoke_without_command=True)
@click.pass_context
def events_group(ctx: click.Context) -> None:
    """The event log: what happened, who did it and why (the audit feed), and its checks."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
