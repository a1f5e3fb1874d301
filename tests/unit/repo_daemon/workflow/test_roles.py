"""Roles on the workflow's rows: read and checked by the loader, enforced by the engine with
the actor's roles, worded with their RT groups, and shown by every rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.records import RolloutState as S
from bridge.settings import model as settings_model
from repo_daemon.workflow import engine, loader, model, render
from repo_daemon.workflow.engine import Facts, Outcome

STAGED = loader.load_template("staged")
DIRECT = loader.load_template("direct")
GROUPS = settings_model.DEFAULT_ROLES

HEADER = """
name = "t"
initial = "Submitted"
terminal = ["Production", "Rejected"]
failure_actions = ["comment_failure"]
"""
TABLES = """
[roles]
qc = "quality control"
admin = "release managers"

[states]
Submitted = "new"
Unverified = "published"
Production = "out"
Rejected = "no"
Failed = "broken"
"""
ROWS = [
    "[Submitted] - <Unverified> @qc {freeze_release_xml} -> [Unverified]",
    "[Unverified] - <Production> @admin {promote_to_production} {resolve_ticket} -> [Production]",
    "[Submitted|Unverified|Failed] - <Rejected> @qc @admin {resolve_ticket} -> [Rejected]",
    "[Failed] - <Unverified> @qc ?retrying {freeze_release_xml} -> [Unverified]",
]


def _text(rows: list[str], tables: str = TABLES) -> str:
    return HEADER + "transitions = [\n" + "".join(f"    {r!r},\n" for r in rows) + "]\n" + tables


def _problems(rows: list[str], tables: str = TABLES) -> list[str]:
    with pytest.raises(model.WorkflowInvalid) as caught:
        loader.parse(_text(rows, tables), source="t.toml")
    return caught.value.problems


def _as(*roles: str, actor: str = "someone", **facts: object) -> Facts:
    return Facts(actor=actor, actor_roles=frozenset(roles), **facts)  # type: ignore[arg-type]


# -- the loader ------------------------------------------------------------------------------


def test_rows_keep_their_roles_and_render_them_back() -> None:
    definition = loader.parse(_text(ROWS), source="t.toml")
    assert [row.roles for row in definition.transitions] == [
        ("qc",), ("admin",), ("qc", "admin"), ("qc",)
    ]  # fmt: skip
    assert [row.render() for row in definition.transitions] == ROWS
    assert definition.roles == {"qc": "quality control", "admin": "release managers"}


@pytest.mark.parametrize(
    ("rows", "tables", "problem"),
    [
        (["[Submitted] - <Unverified> @sr {freeze_release_xml} -> [Unverified]", *ROWS[1:]],
         TABLES, "row 1: unknown role @sr; roles ([roles]): @qc, @admin"),
        (["[Submitted] - <Unverified> {freeze_release_xml} @qc -> [Unverified]", *ROWS[1:]],
         TABLES, "row 1: write @qc before the guards and actions"),
        (["[Submitted] - <Unverified> @qc @qc {freeze_release_xml} -> [Unverified]", *ROWS[1:]],
         TABLES, "row 1: @qc appears more than once"),
        (ROWS, TABLES.replace('qc = "quality control"', 'qc = ""'),
         "[roles]: qc must say who they are"),
        (ROWS, TABLES.replace('qc = "quality control"', '"q c" = "x"'),
         "[roles]: 'q c' is not a name"),
        ([*ROWS, "[Submitted] - <Unverified> @qc ?emergency {freeze_release_xml} -> [Unverified]"],
         TABLES, "row 5: never used, row 1 matches first"),
    ],
    ids=["unknown-role", "role-after-action", "role-twice", "role-without-words", "bad-name",
         "hidden-by-same-roles"],
)  # fmt: skip
def test_role_problems_are_named(rows: list[str], tables: str, problem: str) -> None:
    problems = _problems(rows, tables)
    assert any(problem in p for p in problems), problems


def test_a_row_for_other_roles_is_not_hidden_by_an_earlier_one() -> None:
    # The same move for release managers only, after one for QC: not hidden (QC's row does not
    # match a release manager), so the loader accepts it.
    rows = [*ROWS, "[Submitted] - <Unverified> @admin {freeze_release_xml} -> [Unverified]"]
    definition = loader.parse(_text(rows), source="t.toml")
    assert definition.transitions[-1].roles == ("admin",)


def test_every_row_of_the_shipped_workflows_names_its_roles() -> None:
    for definition in (STAGED, DIRECT):
        assert all(row.roles for row in definition.transitions), definition.name
        used = {r for row in definition.transitions for r in row.roles}
        assert used <= set(GROUPS)


# -- the engine ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "asked", "roles", "allowed"),
    [
        (S.UNVERIFIED, S.IN_VERIFICATION, {"qc"}, True),
        (S.UNVERIFIED, S.IN_VERIFICATION, {"sr"}, False),
        (S.IN_VERIFICATION, S.STAGE_ROLLOUT, {"qc"}, True),
        (S.STAGE_ROLLOUT, S.PRODUCTION, {"sr"}, True),
        (S.STAGE_ROLLOUT, S.PRODUCTION, {"qc"}, False),
        (S.STAGE_ROLLOUT, S.PRODUCTION, {"admin"}, False),
        (S.STAGE_ROLLOUT, S.REJECTED, {"sr"}, True),
        (S.STAGE_ROLLOUT, S.IGNORED, {"sr"}, False),
        (S.STAGE_ROLLOUT, S.IGNORED, {"admin"}, True),
        (S.SUBMITTED, S.UNVERIFIED, {"provider"}, False),
        (S.SUBMITTED, S.UNVERIFIED, set(), False),
    ],
)
def test_each_move_is_for_the_roles_its_row_names(
    at: S, asked: S, roles: set[str], allowed: bool
) -> None:
    decision = engine.decide(STAGED, at=at, asked=asked, facts=_as(*roles), role_groups=GROUPS)
    assert (decision.outcome is Outcome.MOVE) is allowed, decision.reason
    if not allowed:
        assert decision.outcome is Outcome.BLOCK
        assert decision.state == at  # put back


def test_a_refusal_says_who_may_make_the_move() -> None:
    decision = engine.decide(
        STAGED, at=S.STAGE_ROLLOUT, asked=S.PRODUCTION, facts=_as("qc", actor="qc1"),
        role_groups=GROUPS,
    )  # fmt: skip
    assert decision.outcome is Outcome.BLOCK
    assert (
        "StageRollout → Production may only be asked for by the staged-rollout team "
        "(@sr, RT group sw-rel-sr), and qc1 is not one of them" in decision.reason
    )
    assert "RolloutProgress stays StageRollout" in decision.reason


def test_only_release_managers_take_an_emergency_straight_to_production() -> None:
    emergency = {"emergency": True}
    for roles, outcome in (({"admin"}, Outcome.MOVE), ({"qc"}, Outcome.BLOCK)):
        decision = engine.decide(
            STAGED, at=S.IN_VERIFICATION, asked=S.PRODUCTION, facts=_as(*roles, **emergency)
        )
        assert decision.outcome is outcome, decision.reason
    refused = engine.decide(
        STAGED, at=S.IN_VERIFICATION, asked=S.PRODUCTION, facts=_as("sr", "qc", **emergency),
        role_groups=GROUPS,
    )  # fmt: skip
    assert "release managers (@admin, RT group sw-rel-admin)" in refused.reason


def test_guards_are_judged_before_roles() -> None:
    # Not an emergency: the refusal is about the guard, whoever asks.
    decision = engine.decide(STAGED, at=S.IN_VERIFICATION, asked=S.PRODUCTION, facts=_as("admin"))
    assert decision.outcome is Outcome.BLOCK
    assert "only an emergency release" in decision.reason


def test_the_bridges_own_moves_need_no_role() -> None:
    facts = Facts(actor="slot freed by #7", actor_roles=None)
    decision = engine.decide(STAGED, at=S.DEFERRED, asked=S.STAGE_ROLLOUT, facts=facts)
    assert decision.outcome is Outcome.MOVE


def test_a_row_without_roles_is_open_to_everyone() -> None:
    rows = [r.replace(" @qc @admin", "").replace(" @qc", "").replace(" @admin", "") for r in ROWS]
    definition = loader.parse(_text(rows), source="t.toml")
    decision = engine.decide(definition, at=S.SUBMITTED, asked=S.UNVERIFIED, facts=_as())
    assert decision.outcome is Outcome.MOVE


def test_who_may_words_several_roles() -> None:
    assert engine.who_may(STAGED, ("qc", "sr", "admin"), GROUPS) == (
        "quality control (@qc, RT group sw-rel-qc), the staged-rollout team (@sr, RT group "
        "sw-rel-sr) or release managers (@admin, RT group sw-rel-admin)"
    )


# -- renderings ------------------------------------------------------------------------------


def test_every_rendering_shows_the_roles_of_each_transition() -> None:
    text = render.as_text(STAGED, GROUPS)
    assert "[StageRollout] - <Production> @sr {@production} -> [Production]" in text
    assert "  @sr: the staged-rollout team (RT group sw-rel-sr)" in text
    assert "    StageRollout --> Production: @sr\n" in render.as_mermaid(STAGED)
    assert '"StageRollout" -> "Production" [label="@sr"];' in render.as_dot(STAGED)


def test_the_refusal_shown_in_the_docs_is_the_one_the_engine_gives() -> None:
    page = (Path(__file__).resolve().parents[4] / "docs" / "workflow.md").read_text()
    shown = page.split("Blocked: StageRollout → Production", 1)[1].split("```", 1)[0]
    decision = engine.decide(
        STAGED, at=S.STAGE_ROLLOUT, asked=S.PRODUCTION, facts=_as("qc", actor="qc1"),
        role_groups=GROUPS,
    )  # fmt: skip
    said = f"Blocked: {decision.reason}."  # as the processor comments it
    assert " ".join(("Blocked: StageRollout → Production" + shown).split()) == " ".join(
        said.split()
    )
