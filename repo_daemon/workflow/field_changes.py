"""Changes that are not RolloutProgress moves: the registry saying which handler each followed
field (``records.TrackedField``) has, and the small handlers of the staged-rollout report and
EmergencyRelease.

The processor looks a change's field up here, as it looks actions up in ``actions``: one entry
per field, no ``if`` on names. A handler takes the gathered ``ChangeInputs`` and returns an
``effects.Handling`` (effects, and for a ticket closed by hand the state the workflow closes
the release in); it writes nothing. The early adopters' rules are ``early_adopters``', the
status's ``hand_changes``'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.records import RolloutState, TrackedField
from repo_daemon.workflow import early_adopters, effects, hand_changes
from repo_daemon.workflow.gather import ChangeInputs

FieldHandler = Callable[[ChangeInputs], effects.Handling]


@dataclass(frozen=True, kw_only=True)
class FieldKind:
    """The handling of changes of one followed field."""

    field: TrackedField
    description: str
    handler: FieldHandler


def stage_report_filled(inputs: ChangeInputs) -> effects.Handling:
    """Record when the StageRollout Report was first filled in (what the time from staged
    rollout to the report is measured to); later edits and emptying it change nothing."""
    if not inputs.request.new_value.strip():
        return effects.Handling(detail="StageRollout Report emptied; nothing recorded")
    return effects.Handling(
        detail=f"StageRollout Report filled in at {inputs.changed_at:%Y-%m-%d %H:%M:%S} UTC",
        effects=(effects.RecordStageReport(at=inputs.changed_at),),
    )


def emergency_changed(inputs: ChangeInputs) -> effects.Handling:
    """Keep EmergencyRelease on the release's record (the guards read it) and say what it
    means for an open release."""
    emergency = inputs.request.new_value.strip() == "Yes"
    record = effects.RecordEmergency(emergency=emergency)
    if inputs.final:
        return effects.Handling(
            detail=f"EmergencyRelease {emergency}; release final", effects=(record,)
        )
    actor = inputs.request.actor or "someone"
    state = inputs.release.state
    if emergency:
        text = (
            f"EmergencyRelease set to Yes by {actor}: the release may go to Production without "
            "staged rollout and is never Deferred."
        )
        if state is RolloutState.DEFERRED:
            text += " It is Deferred now: set RolloutProgress to StageRollout or Production."
    else:
        text = (
            f"EmergencyRelease set to {inputs.request.new_value or 'nothing'} by {actor}: the "
            "release takes the regular path (staged rollout, one release per major release)."
        )
    return effects.Handling(
        detail=f"EmergencyRelease {'Yes' if emergency else 'No'}",
        effects=(record, effects.Comment(text=text)),
    )


_KINDS = (
    FieldKind(
        field=TrackedField.EARLY_ADOPTERS,
        description="an early-adopter team accepts (added) or withdraws (removed)",
        handler=early_adopters.early_adopters_changed,
    ),
    FieldKind(
        field=TrackedField.STAGE_ROLLOUT_REPORT,
        description="record when the staged-rollout report was first filled in",
        handler=stage_report_filled,
    ),
    FieldKind(
        field=TrackedField.EMERGENCY_RELEASE,
        description="keep EmergencyRelease on the record and say what it means",
        handler=emergency_changed,
    ),
    FieldKind(
        field=TrackedField.STATUS,
        description="a ticket closed by hand closes its open release; reopened: a comment",
        handler=hand_changes.status_changed,
    ),
)

REGISTRY: Mapping[TrackedField, FieldKind] = {k.field: k for k in _KINDS}
