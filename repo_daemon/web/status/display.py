"""How the status pages show times and lengths of time: UTC in ISO 8601 (``2026-11-24
09:00:00Z``), ages people read at a glance (``3 h ago``), and durations as the release
timeline prints them; the Jinja2 environment the pages' templates are rendered with
(autoescape on for every template, so text from outside is always escaped).

Pure apart from reading the templates: it formats what it is given and never reads the
database or the clock (``now`` is passed in).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2

from repo_daemon.history import render

TEMPLATES = Path(__file__).parent / "templates"


def iso(value: datetime | None) -> str:
    """A naive UTC time in ISO 8601 with ``Z`` to the second; ``-`` when unknown."""
    if value is None:
        return "-"
    return value.replace(microsecond=0).isoformat(sep=" ") + "Z"


def machine(value: datetime | None) -> str:
    """A naive UTC time as an HTML ``datetime`` attribute (``2026-11-24T09:00:00Z``)."""
    return "" if value is None else value.replace(microsecond=0).isoformat() + "Z"


def age(value: datetime | None, now: datetime) -> str:
    """How long ago ``value`` was, in the largest whole unit: ``just now``, ``42 s ago``,
    ``5 min ago``, ``3 h ago``, ``2 d ago``; ``in 5 min`` for a time still to come."""
    if value is None:
        return "-"
    seconds = (now - value).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            return f"in {amount}" if ahead else f"{amount} ago"
    raise AssertionError("unreachable")  # pragma: no cover


def duration(seconds: float | None) -> str:
    """A length of time as ``rollout release show`` prints it (``5m 30s``, ``2h 05m``)."""
    return render.duration(seconds)


def environment() -> jinja2.Environment:
    """The templates' environment: autoescape for every template (not only ``.html``), the
    filters above, undefined names an error rather than an empty string."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.filters["machine"] = machine
    env.filters["duration"] = duration
    env.globals["age"] = age
    return env
