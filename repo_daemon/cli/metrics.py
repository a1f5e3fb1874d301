"""``rollout metrics``: the provisioning metrics (docs/metrics.md) for a period and a major
release, as text tables, CSV or JSON. ``rollout metrics [OPTIONS]`` shows them; subcommands
(``backfill``) are added to the ``metrics_group``.

It reads the database through ``repo_daemon.metrics.compute`` and formats with
``metrics.render``; it writes nothing and never migrates the database.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime

import click

from repo_daemon.cli import root
from repo_daemon.metrics import compute, period, render, report


def read_query(since: str | None, until: str | None, major_release: str | None) -> report.Query:
    """The ``Query`` of ``--from`` / ``--to`` / ``--major-release``; a bad value or an empty
    period is a ``click.BadParameter`` naming the option."""

    def read(option: str, value: str | None, parse: Callable[[str], datetime]) -> datetime | None:
        try:
            return parse(value) if value is not None else None
        except period.PeriodInvalid as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None

    start = read("--from", since, period.parse_from)
    end = read("--to", until, period.parse_to)
    try:
        period.check_order(start, end, what=f"--from {since} --to {until}")
    except period.PeriodInvalid as exc:
        raise click.BadParameter(str(exc), param_hint="--from/--to") from None
    return report.Query(since=start, until=end, major_release=major_release or None)


@click.group("metrics", invoke_without_command=True)
@click.option("--from", "since", metavar="MONTH|DAY", help="From this month or day (UTC).")
@click.option("--to", "until", metavar="MONTH|DAY", help="Through this month, or until this day.")
@click.option("--major-release", help="Only the releases of this major release.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(render.FORMATS),
    default="table",
    show_default=True,
    help="Text tables, CSV (formula-safe) or JSON.",
)
@click.option(
    "--table",
    type=click.Choice(render.TABLES),
    help="Only this part (CSV: a table of its own; without it, one row per figure).",
)
@click.pass_context
def metrics_group(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    major_release: str | None,
    fmt: str,
    table: str | None,
) -> None:
    """The provisioning metrics: releases delivered, verified and through staged rollout per
    month, early-adopter uptake per release, team and NGI, and durations (docs/metrics.md).

    MONTH is YYYY-MM, DAY is YYYY-MM-DD (UTC). --from 2025-11 starts on 2025-11-01; --to 2026-12
    includes all of December 2026, --to 2026-12-15 ends before that day. Without --from: from
    the earliest record's month; without --to: through the current month.
    """
    if ctx.invoked_subcommand is not None:
        return
    if table is not None and fmt == "table":
        raise click.BadParameter("only with --format csv or json", param_hint="--table")
    query = read_query(since, until, major_release)
    found = compute.compute(root.open_engine(ctx), query)
    if fmt == "json":
        text = render.json_text(found, table)
    elif fmt == "csv":
        text = render.csv_text(found, table)
    else:
        text = render.table_text(found)
    sys.stdout.write(text)
    sys.stdout.flush()
