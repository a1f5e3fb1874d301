"""The backfill's plan: RT's history of one ticket → the records, or why it is skipped."""

from __future__ import annotations

from datetime import datetime

from bridge import records
from bridge.settings import model as settings_model
from bridge.tracker import history
from repo_daemon.metrics import backfill_plan as plan

S = records.RolloutState
TEAMS = (
    settings_model.EarlyAdopterTeam(name="de-kit", ngi="NGI_DE", group="g", major_releases=()),
)


def ticket(progress: str = "Production", **fields: str) -> history.QueueTicket:
    values = {"RolloutProgress": (progress,), "AssociatedMajorRelease": ("UMD-5",), **{
        k.replace("_", " "): (v,) for k, v in fields.items()}}  # fmt: skip
    return history.QueueTicket(ticket_id=7, created="2026-01-01T09:00:00Z", creator="prov",
                               status="open", custom_fields=values)  # fmt: skip


def change(
    txn: int, day: int, old: str, new: str, field: str = "RolloutProgress"
) -> history.FieldChange:
    return history.FieldChange(transaction_id=txn, ticket_id=7, field_id=1, old=old, new=new,
                               actor=f"a{txn}", created=f"2026-01-{day:02d}T10:00:00Z",
                               field=field)  # fmt: skip


def test_stays_follow_rt_times_even_when_ids_are_out_of_order() -> None:
    planned = plan.plan(
        ticket("StageRollout"),
        [change(9, 3, "Unverified", "StageRollout"), change(5, 2, "", "Unverified")],
        TEAMS,
    )
    assert isinstance(planned, plan.ReleasePlan)
    assert [(s.state, s.entered_at.day, s.actor) for s in planned.stays] == [
        (S.SUBMITTED, 1, "prov"), (S.UNVERIFIED, 2, "a5"), (S.STAGE_ROLLOUT, 3, "a9")]  # fmt: skip
    assert planned.stays[0].left_at == datetime(2026, 1, 2, 10)
    assert planned.stays[-1].left_at is None
    assert planned.major_release == "UMD-5" and planned.last_transaction_id == 9


def test_an_unknown_value_skips_the_ticket_with_the_reason() -> None:
    skipped = plan.plan(ticket("Nearly"), [change(5, 2, "", "Nearly")], TEAMS)
    assert isinstance(skipped, plan.Skipped)
    assert "'Nearly', not a state the bridge knows" in skipped.reason


def test_a_history_not_ending_in_the_current_value_is_skipped() -> None:
    skipped = plan.plan(ticket("Production"), [change(5, 2, "", "Unverified")], TEAMS)
    assert isinstance(skipped, plan.Skipped)
    assert "ends in Unverified but RolloutProgress is Production" in skipped.reason


def test_acceptances_withdrawals_unknown_and_late_teams() -> None:
    planned = plan.plan(
        ticket("Production"),
        [
            change(2, 2, "", "StageRollout"),
            change(3, 3, "", "de-kit", "EarlyAdopters"),
            change(4, 4, "de-kit", "", "EarlyAdopters"),
            change(5, 4, "", "xx", "EarlyAdopters"),
            change(6, 5, "StageRollout", "Production"),
            change(7, 6, "", "de-kit", "EarlyAdopters"),
        ],
        TEAMS,
    )
    assert isinstance(planned, plan.ReleasePlan)
    (accepted,) = planned.acceptances
    assert (accepted.team, accepted.ngi, accepted.accepted_by) == ("de-kit", "NGI_DE", "a3")
    assert accepted.withdrawn_at == datetime(2026, 1, 4, 10) and accepted.withdrawn_by == "a4"
    assert len(planned.notes) == 2
    assert "'xx' is not an early-adopter team" in planned.notes[0]
    assert "after the release was final" in planned.notes[1]


def test_only_the_first_report_counts() -> None:
    planned = plan.plan(
        ticket("Submitted", StageRollout_Report="https://r/2"),
        [change(3, 3, "", "https://r/1", "StageRollout Report"),
         change(4, 4, "https://r/1", "https://r/2", "StageRollout Report")],
        TEAMS,
    )  # fmt: skip
    assert isinstance(planned, plan.ReleasePlan)
    assert planned.stage_report_at == datetime(2026, 1, 3, 10)
    assert [s.state for s in planned.stays] == [S.SUBMITTED]
