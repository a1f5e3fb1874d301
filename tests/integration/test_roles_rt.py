"""The release process with real people in real RT groups (not root), against a real RT 5 and a
real rsync daemon: a technology provider files a release, quality control takes it through
verification, the staged-rollout team takes it to production; each is refused a move that is
not theirs — by RT where its rights say so, by the bridge where only the workflow's roles do,
and then the ticket says who may make it. The manager's reason reaches the provider by mail
when a release is rejected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge import errors
from tests.support.workflow_harness import Bridge, running_bridge

pytestmark = pytest.mark.rt


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("roles")) as running:
        yield running


def _file_as_provider(bridge: Bridge, major: str) -> int:
    """provider1 files a release in RT: their fields, release.xml attached."""
    return bridge.file_release(major, as_user="provider1")


def _last_comment(bridge: Bridge, ticket: int) -> str:
    return bridge.comments(ticket)[-1]


def test_each_role_makes_its_moves_and_is_refused_the_others(bridge: Bridge) -> None:
    ticket = _file_as_provider(bridge, "ROLE-1")

    # The provider may not move their own release: RT refuses them RolloutProgress.
    with pytest.raises(errors.TrackerRejected):
        bridge.as_user("provider1").set_custom_fields(ticket, {"RolloutProgress": "Unverified"})
    assert bridge.state(ticket) in (None, "Submitted")

    # Quality control takes it in and through verification.
    bridge.move(ticket, "Unverified", as_user="qc1")
    assert bridge.state(ticket) == "Unverified", _last_comment(bridge, ticket)
    assert bridge.manager.get_ticket(ticket).field("RepositoryURL")
    bridge.move(ticket, "InVerification", as_user="qc1")
    assert bridge.state(ticket) == "InVerification"

    # The staged-rollout team may change RolloutProgress in RT, but verification is QC's.
    bridge.move(ticket, "WaitingForResponse", as_user="sr1")
    assert bridge.state(ticket) == "InVerification"  # put back
    said = _last_comment(bridge, ticket)
    assert said.startswith("Blocked: InVerification → WaitingForResponse may only be asked for by")
    assert "quality control (@qc, RT group sw-rel-qc)" in said
    assert "and sr1 is not one of them" in said

    bridge.move(ticket, "StageRollout", as_user="qc1")
    assert bridge.state(ticket) == "StageRollout", _last_comment(bridge, ticket)

    # Production after staged rollout is the staged-rollout team's call, not QC's.
    bridge.move(ticket, "Production", as_user="qc1")
    assert bridge.state(ticket) == "StageRollout"
    said = _last_comment(bridge, ticket)
    assert "the staged-rollout team (@sr, RT group sw-rel-sr), and qc1 is not one of them" in said
    bridge.move(ticket, "Production", as_user="sr1")
    after = bridge.manager.get_ticket(ticket)
    assert after.field("RolloutProgress") == "Production", _last_comment(bridge, ticket)
    assert after.status == "resolved"
    # Who asked is what the bridge recorded.
    actors = [span.actor for span in bridge.store.history(ticket)]
    assert actors[-1] == "sr1"


def test_bridge_owned_fields_are_the_bridges_alone(bridge: Bridge) -> None:
    ticket = _file_as_provider(bridge, "ROLE-2")
    for person in ("qc1", "sr1", "manager1", "provider1"):
        client = bridge.as_user(person)
        for name in ("RepositoryURL", "RolloutHistory"):
            with pytest.raises(errors.TrackerError):
                client.set_custom_fields(ticket, {name: "https://evil.example/"})
    fields = bridge.manager.get_ticket(ticket)
    assert not fields.field("RepositoryURL")
    assert not fields.field("RolloutHistory")


def test_an_emergency_is_the_release_managers(bridge: Bridge) -> None:
    ticket = _file_as_provider(bridge, "ROLE-3")
    with pytest.raises(errors.TrackerError):
        bridge.as_user("qc1").set_custom_fields(ticket, {"EmergencyRelease": "Yes"})
    bridge.as_user("manager1").set_custom_fields(ticket, {"EmergencyRelease": "Yes"})
    bridge.drain()
    bridge.move(ticket, "Unverified", as_user="qc1")
    bridge.move(ticket, "InVerification", as_user="qc1")
    bridge.move(ticket, "Production", as_user="qc1")  # the emergency path is not QC's
    assert bridge.state(ticket) == "InVerification"
    assert "release managers (@admin, RT group sw-rel-admin)" in _last_comment(bridge, ticket)
    bridge.move(ticket, "Production", as_user="manager1")
    assert bridge.state(ticket) == "Production", _last_comment(bridge, ticket)


def test_the_provider_hears_the_managers_reason_for_a_rejection(bridge: Bridge) -> None:
    ticket = _file_as_provider(bridge, "ROLE-4")
    bridge.move(ticket, "Unverified", as_user="qc1")
    bridge.as_user("qc1").set_custom_fields(
        ticket, {"Closing Reason": "the rpm is not signed (QC criterion GEN_5)"}
    )
    mark = bridge.mail_mark()
    bridge.move(ticket, "Rejected", as_user="qc1")
    assert bridge.state(ticket) == "Rejected"
    bodies = bridge.mail_texts_since(mark)
    to_provider = [body for recipients, body in bodies if "provider1@example.org" in recipients]
    assert to_provider, bodies
    assert any(
        "was rejected and removed from the repository. The reason: the rpm is not signed "
        "(QC criterion GEN_5)" in " ".join(body.split())
        for body in to_provider
    ), to_provider
