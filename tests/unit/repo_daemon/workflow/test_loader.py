"""Loading workflow definitions: every start-up error is named, with where it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.records import RolloutState as S
from bridge.settings import model as settings_model
from repo_daemon.workflow import loader, model, render
from tests.support import paths

HEADER = """
name = "t"
initial = "Submitted"
terminal = ["Production", "Rejected"]
failure_actions = ["comment_failure"]
"""
STATES = """
[states]
Submitted = "new"
Unverified = "published"
Production = "out"
Rejected = "no"
Failed = "broken"
"""
GOOD_ROWS = [
    "[Submitted] - <Unverified> {freeze_release_xml} -> [Unverified]",
    "[Unverified] - <Production> {promote_to_production} {resolve_ticket} -> [Production]",
    "[Submitted|Unverified|Failed] - <Rejected> {resolve_ticket} -> [Rejected]",
    "[Failed] - <Unverified> ?retrying {freeze_release_xml} -> [Unverified]",
]


def _text(rows: list[str], states: str = STATES, header: str = HEADER) -> str:
    table = "transitions = [\n" + "".join(f"    {r!r},\n" for r in rows) + "]\n"
    return header + table + states


def _problems(rows: list[str], **kw: str) -> list[str]:
    with pytest.raises(model.WorkflowInvalid) as caught:
        loader.parse(_text(rows, **kw), source="test.toml")
    assert "workflow test.toml is invalid" in str(caught.value)
    return caught.value.problems


def test_a_good_definition_loads() -> None:
    definition = loader.parse(_text(GOOD_ROWS), source="test.toml")
    assert [t.label for t in definition.allowed_targets(definition.initial)] == [
        "Unverified",
        "Rejected",
    ]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["[Submitted] - <Shipped> -> [Unverified]", *GOOD_ROWS],
         "row 1: unknown state 'Shipped'"),
        (["[Submitted] - <Unverified> {teleport} -> [Unverified]", *GOOD_ROWS],
         "row 1: unknown action {teleport}"),
        (["[Submitted] - <Unverified> ?full_moon -> [Unverified]", *GOOD_ROWS],
         "row 1: unknown guard ?full_moon"),
        (["Submitted to Unverified", *GOOD_ROWS], "row 1: cannot read 'Submitted to Unverified'"),
        ([*GOOD_ROWS, "[Production] - <Unverified> {freeze_release_xml} -> [Unverified]"],
         "row 5: leaves the final state Production for the open state Unverified; a row from "
         "a final state must end in a final state"),
        ([GOOD_ROWS[0], "[Unverified] - <Production> {promote_to_production} -> [Production]",
          *GOOD_ROWS[2:]],
         "row 2: ends in the final state Production without an action that resolves the ticket"),
        ([*GOOD_ROWS, "[Unverified] - <Production> ?emergency {resolve_ticket} -> [Production]"],
         "row 5: never used, row 2 matches first"),
        ([*GOOD_ROWS, "[Unverified] - <Failed> -> [Failed]"],
         "row 5: Failed is set by the bridge, not asked for"),
        ([*GOOD_ROWS, "[Unverified] - <Submitted> ?retrying -> [Submitted]"],
         "row 5: ?retrying only makes sense from [Failed]"),
        ([*GOOD_ROWS,
          "[Unverified] - <Rejected> ?slot_free ?slot_taken {resolve_ticket} -> [Rejected]"],
         "row 5: its guards contradict each other"),
        (GOOD_ROWS[1:3], "state Unverified cannot be reached from Submitted"),
        ([GOOD_ROWS[0], GOOD_ROWS[3],
          "[Submitted|Failed] - <Rejected> {resolve_ticket} -> [Rejected]",
          "[Submitted] - <Production> ?emergency {resolve_ticket} -> [Production]"],
         "state Unverified is not final but no row leaves it"),
    ],
    ids=[
        "unknown-state", "unknown-action", "unknown-guard", "unreadable-row", "exit-from-final",
        "final-without-resolve", "hidden-row", "asks-for-failed", "retrying-elsewhere",
        "contradiction", "unreachable", "dead-end",
    ],
)  # fmt: skip
def test_start_up_errors_are_named(rows: list[str], problem: str) -> None:
    problems = _problems(rows)
    assert any(problem in p for p in problems), problems


def test_a_row_may_leave_a_final_state_for_another_final_state() -> None:
    # "Final" means the ticket is resolved there (a withdrawal from Production, say).
    rows = [*GOOD_ROWS, "[Production] - <Rejected> {resolve_ticket} -> [Rejected]"]
    definition = loader.parse(_text(rows), source="test.toml")
    assert definition.allowed_targets(S.PRODUCTION) == (S.REJECTED,)
    unresolved = [*GOOD_ROWS, "[Production] - <Rejected> {freeze_release_xml} -> [Rejected]"]
    assert (
        "row 5: ends in the final state Rejected without an action that resolves the ticket "
        "({resolve_ticket})" in _problems(unresolved)
    )


def test_every_problem_is_reported_at_once() -> None:
    rows = ["[Submitted] - <Shipped> {teleport} -> [Unverified]", *GOOD_ROWS]
    problems = _problems(rows)
    assert len(problems) == 2


def test_states_need_descriptions_and_header_keys() -> None:
    assert "[states]: Unverified has no description" in _problems(
        GOOD_ROWS, states=STATES.replace('"published"', '""')
    )
    assert "missing 'initial'" in _problems(GOOD_ROWS, header='name = "t"\nterminal = []\n')


def test_bad_toml_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(model.WorkflowInvalid, match="not valid TOML"):
        loader.parse("name = ", source="x.toml")
    with pytest.raises(model.WorkflowInvalid, match="cannot read it"):
        loader.load_file(tmp_path / "missing.toml")
    with pytest.raises(model.WorkflowInvalid, match="no workflow template 'fast'"):
        loader.load_template("fast")


def test_a_file_of_ones_own_loads(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(_text(GOOD_ROWS))
    assert loader.load_file(path).name == "t"


@pytest.mark.parametrize("name", loader.TEMPLATES)
def test_renderings_name_every_state_and_edge(name: str) -> None:
    definition = loader.load_template(name)
    text = render.as_text(definition)
    mermaid = render.as_mermaid(definition)
    dot = render.as_dot(definition)
    for state in definition.states:
        assert state.label in text
        assert state.label in mermaid
        assert f'"{state.label}"' in dot
    assert mermaid.startswith("stateDiagram-v2\n    [*] --> Submitted\n")
    assert dot.startswith(f'digraph "{name}" {{') and dot.rstrip().endswith("}")
    for row in definition.transitions:
        assert row.render() in text


def test_docs_show_the_shipped_workflows() -> None:
    docs = (paths.ROOT / "docs" / "workflow.md").read_text()
    for name in loader.TEMPLATES:
        definition = loader.load_template(name)
        shown_text = render.as_text(definition, settings_model.DEFAULT_ROLES)
        for shown in (render.as_mermaid(definition), shown_text):
            assert f"\n{shown.rstrip()}\n```" in docs, (
                f"docs/workflow.md is stale for {name}: run scripts/render_workflow_docs.py"
            )


def test_only_the_direct_workflow_goes_from_verification_to_production() -> None:
    edge = "InVerification --> Production"
    assert edge in render.as_mermaid(loader.load_template("direct"))
    staged = render.as_mermaid(loader.load_template("staged"))
    # staged: only an emergency, asked for by a release manager, skips staged rollout
    edges = [line.strip() for line in staged.splitlines() if line.strip().startswith(edge)]
    assert edges == [f"{edge}: @admin ?emergency"]


GROUPS = """
[groups]
intake = ["check_fields", "freeze_release_xml", "notify_watchers"]
"""


def test_groups_expand_in_order_and_render_as_written() -> None:
    rows = ["[Submitted] - <Unverified> {@intake} {sync_packages} -> [Unverified]", *GOOD_ROWS[1:]]
    definition = loader.parse(_text(rows, states=GROUPS + STATES), source="test.toml")
    row = definition.transitions[0]
    assert row.actions == ("check_fields", "freeze_release_xml", "notify_watchers", "sync_packages")
    assert row.render() == rows[0]
    assert definition.groups == {"intake": GOOD_GROUP}


GOOD_GROUP = ("check_fields", "freeze_release_xml", "notify_watchers")


@pytest.mark.parametrize(
    ("groups", "row", "problem"),
    [
        (GROUPS, "[Submitted] - <Unverified> {@stage} -> [Unverified]",
         "row 1: unknown group {@stage}; groups: @intake"),
        ('[groups]\nintake = ["check_fields", "teleport"]\n',
         "[Submitted] - <Unverified> {@intake} -> [Unverified]",
         "[groups]: intake: unknown action {teleport}"),
        ('[groups]\nintake = []\n', "[Submitted] - <Unverified> {@intake} -> [Unverified]",
         "[groups]: intake must be a non-empty list of actions"),
        (GROUPS, "[Submitted] - <Unverified> {@intake} {check_fields} -> [Unverified]",
         "row 1: {check_fields} appears more than once"),
    ],
    ids=["unknown-group", "unknown-action-in-group", "empty-group", "action-twice"],
)  # fmt: skip
def test_group_problems_are_named(groups: str, row: str, problem: str) -> None:
    problems = _problems([row, *GOOD_ROWS[1:]], states=groups + STATES)
    assert any(problem in p for p in problems), problems


def test_a_state_table_says_what_people_are_told_and_who_is_cc() -> None:
    states = STATES.replace(
        'Unverified = "published"',
        'Unverified = { description = "published", news = "Look.", reply = "Yours: {subject}",'
        ' cc = ["sw-rel-qc"] }',
    )
    definition = loader.parse(_text(GOOD_ROWS, states=states), source="test.toml")
    info = definition.info(loader.RolloutState.UNVERIFIED)
    assert (info.description, info.news, info.reply, info.cc) == (
        "published",
        "Look.",
        "Yours: {subject}",
        ("sw-rel-qc",),
    )
    assert definition.info(loader.RolloutState.SUBMITTED).cc == ()


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('{ description = "p", colour = "red" }',
         "[states]: Unverified: unknown keys colour (description, news, reply, cc, owner)"),
        ('{ description = "p", cc = "sw-rel-qc" }',
         "[states]: Unverified: cc must be a list of RT group names"),
        ("3", "[states]: Unverified: write a description, or a table"),
    ],
    ids=["unknown-key", "cc-not-a-list", "not-a-table"],
)  # fmt: skip
def test_state_table_problems_are_named(table: str, problem: str) -> None:
    states = STATES.replace('Unverified = "published"', f"Unverified = {table}")
    problems = _problems(GOOD_ROWS, states=states)
    assert any(problem in p for p in problems), problems
