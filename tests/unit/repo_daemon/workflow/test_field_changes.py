"""The registry of changes that are not RolloutProgress moves, and the handlers of the
staged-rollout report and EmergencyRelease (pure)."""

from __future__ import annotations

from bridge.records import RolloutState as S
from bridge.records import TrackedField
from repo_daemon.workflow import effects, field_changes
from tests.unit.repo_daemon.workflow.conftest import NOW, MakeChangeInputs


def test_every_followed_field_but_rolloutprogress_has_one_handler() -> None:
    assert set(field_changes.REGISTRY) == set(TrackedField) - {TrackedField.ROLLOUT_PROGRESS}
    for field, kind in field_changes.REGISTRY.items():
        assert kind.field is field and kind.description


def test_the_report_time_is_recorded_when_it_is_filled_in(
    make_change_inputs: MakeChangeInputs,
) -> None:
    report = TrackedField.STAGE_ROLLOUT_REPORT
    filled = field_changes.stage_report_filled(make_change_inputs(report, "", "https://wiki/r"))
    assert filled.effects == (effects.RecordStageReport(at=NOW),)
    emptied = field_changes.stage_report_filled(make_change_inputs(report, "https://wiki/r", ""))
    assert emptied.effects == ()


def test_an_emergency_is_recorded_and_explained(make_change_inputs: MakeChangeInputs) -> None:
    field = TrackedField.EMERGENCY_RELEASE
    made = field_changes.emergency_changed(
        make_change_inputs(field, "No", "Yes", at=S.DEFERRED, actor="mgr")
    )
    assert made.effects == (
        effects.RecordEmergency(emergency=True),
        effects.Comment(
            text="EmergencyRelease set to Yes by mgr: the release may go to Production without "
            "staged rollout and is never Deferred. It is Deferred now: set RolloutProgress to "
            "StageRollout or Production."
        ),
    )
    unmade = field_changes.emergency_changed(make_change_inputs(field, "Yes", "No"))
    assert unmade.effects[0] == effects.RecordEmergency(emergency=False)
    assert "takes the regular path" in str(unmade.effects[1])
    final = field_changes.emergency_changed(make_change_inputs(field, "No", "Yes", at=S.PRODUCTION))
    assert final.effects == (effects.RecordEmergency(emergency=True),)
