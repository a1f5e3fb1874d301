"""Settings and workflows seen at start-up: a process that starts with settings or workflows
other than the last ones seen records ``settings_seen`` naming what changed.

Only digests are kept (in ``bridge_state``) and only the names of the settings that changed go
into the event, never a value: a changed password says "changed" and nothing else. It does not
judge settings (``bridge.settings`` does) nor load workflows (the daemon passes their
fingerprints).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bridge import secrets
from bridge.store import event_log, tables
from bridge.store import events as eventlog

STATE_KEY = "settings.seen"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:32]


def _plain(value: Any) -> Any:
    """A value as comparable JSON; a secret only as a digest of itself."""
    if isinstance(value, secrets.Secret):
        return "secret:" + _digest(value.reveal())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def digests(settings: Any) -> dict[str, str]:
    """Each top-level setting (``section.field``) of a settings dataclass as a digest."""
    found: dict[str, str] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for g in dataclasses.fields(value):
                plain = _plain(getattr(value, g.name))
                found[f"{f.name}.{g.name}"] = _digest(json.dumps(plain, sort_keys=True))
        else:
            found[f.name] = _digest(json.dumps(_plain(value), sort_keys=True))
    return found


def record(
    log: event_log.EventLog,
    settings: Mapping[str, str],
    workflows: Mapping[str, str],
    *,
    process: str,
) -> list[str] | None:
    """Compare with what the last process saw; when anything differs, append
    ``settings_seen`` and keep the new digests, in one transaction. Returns the names that
    changed (``[]`` on the very first start), or None when nothing did."""
    seen = {"settings": dict(settings), "workflows": dict(workflows)}
    st = tables.state
    with log.engine.begin() as conn:
        before_text = conn.execute(sa.select(st.c.value).where(st.c.key == STATE_KEY)).scalar()
        before = json.loads(before_text) if before_text else None
        if before == seen:
            return None
        changed: list[str] = []
        if before is not None:
            for group in ("settings", "workflows"):
                old, new = before.get(group, {}), seen[group]
                prefix = "" if group == "settings" else "workflow "
                changed += [
                    f"{prefix}{name}"
                    for name in sorted(set(old) | set(new))
                    if old.get(name) != new.get(name)
                ]
        detail = (
            f"{process} started with settings first seen"
            if before is None
            else f"{process} started with changed settings: {', '.join(changed)}"
        )
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        text = json.dumps(seen, sort_keys=True)
        conn.execute(
            insert(st)
            .values(key=STATE_KEY, value=text)
            .on_conflict_do_update(index_elements=["key"], set_={"value": text})
        )
        event_log.append(
            conn,
            [
                event_log.draft(
                    eventlog.EventKind.SETTINGS_SEEN,
                    actor=eventlog.BRIDGE_ACTOR,
                    cause=eventlog.Cause.OPERATOR,
                    data={"detail": detail, "changed": changed, "workflows": dict(workflows),
                          "process": process},
                )
            ],
            now=log.clock(),
        )  # fmt: skip
    return changed
