"""The ticket is parsed once, with one rule for each business fact."""

from __future__ import annotations

from bridge.records import RolloutState as S
from repo_daemon.workflow import loader
from repo_daemon.workflow.gather import People, TicketView
from tests.unit.repo_daemon.workflow.conftest import MakeInputs, ticket


def test_the_major_release_is_the_tickets_associated_major_release() -> None:
    view = TicketView.of(ticket(AssociatedMajorRelease="  UMD-6 "))
    assert view.major_release == "UMD-6"
    assert TicketView.of(ticket(AssociatedMajorRelease="")).major_release is None


def test_emergency_only_when_the_field_says_yes() -> None:
    assert TicketView.of(ticket(EmergencyRelease="Yes")).emergency
    for value in ("No", "", "yes please"):
        assert not TicketView.of(ticket(EmergencyRelease=value)).emergency


def test_an_empty_rolloutprogress_is_submitted_and_empty_fields_are_none() -> None:
    view = TicketView.of(ticket(RolloutProgress="", **{"Sync-URL": " "}))
    assert view.progress is S.SUBMITTED
    assert view.sync_url is None
    assert view.sync_protocol == "rsync"


def test_cc_comes_from_the_definition_unless_settings_override_it() -> None:
    staged = loader.load_template("staged")
    people = People(cc_overrides={"Production": ("ops",)}, admin_cc=("sw-rel-admin",))
    assert people.cc(staged, S.UNVERIFIED) == ("sw-rel-qc",)
    assert people.cc(staged, S.PRODUCTION) == ("ops",)
    assert people.cc(staged, S.REJECTED) == ()


def test_release_xml_is_read_once_and_only_when_asked(make_inputs: MakeInputs) -> None:
    reads: list[int] = []
    inputs = make_inputs(S.SUBMITTED, S.UNVERIFIED)
    read = inputs.read_release_xml
    object.__setattr__(inputs, "read_release_xml", lambda: (reads.append(1), read())[1])
    assert reads == []
    first, second = inputs.release_xml, inputs.release_xml
    assert first is second and reads == [1]


def test_where_it_comes_from_and_goes_to(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    assert (inputs.came_from, inputs.going_to) == (S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    assert not inputs.automatic


def test_the_owner_of_a_state_comes_from_settings_or_the_definition_or_is_kept() -> None:
    staged = loader.load_template("staged")
    people = People(
        cc_overrides={}, admin_cc=("sw-rel-admin",), owner_overrides={"InVerification": "qc1"}
    )
    assert people.owner(staged, S.IN_VERIFICATION) == "qc1"
    assert people.owner(staged, S.STAGE_ROLLOUT) is None  # the shipped definitions name none
    text = loader.template_text("staged").replace(
        'cc = ["sw-rel-sr"]',
        'cc = ["sw-rel-sr"]\nowner = "srlead"',
    )
    own = loader.parse(text, source="staged.toml with an owner")
    assert people.owner(own, S.STAGE_ROLLOUT) == "srlead"
