"""Early adopters per product against a real RT 5, with real users in real groups: two teams of
one major release and one of another; only the first two are told when a release enters staged
rollout, the one that accepts (a member adds the team to EarlyAdopters as themselves) becomes
a Cc of the ticket and stays one, and its acceptance time — RT's — is stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.rt_setup import apply
from bridge.secrets import Secret
from bridge.settings import model as settings_model
from bridge.store import early_adopters as acceptances
from bridge.tracker import history
from bridge.tracker.client import TrackerClient
from tests.support import rt_people
from tests.support.workflow_harness import Bridge, running_bridge

pytestmark = pytest.mark.rt

TEAMS = (
    settings_model.EarlyAdopterTeam(
        name="desy", ngi="NGI_DE", group="ea-desy", major_releases=("EA-5",)
    ),
    settings_model.EarlyAdopterTeam(
        name="infn", ngi="NGI_IT", group="ea-infn", major_releases=("EA-5",)
    ),
    settings_model.EarlyAdopterTeam(
        name="cesnet", ngi="NGI_CZ", group="ea-cesnet", major_releases=("EA-6",)
    ),
)
MEMBERS = {"ea-desy": "anna", "ea-infn": "ivo", "ea-cesnet": "petr"}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(
        tmp_path_factory.mktemp("early-adopters"),
        workflow_settings=settings_model.WorkflowSettings(early_adopters=TEAMS),
    ) as running:
        root = settings_model.TrackerSettings(
            url=running.info.web_url,
            user=running.info.root_user,
            password=Secret(running.info.root_password),
        )
        # `rollout tracker init` with the teams: their groups, EarlyAdopters' values, rights.
        report = apply.apply_setup(root, "sw-rel", teams=TEAMS)
        assert report.complete
        created = {
            n for kind, n, outcome in report.items if kind == "group" and outcome == "created"
        }
        assert created == set(MEMBERS)
        for group, name in MEMBERS.items():
            rt_people.person(running.info, name, group).close()
        yield running


@pytest.fixture
def anna(bridge: Bridge) -> Iterator[TrackerClient]:
    client = rt_people.person(bridge.info, "anna", "ea-desy")
    yield client
    client.close()


def _recipients(bridge: Bridge, mark: int) -> set[str]:
    return set().union(*(to for to, _ in bridge.mails_since(mark)))


def test_only_the_teams_of_the_major_release_are_told_and_the_one_that_accepts_watches(
    bridge: Bridge, anna: TrackerClient
) -> None:
    ticket = bridge.file_release("EA-5")
    bridge.move(ticket, "Unverified")
    bridge.move(ticket, "InVerification")
    mark = bridge.mail_mark()
    bridge.move(ticket, "StageRollout")
    assert bridge.state(ticket) == "StageRollout"
    told = _recipients(bridge, mark)
    assert {"anna@example.org", "ivo@example.org"} <= told
    assert "petr@example.org" not in told  # cesnet adopts EA-6
    # Told, not watching: the teams were Cc of that comment only.
    assert set(bridge.manager.get_ticket(ticket).cc_groups()) == {"sw-rel-sr"}
    assert any("Early adopters of EA-5: desy (NGI_DE), infn (NGI_IT)" in c
               for c in bridge.comments(ticket))  # fmt: skip

    mark = bridge.mail_mark()
    anna.set_custom_fields(ticket, {"EarlyAdopters": ["desy"]})  # as herself, by her rights
    bridge.drain()
    assert set(bridge.manager.get_ticket(ticket).cc_groups()) == {"sw-rel-sr", "ea-desy"}
    assert "ivo@example.org" not in _recipients(bridge, mark)  # infn did not accept
    (added,) = [
        t for t in bridge.manager.transactions_of(ticket)
        if t["Type"] == "CustomField" and t["NewValue"] == "desy"
    ]  # fmt: skip
    (acceptance,) = acceptances.AcceptanceStore(bridge.queue.engine).of_release(ticket)
    assert (acceptance.team, acceptance.ngi, acceptance.major_release, acceptance.accepted_by) == (
        "desy", "NGI_DE", "EA-5", "anna",
    )  # fmt: skip
    assert acceptance.accepted_at == history.parse_time(str(added["Created"]))
    assert acceptance.transaction_id == int(added["id"])
    assert (
        "desy (NGI_DE) takes part in the staged rollout (added by anna"
        in bridge.comments(ticket)[-1]
    )

    bridge.move(ticket, "Production")
    assert set(bridge.manager.get_ticket(ticket).cc_groups()) == {"sw-rel-production", "ea-desy"}


def test_the_team_of_the_other_major_release_is_told_of_its_own(bridge: Bridge) -> None:
    ticket = bridge.file_release("EA-6")
    bridge.move(ticket, "Unverified")
    bridge.move(ticket, "InVerification")
    mark = bridge.mail_mark()
    bridge.move(ticket, "StageRollout")
    told = _recipients(bridge, mark)
    assert "petr@example.org" in told
    assert not {"anna@example.org", "ivo@example.org"} & told


def test_a_team_added_by_someone_outside_it_is_taken_off_again(bridge: Bridge) -> None:
    ticket = bridge.file_release("EA-5")
    for state in ("Unverified", "InVerification", "StageRollout"):
        bridge.move(ticket, state)
    petr = rt_people.person(bridge.info, "petr", "ea-cesnet")
    try:
        petr.set_custom_fields(ticket, {"EarlyAdopters": ["desy"]})  # RT lets him
    finally:
        petr.close()
    bridge.drain()
    after = bridge.manager.get_ticket(ticket)
    assert after.custom_fields.get("EarlyAdopters", ()) == ()
    assert "ea-desy" not in after.cc_groups()
    assert acceptances.AcceptanceStore(bridge.queue.engine).of_release(ticket) == ()
    assert "petr is in neither, so the bridge took it off again" in bridge.comments(ticket)[-1]
