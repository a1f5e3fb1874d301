"""``rollout events``: the event log's command group. The audit feed (``events_feed``) and the
checks (``events_check``: verify, rebuild, prune) add their commands to it.

It holds no logic of its own.
"""

from __future__ import annotations

import click


class _ListByDefault(click.Group):
    """``rollout events [OPTIONS]`` is ``rollout events list [OPTIONS]`` once the feed has
    registered ``list``; a subcommand's name, ``--help`` or an unknown word keep their
    meaning."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if "list" in self.commands and (
            first is None or (first.startswith("-") and first not in ctx.help_option_names)
        ):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("events", cls=_ListByDefault, invoke_without_command=True)
@click.pass_context
def events_group(ctx: click.Context) -> None:
    """The event log: what happened, who did it and why (the audit feed), and its checks."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
