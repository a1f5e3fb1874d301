"""Hand-made status changes, pure: a ticket closed by hand while its release is open closes the
release through the workflow (Rejected for rejected, Ignored for resolved and deleted), one
whose release is final changes nothing, a reopened one only gets a comment, and a change that no
longer holds is left alone."""

from __future__ import annotations

import pytest

from bridge.records import RolloutState as S
from bridge.records import TrackedField
from repo_daemon.workflow import effects, hand_changes
from tests.unit.repo_daemon.workflow.conftest import MakeChangeInputs

STATUS = TrackedField.STATUS
OPEN_STATES = [
    S.SUBMITTED, S.UNVERIFIED, S.IN_VERIFICATION, S.WAITING_FOR_RESPONSE, S.STAGE_ROLLOUT,
    S.DEFERRED, S.FAILED,
]  # fmt: skip


@pytest.mark.parametrize("state", OPEN_STATES, ids=lambda s: s.label)
@pytest.mark.parametrize(
    ("status", "closed_as"),
    [("resolved", S.IGNORED), ("rejected", S.REJECTED), ("deleted", S.IGNORED)],
)
def test_a_ticket_closed_by_hand_closes_its_open_release(
    make_change_inputs: MakeChangeInputs, state: S, status: str, closed_as: S
) -> None:
    inputs = make_change_inputs(STATUS, "open", status, at=state, status=status, actor="mgr")
    handling = hand_changes.status_changed(inputs)
    assert handling.close_as is closed_as
    (comment,) = handling.effects
    assert isinstance(comment, effects.Comment) and comment.headline
    assert comment.text.startswith(
        f"The ticket was {status} by mgr in RT while the release was {state.label}. A closed "
        f"ticket holds nothing, so the bridge closes the release as {closed_as.label}"
    )


@pytest.mark.parametrize("state", [S.PRODUCTION, S.REJECTED, S.IGNORED, S.NOT_PUBLISHED])
def test_closing_the_ticket_of_a_final_release_changes_nothing(
    make_change_inputs: MakeChangeInputs, state: S
) -> None:
    inputs = make_change_inputs(STATUS, "open", "resolved", at=state, status="resolved")
    handling = hand_changes.status_changed(inputs)
    assert (handling.close_as, handling.effects) == (None, ())


def test_a_reopened_ticket_of_a_final_release_is_only_commented(
    make_change_inputs: MakeChangeInputs,
) -> None:
    inputs = make_change_inputs(
        STATUS, "resolved", "open", at=S.PRODUCTION, status="open", actor="provider"
    )
    handling = hand_changes.status_changed(inputs)
    assert handling.close_as is None
    assert handling.effects == (
        effects.Comment(
            text="The ticket was reopened by provider in RT: the release stays Production "
            "(final): nothing changes in the repository; to publish it again, file the release "
            "again."
        ),
    )


def test_a_reopened_ticket_of_an_open_release_goes_on(make_change_inputs: MakeChangeInputs) -> None:
    inputs = make_change_inputs(STATUS, "rejected", "open", at=S.FAILED, status="open")
    (comment,) = hand_changes.status_changed(inputs).effects
    assert isinstance(comment, effects.Comment)
    assert "the release is Failed; the workflow goes on from there" in comment.text


@pytest.mark.parametrize(
    ("old", "new", "now"),
    [
        ("open", "resolved", "open"),  # closed, then reopened before the bridge got to it
        ("resolved", "open", "resolved"),  # RT reopened it for the bridge's reply, then closed
    ],
)
def test_a_change_that_no_longer_holds_is_left_alone(
    make_change_inputs: MakeChangeInputs, old: str, new: str, now: str
) -> None:
    inputs = make_change_inputs(STATUS, old, new, at=S.STAGE_ROLLOUT, status=now)
    handling = hand_changes.status_changed(inputs)
    assert (handling.close_as, handling.effects) == (None, ())
    assert "no longer holds" in handling.detail


@pytest.mark.parametrize(
    ("old", "new"), [("new", "open"), ("open", "stalled"), ("resolved", "rejected")]
)
def test_changes_within_open_or_within_closed_mean_nothing(
    make_change_inputs: MakeChangeInputs, old: str, new: str
) -> None:
    inputs = make_change_inputs(STATUS, old, new, at=S.UNVERIFIED, status=new)
    handling = hand_changes.status_changed(inputs)
    assert (handling.close_as, handling.effects) == (None, ())
