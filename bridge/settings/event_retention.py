"""The event log's retention rules by kind (``event_retention``), read from the settings:
``ROLLOUT_EVENT_RETENTION=rt_calls=90,ticket_told=365,*=730`` (days per kind; ``*`` for every
kind no other rule names), or an ``[event_retention]`` table in the settings file. Each kind is
checked against ``EventKind``, every problem collected and named by its setting.

``standing`` folds in ``refusal_retention_days`` (refused hooks, unless a rule names them),
so the older setting keeps working. Pure: it deletes nothing (the daemon's housekeeping and
``rollout events prune`` apply the rules through ``bridge.store.retention``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.settings import model
from bridge.store import events

EVERY = "*"
REFUSALS = (events.EventKind.HOOK_REFUSED.value, events.EventKind.RECOVERED_REFUSED.value)
_NEVER = events.EventKind.EVENTS_PRUNED.value  # retention's own record: never deleted


def read(value: Any, problems: list[str]) -> tuple[model.EventRetention, ...]:
    """The rules from ``event_retention``: ``kind=days`` pairs, comma-separated (environment)
    or as a list, or a TOML table ``{kind = days}``. Nothing set: ``()``."""
    if value is None or value == "" or value == [] or value == {}:
        return ()
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        items = value if isinstance(value, list) else str(value).split(",")
        pairs = []
        for item in items:
            kind, sep, days = str(item).partition("=")
            if not str(item).strip():
                continue
            if not sep:
                problems.append(f"event_retention: {str(item).strip()!r} is not KIND=DAYS")
                continue
            pairs.append((kind.strip(), days.strip()))
    known = {k.value for k in events.EventKind}
    rules: list[model.EventRetention] = []
    seen: set[str] = set()
    for kind, days in pairs:
        if kind == _NEVER:
            problems.append(f"event_retention: {_NEVER} is never deleted (it records retention)")
            continue
        if kind != EVERY and kind not in known:
            problems.append(
                f"event_retention: {kind!r} is not a kind of event (see docs/events.md) nor *"
            )
            continue
        if kind in seen:
            problems.append(f"event_retention: {kind} is given more than once")
            continue
        seen.add(kind)
        try:
            number = float(days)
        except (TypeError, ValueError):
            number = -1.0
        if not number > 0:
            problems.append(f"event_retention: {kind}={days!r} is not a positive number of days")
            continue
        rules.append(model.EventRetention(kinds=(kind,), days=number))
    return tuple(rules)


def standing(daemon: model.DaemonSettings) -> tuple[model.EventRetention, ...]:
    """The rules housekeeping applies: the configured ones, refused hooks after
    ``refusal_retention_days`` unless a rule names them, and ``*`` spelled out as every kind
    no other rule names (so a kind's own rule always wins)."""
    rules = list(daemon.event_retention)
    named = {k for r in rules for k in r.kinds if k != EVERY}
    refusals = tuple(k for k in REFUSALS if k not in named)
    if refusals:
        rules.append(model.EventRetention(kinds=refusals, days=daemon.refusal_retention_days))
        named.update(refusals)
    rest = tuple(k.value for k in events.EventKind if k.value not in named and k.value != _NEVER)
    spelled = (model.EventRetention(kinds=rest, days=r.days) if r.kinds == (EVERY,) else r
               for r in rules)  # fmt: skip
    # A rule of no kind would read as "every kind" to retention: left out.
    return tuple(r for r in spelled if r.kinds)
