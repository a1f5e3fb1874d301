"""Folding effects into one write-back."""

from __future__ import annotations

from repo_daemon.workflow import effects
from repo_daemon.workflow.ticket_plan import TicketPlan


def test_headlines_come_first_later_fields_and_watchers_win() -> None:
    plan = TicketPlan.from_effects(
        [
            effects.Comment(text="note from a step"),
            effects.SetFields(fields={"A": "1"}),
            effects.SetWatchers(cc=("x",), admin_cc=("a",)),
            effects.Comment(text="headline", headline=True),
            effects.Reply(text="to the provider"),
            effects.SetFields(fields={"A": "2", "B": "3"}),
            effects.SetWatchers(cc=("y",), admin_cc=("a",)),
            effects.Resolve(),
            effects.MoveNextDeferredIn(major_release="UMD-5"),
        ]
    )
    assert plan.comments == ("headline", "note from a step")
    assert dict(plan.fields) == {"A": "2", "B": "3"}
    assert (plan.cc, plan.admin_cc) == (("y",), ("a",))
    assert plan.replies == ("to the provider",)
    assert plan.resolve
    assert plan.follow_ups == (effects.MoveNextDeferredIn(major_release="UMD-5"),)


def test_no_effects_change_nothing() -> None:
    plan = TicketPlan.from_effects([])
    assert (plan.cc, plan.admin_cc, plan.resolve, plan.comments, dict(plan.fields)) == (
        None, None, False, (), {}
    )  # fmt: skip


def test_the_last_owner_wins() -> None:
    plan = TicketPlan.from_effects([effects.SetOwner(owner="qc1"), effects.SetOwner(owner="sr1")])
    assert plan.owner == "sr1"
    assert TicketPlan.from_effects([]).owner is None
