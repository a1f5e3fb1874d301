"""``event_retention``: the rules by kind read from the environment or the file, checked, and
the standing rules housekeeping applies (the refusal setting folded in, ``*`` spelled out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import errors
from bridge.settings import event_retention, model
from bridge.settings import load as settings_load
from bridge.store import events

R = model.EventRetention
ALL = {k.value for k in events.EventKind}


def test_kind_days_pairs_are_read() -> None:
    problems: list[str] = []
    rules = event_retention.read("rt_calls=90, hook_refused = 30,*=365.5", problems)
    assert problems == []
    assert rules == (R(kinds=("rt_calls",), days=90), R(kinds=("hook_refused",), days=30),
                     R(kinds=("*",), days=365.5))  # fmt: skip
    assert event_retention.read("", problems) == () == event_retention.read(None, problems)


def test_every_problem_is_named() -> None:
    problems: list[str] = []
    event_retention.read(
        "rt_call=90,events_pruned=1,ticket_told=0,ticket_told=5,action_done=soon,job_done", problems
    )
    assert problems == [
        "event_retention: 'job_done' is not KIND=DAYS",
        "event_retention: 'rt_call' is not a kind of event (see docs/events.md) nor *",
        "event_retention: events_pruned is never deleted (it records retention)",
        "event_retention: ticket_told='0' is not a positive number of days",
        "event_retention: ticket_told is given more than once",
        "event_retention: action_done='soon' is not a positive number of days",
    ]


def test_nothing_set_keeps_everything_but_refusals_past_their_setting() -> None:
    daemon = model.DaemonSettings(refusal_retention_days=12)
    assert event_retention.standing(daemon) == (
        R(kinds=("hook_refused", "recovered_refused"), days=12),
    )


def test_a_kinds_own_rule_wins_over_the_refusal_setting_and_star() -> None:
    daemon = model.DaemonSettings(
        refusal_retention_days=12,
        event_retention=(R(kinds=("hook_refused",), days=3), R(kinds=("*",), days=400),
                         R(kinds=("rt_calls",), days=90)),
    )  # fmt: skip
    hook, star, rt_calls, refusal = event_retention.standing(daemon)
    assert hook == R(kinds=("hook_refused",), days=3)
    assert rt_calls == R(kinds=("rt_calls",), days=90)
    assert refusal == R(kinds=("recovered_refused",), days=12)
    assert star.days == 400
    assert set(star.kinds) == ALL - {"hook_refused", "rt_calls", "recovered_refused",
                                      "events_pruned"}  # fmt: skip


def test_a_star_left_with_no_kind_is_dropped_not_read_as_every_kind() -> None:
    every = tuple(R(kinds=(k,), days=1) for k in sorted(ALL - {"events_pruned"}))
    daemon = model.DaemonSettings(event_retention=(*every, R(kinds=("*",), days=9)))
    assert all(r.kinds and r.kinds != ("*",) for r in event_retention.standing(daemon))
    assert len(event_retention.standing(daemon)) == len(every)


def test_the_settings_come_from_the_environment_and_the_file(tmp_path: Path) -> None:
    env = {"ROLLOUT_DATA_DIR": str(tmp_path), "ROLLOUT_EVENT_RETENTION": "rt_calls=90"}
    daemon = settings_load.load_settings(env, require_tracker=False).daemon
    assert daemon.event_retention == (R(kinds=("rt_calls",), days=90),)
    assert daemon.event_export_dir == tmp_path / "event-exports"
    config = tmp_path / "bridge.toml"
    config.write_text('event_export_dir = "/srv/exports"\n[event_retention]\nticket_told = 365\n')
    daemon = settings_load.load_settings({}, config_file=config, require_tracker=False).daemon
    assert daemon.event_retention == (R(kinds=("ticket_told",), days=365),)
    assert daemon.event_export_dir == Path("/srv/exports")
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings({"ROLLOUT_EVENT_RETENTION": "nothing=1"}, require_tracker=False)
    assert "event_retention: 'nothing' is not a kind of event" in str(caught.value)
