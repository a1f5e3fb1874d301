"""``rollout events list`` (also plain ``rollout events [OPTIONS]``): the audit feed on the
terminal, as a table, CSV, JSON Lines or Atom, with the feed's filters, ``--follow`` and
``--since-last NAME`` (what reader NAME has not seen yet; its cursor moves past what was
printed).

It reads the log through ``bridge.store.event_feed`` and formats with ``history.exports``;
it writes nothing but a reader's cursor and never migrates the database.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import click
import sqlalchemy as sa

from bridge import printable
from bridge.store import event_feed
from bridge.store import events as eventlog
from repo_daemon.cli import root
from repo_daemon.cli.events import events_group
from repo_daemon.history import exports

PAGE = 1000  # events read at a time
FORMATS = ("table", "csv", "jsonl", "atom")
ATOM_LIMIT = 100  # the newest events an Atom feed holds when --limit is not given
_TABLE = "{:>8}  {:<19}  {:<22}  {:>7}  {:<16}  {:<15}  {}"
TABLE_HEADER = ("id", "at (UTC)", "kind", "ticket", "actor", "cause", "detail")


def table_line(event: eventlog.Event) -> str:
    """One event as a line of the table (text from outside escaped: nothing acts on the
    terminal)."""
    return _TABLE.format(
        event.id,
        event.at.strftime("%Y-%m-%d %H:%M:%S"),
        event.kind.value,
        "-" if event.ticket_id is None else event.ticket_id,
        printable.escape(event.actor or "-"),
        event.cause.label,
        printable.escape(event.detail),
    )


def _when(option: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return event_feed.parse_time(value, now=now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


class _Stop:
    """SIGINT / SIGTERM end ``--follow`` cleanly: the loop sees ``stopped`` and returns."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.event.set()

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _pages(
    engine: sa.Engine,
    filters: event_feed.Filters,
    after: int,
    limit: int | None,
    follow: bool,
    interval: float,
    stop: _Stop,
) -> Iterator[tuple[eventlog.Event, ...]]:
    """Pages until the end (or ``limit``); with ``follow``, then every ``interval`` seconds
    what is new, until stopped."""
    left = limit
    while not stop.event.is_set():
        size = PAGE if left is None else min(PAGE, left)
        found = event_feed.page(engine, filters, after=after, limit=size)
        if found.events:
            after = found.events[-1].id
            yield found.events
            if left is not None:
                left -= len(found.events)
                if left <= 0:
                    return
        if found.next_after is None:
            if not follow:
                return
            stop.event.wait(interval)


@events_group.command("list")
@click.option("--since", metavar="TIME", help="Events at or after TIME (see below).")
@click.option("--until", metavar="TIME", help="Events before TIME.")
@click.option("--ticket", type=click.IntRange(min=1), help="The release's RT ticket.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([k.value for k in eventlog.EventKind]),
    metavar="KIND",
    help="Only this kind (repeat for several); docs/events.md lists them.",
)
@click.option("--actor", help="Who did it (an RT user, an operator, rollout-bridge).")
@click.option("--major-release", help="The release's major release.")
@click.option("--area", help="An area, or any area under this path (production/UMD-5).")
@click.option(
    "--cause",
    type=click.Choice([c.label for c in eventlog.Cause]),
    help="What started the work.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Print at most this many events.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="A table, CSV (formula-safe), JSON Lines, or an Atom feed.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events (Ctrl-C stops).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between looks for new events with --follow.",
)
@click.option(
    "--since-last",
    "reader",
    metavar="NAME",
    help="What reader NAME has not seen yet; NAME's cursor moves past what is printed.",
)
@click.pass_context
def list_events(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    ticket: int | None,
    kinds: Sequence[str],
    actor: str | None,
    major_release: str | None,
    area: str | None,
    cause: str | None,
    limit: int | None,
    fmt: str,
    follow: bool,
    interval: float,
    reader: str | None,
) -> None:
    """The audit feed: events oldest first, with filters.

    TIME is ISO 8601 (2026-05-04, 2026-05-04T08:00; no offset means UTC), today, yesterday,
    now, or a time ago: 30m, 8h, 2d, 1w. The Atom format holds the newest --limit events (100
    by default), or with --since-last what NAME has not seen.
    """
    if follow and fmt == "atom":
        raise click.UsageError("--follow prints events as they come: use table, csv or jsonl")
    if reader is not None:
        try:
            event_feed.check_reader(reader)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since-last") from None
    now = datetime.now(UTC)
    filters = event_feed.Filters(
        since=_when("--since", since, now),
        until=_when("--until", until, now),
        ticket_id=ticket,
        kinds=tuple(eventlog.EventKind(k) for k in dict.fromkeys(kinds)),
        actor=actor,
        major_release=major_release,
        area=area,
        cause=eventlog.Cause.parse(cause) if cause is not None else None,
    )
    engine = root.open_engine(ctx)
    start = event_feed.cursor(engine, reader) if reader is not None else 0
    if fmt == "atom":
        _print_atom(engine, filters, start if reader is not None else None, limit, reader)
        return
    out = sys.stdout
    if fmt == "table":
        out.write(_TABLE.format(*TABLE_HEADER) + "\n")
    elif fmt == "csv":
        exports.write_csv((), out)
    try:
        with _Stop() as stop:
            for events in _pages(engine, filters, start, limit, follow, interval, stop):
                if fmt == "table":
                    out.write("".join(table_line(e) + "\n" for e in events))
                elif fmt == "csv":
                    exports.write_csv(events, out, header=False)
                else:
                    out.writelines(exports.jsonl_lines(events))
                out.flush()
                if reader is not None:
                    event_feed.advance(engine, reader, events[-1].id)
    except BrokenPipeError:  # the reader of our output went away (`| head`): not an error
        _quiet_stdout()


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so flushing it at exit raises nothing more."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())


def _print_atom(
    engine: sa.Engine,
    filters: event_feed.Filters,
    after: int | None,
    limit: int | None,
    reader: str | None,
) -> None:
    size = limit or ATOM_LIMIT
    if after is None:
        events = event_feed.latest(engine, filters, limit=size)
    else:
        events = event_feed.page(engine, filters, after=after, limit=size).events
    feed = exports.atom_feed(
        events,
        feed_id=exports.feed_id(filters.as_query()),
        title=filters.title(),
        updated=datetime.now(UTC).replace(tzinfo=None),
    )
    sys.stdout.buffer.write(feed + b"\n")
    sys.stdout.flush()
    if reader is not None and events:
        event_feed.advance(engine, reader, events[-1].id)
