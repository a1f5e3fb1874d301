"""The timeline builder, pure: event lists in, a release's states, changes with their
numbered attempts, publications and the rest out."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

from bridge.store.events import BRIDGE_ACTOR, Cause, EventKind
from repo_daemon.history import records, timeline
from tests.unit.repo_daemon.history.conftest import TICKET, Events, at

K = EventKind
NOW = at(600)  # ten hours after T0


def _recorded(events: Events, minutes: float = 0, state: str = "Submitted") -> Events:
    return events.add(
        K.RELEASE_RECORDED,
        minutes,
        job=1,
        actor="anna",
        state=state,
        major_release="UMD-5",
        emergency=False,
    )


def _stays(
    tl: timeline.Timeline,
) -> list[tuple[str, datetime | None, datetime | None, float | None]]:
    return [(s.state, s.entered_at, s.left_at, s.seconds) for s in tl.stays]


# -- states ---------------------------------------------------------------------------------


def _only_recorded() -> Events:
    return _recorded(Events())


def _recorded_then_moved() -> Events:
    return (
        _recorded(Events())
        .move(5, "Submitted", "Unverified")
        .move(65, "Unverified", "InVerification")
    )


def _a_failure() -> Events:
    return _recorded(Events()).add(
        K.TRANSITION_FAILED,
        5,
        job=1,
        **{
            "from": "Submitted",
            "to": "Failed",
            "asked": "Unverified",
            "failed_target": "Unverified",
            "error": "bad XML",
            "actions": [],
        },
    )


def _moves_that_move_nothing() -> Events:
    events = _recorded(Events())
    for minutes, kind in (
        (1, K.TRANSITION_BLOCKED),
        (2, K.TRANSITION_NOOP),
        (3, K.TRANSITION_STALE),
    ):
        events.add(
            kind, minutes, job=1, **{"from": "Submitted", "to": "Submitted", "asked": "Production"}
        )
    return events


def _recorded_with_an_earlier_entry() -> Events:
    return Events().add(K.RELEASE_RECORDED, 30, state="Submitted", entered_at="2026-11-24T09:00:00")


def _imported_history_then_a_move() -> Events:
    history = [
        ["Submitted", "2026-11-20T08:00:00", "2026-11-21T08:00:00", ""],
        ["Unverified", "2026-11-21T08:00:00", None, "qc-anna"],
    ]
    return (
        Events()
        .add(K.IMPORTED, 0, what="release", state="Unverified", history=history, areas=[])
        .move(60, "Unverified", "InVerification")
    )


def _pruned_start() -> Events:
    return Events(first_seq=9).move(60, "Unverified", "InVerification")


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(_only_recorded, [("Submitted", at(0), None, 36000.0)], id="recorded-only"),
        pytest.param(
            _recorded_then_moved,
            [
                ("Submitted", at(0), at(5), 300.0),
                ("Unverified", at(5), at(65), 3600.0),
                ("InVerification", at(65), None, (600 - 65) * 60.0),
            ],
            id="two-moves",
        ),
        pytest.param(
            _a_failure,
            [("Submitted", at(0), at(5), 300.0), ("Failed", at(5), None, 595 * 60.0)],
            id="failure-goes-to-failed",
        ),
        pytest.param(
            _moves_that_move_nothing,
            [("Submitted", at(0), None, 36000.0)],
            id="blocked-noop-stale-stay",
        ),
        pytest.param(
            _recorded_with_an_earlier_entry,
            [("Submitted", datetime(2026, 11, 24, 9), None, 39600.0)],
            id="recorded-entered-before",
        ),
        pytest.param(
            _imported_history_then_a_move,
            [
                ("Submitted", datetime(2026, 11, 20, 8), datetime(2026, 11, 21, 8), 86400.0),
                ("Unverified", datetime(2026, 11, 21, 8), at(60), 3 * 86400.0 + 3 * 3600.0),
                ("InVerification", at(60), None, 540 * 60.0),
            ],
            id="imported-history",
        ),
        pytest.param(
            _pruned_start,
            [("Unverified", None, at(60), None), ("InVerification", at(60), None, 540 * 60.0)],
            id="pruned-start",
        ),
    ],
)
def test_states_have_their_times_entered_left_and_spent(events, expected) -> None:  # type: ignore[no-untyped-def]
    tl = timeline.build(TICKET, events().items, now=NOW)
    assert _stays(tl) == expected
    assert [s.current for s in tl.stays] == [False] * (len(expected) - 1) + [True]
    assert tl.state == expected[-1][0]


def test_the_mover_of_each_state_is_the_events_actor() -> None:
    tl = timeline.build(TICKET, _a_failure().move(70, "Failed", "Unverified").items, now=NOW)
    assert [(s.state, s.by) for s in tl.stays] == [
        ("Submitted", ""),
        ("Failed", BRIDGE_ACTOR),
        ("Unverified", "anna"),
    ]


def test_a_failure_keeps_where_a_retry_goes_until_the_next_move() -> None:
    events = _a_failure()
    assert timeline.build(TICKET, events.items, now=NOW).failed_target == "Unverified"
    events.move(70, "Failed", "Unverified")
    assert timeline.build(TICKET, events.items, now=NOW).failed_target is None


def test_a_release_whose_first_events_were_pruned_says_so() -> None:
    tl = timeline.build(TICKET, _pruned_start().items, now=NOW)
    assert (tl.pruned, tl.first_seq, tl.last_seq) == (True, 9, 9)
    whole = timeline.build(TICKET, _recorded_then_moved().items, now=NOW)
    assert (whole.pruned, whole.first_seq, whole.last_seq) == (False, 1, 3)


def test_a_move_from_a_state_the_events_never_entered_leaves_a_gap_not_a_lie() -> None:
    events = _recorded(Events()).move(60, "StageRollout", "Production")
    tl = timeline.build(TICKET, events.items, now=NOW)
    assert _stays(tl) == [
        ("Submitted", at(0), None, None),  # when it left Submitted is not in the events
        ("StageRollout", None, at(60), None),
        ("Production", at(60), None, 540 * 60.0),
    ]


# -- changes and attempts ---------------------------------------------------------------------


def _failed_rerun_done() -> Events:
    """Job 1: queued by a hook, attempt 1 fails transiently in sync, attempt 2 (automatic
    retry) is dead-lettered, bob re-runs it by hand, attempt 3 publishes and moves."""
    e = Events()
    e.add(
        K.JOB_QUEUED,
        0,
        job=1,
        actor="anna",
        txn=500,
        field="RolloutProgress",
        old_value="",
        new_value="",
        source="hook",
    )
    e.add(K.JOB_CLAIMED, 0, job=1, attempt=1, worker="vm:1", lease_expired=False)
    _recorded(e, 0)
    e.add(K.ACTION_DONE, 1, job=1, actor="anna", attempt=1, action="fetch_release_xml", seconds=0.5)
    e.add(
        K.JOB_RETRY,
        2,
        job=1,
        attempt=1,
        error="RsyncFailed: connection refused",
        action="sync",
        next_try_at="2026-11-24T10:07:00",
    )
    e.add(
        K.JOB_CLAIMED,
        7,
        job=1,
        cause=Cause.AUTOMATIC_RETRY,
        attempt=2,
        worker="vm:2",
        lease_expired=False,
    )
    e.add(
        K.JOB_DEAD,
        8,
        job=1,
        cause=Cause.AUTOMATIC_RETRY,
        attempt=2,
        error="RsyncFailed: connection refused",
        action="sync",
    )
    e.add(K.JOB_REQUEUED, 30, job=1, actor="bob", cause=Cause.MANUAL_RERUN, was="dead")
    e.add(
        K.JOB_CLAIMED,
        31,
        job=1,
        cause=Cause.MANUAL_RERUN,
        attempt=3,
        worker="vm:1",
        lease_expired=False,
    )
    e.add(
        K.ACTION_DONE,
        32,
        job=1,
        actor="anna",
        cause=Cause.MANUAL_RERUN,
        attempt=3,
        action="sync",
        seconds=60.0,
    )
    e.add(
        K.RELEASE_PUBLISHED,
        32,
        job=1,
        area="unverified/UMD5/1.0",
        snapshot="s1",
        files=3,
        bytes=12345,
    )
    e.add(
        K.TRANSITION_DONE,
        32,
        job=1,
        actor="anna",
        cause=Cause.MANUAL_RERUN,
        attempt=3,
        **{
            "from": "Submitted",
            "to": "Unverified",
            "asked": "Unverified",
            "actions": [
                {"name": "fetch_release_xml", "outcome": "done before", "seconds": 0.0},
                {"name": "sync", "outcome": "done", "seconds": 60.0, "detail": "3 files"},
            ],
        },
    )
    e.add(K.RT_CALLS, 32, job=1, cause=Cause.MANUAL_RERUN, attempt=3, calls=4, outcome="move")
    e.add(K.JOB_DONE, 33, job=1, cause=Cause.MANUAL_RERUN, attempt=3)
    return e


def test_attempts_are_numbered_over_a_manual_rerun_with_their_causes_and_askers() -> None:
    (change,) = timeline.build(TICKET, _failed_rerun_done().items, now=NOW).changes
    assert [(a.number, a.cause, a.asked_by, a.worker) for a in change.attempts] == [
        (1, "hook", "anna", "vm:1"),
        (2, "automatic_retry", "anna", "vm:2"),
        (3, "manual_rerun", "bob", "vm:1"),
    ]
    assert [(x.by, x.was, x.at) for x in change.reruns] == [("bob", "dead", at(30))]
    assert (change.job_id, change.transaction_id, change.asked_by, change.cause, change.status) == (
        1,
        500,
        "anna",
        "hook",
        "done",
    )


def test_each_attempt_ends_as_its_events_say_with_its_error_and_duration() -> None:
    (change,) = timeline.build(TICKET, _failed_rerun_done().items, now=NOW).changes
    first, second, third = change.attempts
    assert (first.end, first.error, first.failed_action, first.seconds, first.next_try_at) == (
        records.RETRY,
        "RsyncFailed: connection refused",
        "sync",
        120.0,
        at(7),
    )
    assert (second.end, second.ended_at, second.error) == (
        records.DEAD,
        at(8),
        "RsyncFailed: connection refused",
    )
    assert (third.end, third.seconds, third.error, third.rt_calls) == (records.DONE, 120.0, None, 4)
    assert (third.result, third.moved_from, third.moved_to) == (
        "transition_done",
        "Submitted",
        "Unverified",
    )


def test_a_failed_attempts_actions_end_with_the_one_that_failed() -> None:
    (change,) = timeline.build(TICKET, _failed_rerun_done().items, now=NOW).changes
    first, second, third = change.attempts
    assert [(x.name, x.outcome, x.seconds) for x in first.actions] == [
        ("fetch_release_xml", "done", 0.5),
        ("sync", "failed", None),
    ]
    assert [(x.name, x.outcome) for x in second.actions] == [("sync", "failed")]
    # a finished move lists what its transition event says it ran, earlier steps included
    assert [(x.name, x.outcome, x.seconds) for x in third.actions] == [
        ("fetch_release_xml", "done before", 0.0),
        ("sync", "done", 60.0),
    ]


def test_a_move_asked_for_is_read_from_the_transition_when_the_queue_left_it_out() -> None:
    (change,) = timeline.build(TICKET, _failed_rerun_done().items, now=NOW).changes
    assert (change.field, change.before, change.after) == ("RolloutProgress", "", "Unverified")


def test_a_permanent_failure_lists_the_failed_action_then_what_the_failure_ran() -> None:
    e = Events()
    e.add(K.JOB_QUEUED, 0, job=1, actor="anna", field="RolloutProgress", source="hook")
    e.add(K.JOB_CLAIMED, 0, job=1, attempt=1, worker="vm:1")
    _recorded(e, 0)
    e.add(K.ACTION_DONE, 1, job=1, attempt=1, action="fetch_release_xml", seconds=0.25)
    e.add(
        K.TRANSITION_FAILED,
        2,
        job=1,
        attempt=1,
        error="release.xml: line 3: bad Version",
        action="validate_release_xml",
        failed_target="Unverified",
        **{
            "from": "Submitted",
            "to": "Failed",
            "asked": "Unverified",
            "actions": [{"name": "comment_failure", "outcome": "done", "seconds": 0.0}],
        },
    )
    e.add(K.JOB_DONE, 3, job=1, attempt=1)
    (change,) = timeline.build(TICKET, e.items, now=NOW).changes
    (attempt,) = change.attempts
    assert [(x.name, x.outcome, x.after_failure) for x in attempt.actions] == [
        ("fetch_release_xml", "done", False),
        ("validate_release_xml", "failed", False),
        ("comment_failure", "done", True),
    ]
    assert (attempt.result, attempt.error, attempt.end) == (
        "transition_failed",
        "release.xml: line 3: bad Version",
        records.DONE,
    )


def test_an_attempt_taken_over_after_its_daemon_died_says_so() -> None:
    e = Events()
    e.add(K.JOB_QUEUED, 0, job=1, actor="anna", field="RolloutProgress")
    e.add(K.JOB_CLAIMED, 0, job=1, attempt=1, worker="vm:1", lease_expired=False)
    e.add(
        K.JOB_CLAIMED,
        6,
        job=1,
        cause=Cause.LEASE_EXPIRED,
        attempt=2,
        worker="vm:2",
        lease_expired=True,
    )
    # the dead daemon's last step lands late: it belongs to attempt 1, not 2
    e.add(K.ACTION_DONE, 6.5, job=1, attempt=1, action="sync", seconds=300.0)
    e.add(K.JOB_DONE, 7, job=1, cause=Cause.LEASE_EXPIRED, attempt=2)
    (change,) = timeline.build(TICKET, e.items, now=NOW).changes
    first, second = change.attempts
    assert (first.end, [x.name for x in first.actions]) == (records.LEASE_EXPIRED, ["sync"])
    assert (second.cause, second.end, second.actions) == ("lease_expired", records.DONE, ())


def test_a_running_attempt_stays_running_and_the_change_too() -> None:
    e = Events().add(K.JOB_QUEUED, 0, job=1, actor="anna", field="RolloutProgress")
    e.add(K.JOB_CLAIMED, 1, job=1, attempt=1, worker="vm:1")
    (change,) = timeline.build(TICKET, e.items, now=NOW).changes
    assert (change.status, change.attempts[0].end, change.attempts[0].ended_at) == (
        "running",
        records.RUNNING,
        None,
    )


def test_changes_keep_their_order_and_other_fields_their_values() -> None:
    e = Events()
    e.add(K.JOB_QUEUED, 0, job=4, actor="anna", field="RolloutProgress")
    e.add(
        K.JOB_QUEUED,
        1,
        job=9,
        actor="carol",
        field="EarlyAdopters",
        old_value="",
        new_value="team-a",
        source="recovered",
        cause=Cause.RECONCILIATION,
    )
    e.add(K.JOB_CLAIMED, 2, job=9, cause=Cause.RECONCILIATION, attempt=1, worker="vm:1")
    e.add(K.FIELD_CHANGE_DONE, 2, job=9, attempt=1)
    e.add(K.JOB_DONE, 2, job=9, attempt=1)
    tl = timeline.build(TICKET, e.items, now=NOW)
    assert [(c.job_id, c.field, c.after, c.cause, c.status) for c in tl.changes] == [
        (4, "RolloutProgress", "", "hook", "queued"),
        (9, "EarlyAdopters", "team-a", "reconciliation", "done"),
    ]
    assert tl.changes[1].attempts[0].result == "field_change_done"


def test_an_attempt_whose_claim_was_pruned_is_still_shown() -> None:
    e = Events(first_seq=20).add(K.JOB_DEAD, 5, job=3, attempt=4, error="RT answered 503")
    (change,) = timeline.build(TICKET, e.items, now=NOW).changes
    (attempt,) = change.attempts
    assert (attempt.number, attempt.started_at, attempt.end, attempt.error) == (
        4,
        None,
        records.DEAD,
        "RT answered 503",
    )
    assert change.status == "dead"


def test_a_job_known_before_the_log_carries_what_was_known() -> None:
    e = Events().add(K.IMPORTED, 0, job=2, actor="anna", what="job", state="dead", attempts=5)
    (change,) = timeline.build(TICKET, e.items, now=NOW).changes
    assert (change.status, change.before_log_status, change.before_log_attempts) == (
        "dead",
        "dead",
        5,
    )


# -- publications, slot, early adopters, the ticket ------------------------------------------


def test_publications_removals_slot_acceptances_and_what_the_ticket_was_told() -> None:
    e = Events().add(
        K.IMPORTED,
        0,
        what="release",
        state="StageRollout",
        history=[["StageRollout", "2026-11-23T10:00:00", None, "sr"]],
        areas=["unverified/UMD5/1.0"],
        major_release="UMD-5",
    )
    e.add(K.SLOT_TAKEN, 1, major_release="UMD-5", emergency=False)
    e.add(K.ACCEPTANCE_RECORDED, 2, actor="carol", team="team-a", ngi="NGI-X")
    e.add(K.ACCEPTANCE_RECORDED, 2, actor="dan", team="team-b", ngi="NGI-Y")
    e.add(K.ACCEPTANCE_WITHDRAWN, 3, actor="dan", team="team-b")
    e.add(
        K.RELEASE_PUBLISHED,
        4,
        job=5,
        area="production/UMD5/updates",
        snapshot="p7",
        files=3,
        bytes=999,
    )
    e.add(K.RELEASE_REMOVED, 4, job=5, area="unverified/UMD5/1.0", areas=["unverified/UMD5/1.0"])
    e.add(K.SLOT_FREED, 4, major_release="UMD-5")
    e.add(
        K.TICKET_TOLD,
        5,
        job=5,
        attempt=2,
        step="wrote_ticket",
        fields=["RepositoryURL", "RolloutProgress"],
    )
    e.add(
        K.TICKET_TOLD,
        5,
        job=5,
        attempt=2,
        step="replied",
        reply="Your release is in production.",
        to="requestors",
    )
    tl = timeline.build(TICKET, e.items, now=NOW)
    assert [
        (p.area, p.published_at, p.snapshot, p.files, p.bytes, p.removed_at)
        for p in tl.publications
    ] == [
        ("unverified/UMD5/1.0", None, None, None, None, at(4)),
        ("production/UMD5/updates", at(4), "p7", 3, 999, None),
    ]
    assert [(s.major_release, s.taken_at, s.freed_at) for s in tl.slots] == [
        ("UMD-5", at(1), at(4))
    ]
    assert [(a.team, a.ngi, a.accepted_by, a.withdrawn_by) for a in tl.acceptances] == [
        ("team-a", "NGI-X", "carol", ""),
        ("team-b", "NGI-Y", "dan", "dan"),
    ]
    assert [(t.job_id, t.attempt, t.fields, t.reply, t.to) for t in tl.told] == [
        (5, 2, ("RepositoryURL", "RolloutProgress"), None, None),
        (5, 2, (), "Your release is in production.", "requestors"),
    ]
    assert tl.major_release == "UMD-5"


def test_other_events_become_notes_in_order() -> None:
    e = _recorded(Events())
    e.add(K.RELEASE_XML_FROZEN, 1, job=1, sha256="ab" * 32, attachment_id=12)
    e.add(K.HOOK_REFUSED, 2, http_status=422, reason="unknown state")
    e.add(K.RELEASE_FACTS_CHANGED, 3, major_release="UMD-6", emergency=True)
    tl = timeline.build(TICKET, e.items, now=NOW)
    assert [(n.kind, n.at) for n in tl.notes] == [
        ("release_xml_frozen", at(1)),
        ("hook_refused", at(2)),
        ("release_facts_changed", at(3)),
    ]
    assert (tl.major_release, tl.emergency) == ("UMD-6", True)


# -- the whole -------------------------------------------------------------------------------


def test_the_json_form_is_plain_json_with_utc_times() -> None:
    data = timeline.as_dict(timeline.build(TICKET, _failed_rerun_done().items, now=NOW))
    again = json.loads(json.dumps(data))
    assert again["now"] == "2026-11-24T20:00:00.000000Z"
    assert [a["number"] for a in again["changes"][0]["attempts"]] == [1, 2, 3]
    assert again["stays"][0]["entered_at"] == "2026-11-24T10:00:00.000000Z"
    assert set(again) == {f.name for f in dataclasses.fields(records.Timeline)}


def test_the_order_of_the_list_given_does_not_matter_ids_do() -> None:
    items = _failed_rerun_done().items
    assert timeline.build(TICKET, list(reversed(items)), now=NOW) == timeline.build(
        TICKET, items, now=NOW
    )


def test_no_events_or_another_tickets_events_are_refused() -> None:
    with pytest.raises(ValueError, match="no events for ticket 7"):
        timeline.build(TICKET, [], now=NOW)
    other = dataclasses.replace(_only_recorded().items[0], ticket_id=8)
    with pytest.raises(ValueError, match=r"events of ticket\(s\) \[8\] given for ticket 7"):
        timeline.build(TICKET, [other], now=NOW)
