"""Early adopters' rules, pure: who is told on entry into staged rollout, what adding a team to
or removing it from EarlyAdopters means (recorded, watching, commented), and what is ignored."""

from __future__ import annotations

from dataclasses import replace

from bridge.records import RolloutState as S
from bridge.records import TrackedField
from repo_daemon.workflow import early_adopters, effects
from tests.unit.repo_daemon.workflow.conftest import (
    NOW,
    TEAMS,
    MakeChangeInputs,
    MakeInputs,
    accepted,
)

ADOPTERS = TrackedField.EARLY_ADOPTERS


def _of(kind: type, found: tuple[effects.Effect, ...]) -> list[effects.Effect]:
    return [e for e in found if isinstance(e, kind)]


def test_only_the_teams_of_the_major_release_are_told(make_inputs: MakeInputs) -> None:
    inputs = replace(make_inputs(S.IN_VERIFICATION, S.STAGE_ROLLOUT), early_adopters=TEAMS)
    result = early_adopters.tell_early_adopters(inputs)
    assert _of(effects.TellGroups, result.effects) == [
        effects.TellGroups(groups=("ea-desy", "ea-infn"))
    ]
    (comment,) = _of(effects.Comment, result.effects)
    assert isinstance(comment, effects.Comment)
    assert "desy (NGI_DE), infn (NGI_IT)" in comment.text and "cesnet" not in comment.text
    assert "add your team to the ticket's EarlyAdopters field" in comment.text


def test_teams_that_accepted_already_are_not_told_again(make_inputs: MakeInputs) -> None:
    inputs = replace(
        make_inputs(S.DEFERRED, S.STAGE_ROLLOUT), early_adopters=TEAMS, accepted=accepted("desy")
    )
    result = early_adopters.tell_early_adopters(inputs)
    assert _of(effects.TellGroups, result.effects) == [effects.TellGroups(groups=("ea-infn",))]


def test_a_major_release_nobody_adopts_tells_nobody(make_inputs: MakeInputs) -> None:
    inputs = replace(
        make_inputs(S.IN_VERIFICATION, S.STAGE_ROLLOUT, AssociatedMajorRelease="CAs"),
        early_adopters=TEAMS,
    )
    result = early_adopters.tell_early_adopters(inputs)
    assert result.effects == ()
    assert result.detail == "no early-adopter team of CAs to tell"


def test_accepted_teams_watch_the_ticket_in_every_state(make_inputs: MakeInputs) -> None:
    inputs = replace(
        make_inputs(S.STAGE_ROLLOUT, S.PRODUCTION),
        early_adopters=TEAMS,
        accepted=accepted("infn", "gone"),  # a team the settings no longer know: left out
    )
    assert inputs.cc(S.PRODUCTION) == ("sw-rel-production", "ea-infn")
    assert inputs.cc(S.STAGE_ROLLOUT) == ("sw-rel-sr", "ea-infn")


def test_a_team_added_accepts_is_recorded_and_watches(
    make_change_inputs: MakeChangeInputs,
) -> None:
    inputs = make_change_inputs(
        ADOPTERS, "", "desy", actor="site1", standing=accepted("infn"),
        actor_groups=frozenset({"ea-desy"}),  # a member of the team
    )  # fmt: skip
    handling = early_adopters.early_adopters_changed(inputs)
    assert handling.close_as is None
    assert _of(effects.RecordAcceptance, handling.effects) == [
        effects.RecordAcceptance(
            team="desy",
            ngi="NGI_DE",
            major_release="UMD-5",
            actor="site1",
            at=NOW,
            transaction_id=200,
        )
    ]
    assert _of(effects.SetWatchers, handling.effects) == [
        effects.SetWatchers(cc=("sw-rel-sr", "ea-infn", "ea-desy"), admin_cc=("sw-rel-admin",))
    ]
    (comment,) = _of(effects.Comment, handling.effects)
    assert isinstance(comment, effects.Comment)
    assert "desy (NGI_DE) takes part in the staged rollout (added by site1" in comment.text


def test_the_acceptance_time_is_rts_or_else_when_the_bridge_heard_of_it(
    make_change_inputs: MakeChangeInputs,
) -> None:
    inputs = make_change_inputs(ADOPTERS, "", "desy", changed_at=None)
    handling = early_adopters.early_adopters_changed(inputs)
    (record,) = _of(effects.RecordAcceptance, handling.effects)
    assert isinstance(record, effects.RecordAcceptance)
    assert record.at == inputs.job.created_at


def test_a_team_removed_withdraws_and_stops_watching(
    make_change_inputs: MakeChangeInputs,
) -> None:
    inputs = make_change_inputs(
        ADOPTERS, "desy", "", actor="sr1", standing=accepted("desy", "infn")
    )
    handling = early_adopters.early_adopters_changed(inputs)
    assert _of(effects.WithdrawAcceptance, handling.effects) == [
        effects.WithdrawAcceptance(team="desy", actor="sr1", at=NOW, transaction_id=200)
    ]
    assert _of(effects.SetWatchers, handling.effects) == [
        effects.SetWatchers(cc=("sw-rel-sr", "ea-infn"), admin_cc=("sw-rel-admin",))
    ]
    assert "no longer takes part" in str(_of(effects.Comment, handling.effects))


def test_an_unknown_name_is_commented_and_ignored(make_change_inputs: MakeChangeInputs) -> None:
    handling = early_adopters.early_adopters_changed(make_change_inputs(ADOPTERS, "", "cern"))
    assert handling.effects == (
        effects.Comment(
            text="EarlyAdopters: 'cern' (added by sr1) is not an early-adopter team the bridge "
            "knows (known: desy, infn, cesnet); it is ignored."
        ),
    )


def test_a_final_release_takes_no_more_early_adopters(
    make_change_inputs: MakeChangeInputs,
) -> None:
    handling = early_adopters.early_adopters_changed(
        make_change_inputs(ADOPTERS, "", "desy", at=S.PRODUCTION)
    )
    assert _of(effects.RecordAcceptance, handling.effects) == []
    assert "Production (final): too late to take part; not recorded" in str(handling.effects)


def test_nothing_happens_twice(make_change_inputs: MakeChangeInputs) -> None:
    again = make_change_inputs(ADOPTERS, "", "desy", standing=accepted("desy"))
    assert early_adopters.early_adopters_changed(again).effects == ()
    never = make_change_inputs(ADOPTERS, "infn", "", standing=accepted("desy"))
    assert early_adopters.early_adopters_changed(never).effects == ()


def test_a_team_added_by_someone_neither_of_it_nor_of_sr_is_taken_off(
    make_change_inputs: MakeChangeInputs,
) -> None:
    inputs = make_change_inputs(
        ADOPTERS, "", "desy", actor="petr", actor_groups=frozenset({"ea-cesnet"}),
        EarlyAdopters="desy",  # what RT shows now
    )  # fmt: skip
    handling = early_adopters.early_adopters_changed(inputs)
    assert _of(effects.RecordAcceptance, handling.effects) == []
    assert _of(effects.SetFields, handling.effects) == [
        effects.SetFields(fields={"EarlyAdopters": ()})
    ]
    assert _of(effects.Comment, handling.effects) == [
        effects.Comment(
            text="EarlyAdopters: only the staged-rollout team (sw-rel-sr) or the members of "
            "desy's group (ea-desy) may add desy; petr is in neither, so the bridge took it off "
            "again."
        )
    ]
    gone = make_change_inputs(ADOPTERS, "", "desy", actor="petr", actor_groups=frozenset())
    assert _of(effects.SetFields, early_adopters.early_adopters_changed(gone).effects) == []
