"""Tickets closed or reopened by hand against a real RT 5: a person changes the ticket's status
through REST2 (the scrip reports it, the bridge acts): resolved in staged rollout frees the slot
for the Deferred release and removes the release; rejected closes it as Rejected and tells the
provider; deleted closes it with comments only; reopened only gets a comment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.tracker.client import TrackerClient
from tests.support import rt_people
from tests.support.workflow_harness import PROVIDER, Bridge, running_bridge

pytestmark = pytest.mark.rt


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("hand-changes")) as running:
        yield running


@pytest.fixture(scope="module")
def ada(bridge: Bridge) -> Iterator[TrackerClient]:
    """A release manager (sw-rel-admin), with her own login."""
    client = rt_people.person(bridge.info, "ada", "sw-rel-admin")
    yield client
    client.close()


def _status(bridge: Bridge, ticket: int) -> str:
    return bridge.manager.get_ticket(ticket).status


def test_resolved_in_staged_rollout_removes_it_and_the_deferred_one_moves_in(
    bridge: Bridge, ada: TrackerClient
) -> None:
    holder, waiting = bridge.file_release("HC-1"), bridge.file_release("HC-1")
    for ticket in (holder, waiting):
        for state in ("Unverified", "InVerification", "StageRollout"):
            bridge.move(ticket, state)
    assert (bridge.state(holder), bridge.state(waiting)) == ("StageRollout", "Deferred")
    assert bridge.store.published_areas(holder)

    ada.update_ticket(holder, status="resolved")
    bridge.drain()

    assert bridge.state(holder) == "Ignored"
    assert _status(bridge, holder) == "resolved"  # as she left it
    assert bridge.store.published_areas(holder) == ()
    assert bridge.manager.get_ticket(holder).field("RepositoryURL") is None
    assert bridge.state(waiting) == "StageRollout"  # the freed slot's next in line
    assert bridge.store.slot_holders("HC-1") == (waiting,)
    (said,) = [c for c in bridge.comments(holder) if c.startswith("The ticket was resolved")]
    assert said.startswith(
        "The ticket was resolved by ada in RT while the release was StageRollout."
    )
    assert "RolloutProgress: StageRollout → Ignored" in said


def test_rejected_by_hand_is_rejected_and_the_provider_told(
    bridge: Bridge, ada: TrackerClient
) -> None:
    ticket = bridge.file_release("HC-2")
    bridge.move(ticket, "Unverified")
    mark = bridge.mail_mark()
    ada.update_ticket(ticket, status="rejected")
    bridge.drain()
    assert bridge.state(ticket) == "Rejected"
    assert _status(bridge, ticket) == "rejected"  # the bridge's reply did not reopen it
    assert any(PROVIDER in to for to, _ in bridge.mails_since(mark))
    assert bridge.store.published_areas(ticket) == ()


def test_deleted_by_hand_is_closed_with_comments_only(bridge: Bridge) -> None:
    ticket = bridge.file_release("HC-3")
    bridge.move(ticket, "Unverified")
    bridge.move(ticket, "InVerification")
    bridge.manager.update_ticket(ticket, status="deleted")  # root: only admins may delete
    bridge.drain()
    assert bridge.state(ticket) == "Ignored"
    assert _status(bridge, ticket) == "deleted"  # not undeleted by a reply
    assert bridge.store.published_areas(ticket) == ()
    assert any(
        c.startswith("The ticket was deleted by root in RT") for c in bridge.comments(ticket)
    )


def test_reopened_by_hand_is_only_commented(bridge: Bridge, ada: TrackerClient) -> None:
    ticket = bridge.file_release("HC-4", emergency=True)
    bridge.move(ticket, "Unverified")
    bridge.move(ticket, "InVerification")
    bridge.move(ticket, "Production")
    assert _status(bridge, ticket) == "resolved"
    ada.update_ticket(ticket, status="open")
    bridge.drain()
    assert bridge.state(ticket) == "Production"
    assert bridge.comments(ticket)[-1].startswith(
        "The ticket was reopened by ada in RT: the release stays Production (final)"
    )
