"""The demo's output: a bold title per step, short ``label  value`` lines, the time each step
took, failures in red. ``click.secho`` drops the colours when the output is not a terminal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

LABEL_WIDTH = 9


class Step:
    """One step being narrated."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, label: str, value: str, *, fg: str | None = None) -> None:
        """``  label    value``; lines after the first are indented under the value."""
        pad = " " * (LABEL_WIDTH + 3)
        first, *rest = value.splitlines() or [""]
        click.secho(f"  {label:<{LABEL_WIDTH}} ", dim=True, nl=False)
        click.secho(first, fg=fg)
        for line in rest:
            click.secho(pad + line, fg=fg)


@contextmanager
def step(title: str) -> Iterator[Step]:
    """Narrate one step: its title, then what the block says, then how long it took."""
    click.secho(f"\n▸ {title}", bold=True)
    current = Step()
    try:
        yield current
    except KeyboardInterrupt:
        click.secho(f"  ✗ interrupted after {current.elapsed():.1f} s", fg="yellow", bold=True)
        raise
    except BaseException:
        click.secho(f"  ✗ failed after {current.elapsed():.1f} s", fg="red", bold=True)
        raise
    click.secho(f"  {'took':<{LABEL_WIDTH}} {current.elapsed():.1f} s", dim=True)


def title(text: str) -> None:
    click.secho(text, bold=True)


def heading(text: str) -> None:
    click.secho(f"\n{text}", bold=True)


def result(text: str) -> None:
    click.secho(f"\n{text}", fg="green", bold=True)


def note(text: str) -> None:
    click.echo(text)


def shown(path: Path | str) -> str:
    """``path`` relative to the current folder when it is below it (shorter to read)."""
    path = Path(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
