"""A process that starts with other settings or workflows than the last one records
``settings_seen`` naming what changed, and never a value (secrets included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bridge import secrets
from bridge.settings import model as settings_model
from bridge.store import events, queue, settings_seen

QueueFactory = Callable[..., queue.Queue]
TOKEN, NEW_TOKEN = "first-secret-token-4711", "second-secret-token-0815"


def settings(tmp_path: Path, token: str = TOKEN, keep: int = 3) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt/", token=secrets.Secret(token)),
        data_dir=tmp_path,
        repository=settings_model.RepositorySettings(root=tmp_path / "r", keep_snapshots=keep),
    )


def start(q: queue.Queue, s: settings_model.Settings, workflows: dict[str, str]) -> object:
    return settings_seen.record(q, settings_seen.digests(s), workflows, process="daemon")


def test_the_first_start_is_recorded_then_only_changes(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    q = make_queue()
    flows = {"staged": "a1", "direct": "b1"}
    assert start(q, settings(tmp_path), flows) == []
    assert start(q, settings(tmp_path), flows) is None  # the same again: nothing recorded
    changed = start(q, settings(tmp_path, token=NEW_TOKEN, keep=5), {**flows, "direct": "b2"})
    assert changed == ["repository.keep_snapshots", "tracker.token", "workflow direct"]
    seen = q.events(kind=events.EventKind.SETTINGS_SEEN)
    assert len(seen) == 2
    assert seen[0].data["changed"] == changed
    assert (seen[0].actor, seen[0].cause) == (events.BRIDGE_ACTOR, events.Cause.OPERATOR)
    # Names only: no value, and no secret, reaches the log.
    every = repr([e.as_dict() for e in q.events(limit=100)])
    assert TOKEN not in every and NEW_TOKEN not in every and "keep_snapshots" in every
    assert '"5"' not in every


def test_digests_cover_every_section_and_hide_secrets(tmp_path: Path) -> None:
    s = settings(tmp_path)
    found = settings_seen.digests(s)
    sections = {f.name for f in dataclasses.fields(s)}
    assert {key.split(".")[0] for key in found} == sections
    assert TOKEN not in repr(found)
    assert (
        settings_seen.digests(settings(tmp_path, token=NEW_TOKEN))["tracker.token"]
        != (found["tracker.token"])
    )
