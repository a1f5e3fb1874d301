"""The timeline as text: durations people read, attempts in order with re-runs between them,
errors shown escaped, a pruned start said."""

from __future__ import annotations

import pytest

from bridge.store.events import Cause, EventKind
from repo_daemon.history import render, timeline
from tests.unit.repo_daemon.history.conftest import TICKET, Events, at

K = EventKind


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "?"),
        (0.0, "0.00 s"),
        (0.414, "0.41 s"),
        (12.4, "12 s"),
        (59.9, "60 s"),
        (60.0, "1m 00s"),
        (330.0, "5m 30s"),
        (3600.0, "1h 00m"),
        (7500.0, "2h 05m"),
        (86400.0 * 3 + 3600 * 4 + 59, "3d 04h"),
    ],
)
def test_durations_read_at_a_glance(seconds: float | None, shown: str) -> None:
    assert render.duration(seconds) == shown


def _story() -> Events:
    e = Events()
    e.add(K.JOB_QUEUED, 0, job=1, actor="anna", txn=500, field="RolloutProgress")
    e.add(K.JOB_CLAIMED, 0, job=1, attempt=1, worker="vm:1")
    e.add(K.RELEASE_RECORDED, 0, job=1, state="Submitted", major_release="UMD-5")
    e.add(K.JOB_DEAD, 2, job=1, attempt=1, error="RsyncFailed: \x1b[31mred\x1b[0m", action="sync")
    e.add(K.JOB_REQUEUED, 30, job=1, actor="bob", cause=Cause.MANUAL_RERUN, was="dead")
    e.add(K.JOB_CLAIMED, 31, job=1, cause=Cause.MANUAL_RERUN, attempt=2, worker="vm:1")
    e.move(32, "Submitted", "Unverified", cause=Cause.MANUAL_RERUN, attempt=2)
    e.add(K.JOB_DONE, 33, job=1, cause=Cause.MANUAL_RERUN, attempt=2)
    return e


def test_attempts_show_in_order_with_the_rerun_between_them() -> None:
    shown = render.text(timeline.build(TICKET, _story().items, now=at(92))).splitlines()
    start = shown.index("  job 1: RolloutProgress → Unverified — done")
    assert shown[start + 1 : start + 12] == [
        "    asked by anna (hook), RT transaction 500, queued 2026-11-24 10:00:00",
        "    attempt 1  2026-11-24 10:00:00  hook, asked by anna, taken by vm:1",
        "      sync  failed",
        "      error (in sync): RsyncFailed: \\x1b[31mred\\x1b[0m",
        "      ended: failed; dead-lettered 2026-11-24 10:02:00, after 2m 00s",
        "    re-run by bob at 2026-11-24 10:30:00 (was dead)",
        "    attempt 2  2026-11-24 10:31:00  manual_rerun, asked by bob, taken by vm:1",
        "      moved Submitted → Unverified",
        "      ended: done 2026-11-24 10:33:00, after 2m 00s",
        "",
        "published: nowhere",
    ]


def test_states_are_a_table_with_the_current_one_up_to_now() -> None:
    shown = render.text(timeline.build(TICKET, _story().items, now=at(92)))
    assert (
        "states (UTC):\n"
        "  STATE       ENTERED              LEFT                 TIME SPENT  MOVED BY\n"
        "  Submitted   2026-11-24 10:00:00  2026-11-24 10:32:00     32m 00s  -\n"
        "  Unverified  2026-11-24 10:32:00  (now)                    1h 00m  anna\n"
    ) in shown
    assert shown.startswith("release 7: Unverified since 2026-11-24 10:32:00 UTC (1h 00m)\n")


def test_a_pruned_start_is_said_and_unknown_times_are_question_marks() -> None:
    e = Events(first_seq=12).move(60, "Unverified", "InVerification")
    shown = render.text(timeline.build(TICKET, e.items, now=at(61)))
    assert (
        "  note:          events 1–11 of this release were deleted by retention; what they "
        "recorded is not shown"
    ) in shown
    assert "  Unverified      ?                    2026-11-24 11:00:00           ?  -" in shown


def test_nothing_hidden_from_outside_reaches_the_terminal() -> None:
    e = _story()
    e.add(K.TICKET_TOLD, 40, job=1, attempt=2, step="commented", comment="Bad\u202enews")
    e.add(K.RELEASE_PUBLISHED, 40, job=1, area="unverified/\x07x/1.0", files=1, bytes=10)
    shown = render.text(timeline.build(TICKET, e.items, now=at(92)))
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert 'comment "Bad\\u202enews"' in shown
    assert "unverified/\\x07x/1.0  1 files, 10 bytes" in shown
