"""The action registry: the one place an action is defined, held to what the processor and
the loader rely on."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bridge.records import RolloutState as S
from repo_daemon.workflow import actions, loader
from repo_daemon.workflow.actions import REGISTRY, ActionKind
from repo_daemon.workflow.repository_actions import Services
from tests.unit.repo_daemon.workflow.conftest import MakeInputs

SHIPPED = [loader.load_template(name) for name in loader.TEMPLATES]


def test_every_registered_action_is_used_by_a_shipped_workflow() -> None:
    used = {a for d in SHIPPED for row in d.transitions for a in row.actions}
    used |= {a for d in SHIPPED for a in d.failure_actions}
    assert set(REGISTRY) == used


def test_every_action_says_what_it_does() -> None:
    for name, action in REGISTRY.items():
        assert action.name == name
        assert action.description and action.description == action.description.strip()


def test_failure_actions_only_tell_people() -> None:
    # The processor runs them after a failure without checkpoints: they must be pure.
    for definition in SHIPPED:
        for name in definition.failure_actions:
            assert REGISTRY[name].kind is ActionKind.PEOPLE, name


def test_lasting_work_is_checkpointed_and_pure_actions_rerun() -> None:
    for action in REGISTRY.values():
        if action.kind in (ActionKind.PEOPLE, ActionKind.FOLLOW_UP):
            assert action.rerun_on_resume and not action.checkpointed, action.name
        else:
            assert action.checkpointed, action.name
        if action.kind in (ActionKind.SLOT, ActionKind.CHECK):
            assert not action.rerun_on_resume, action.name
    # The one piece of lasting work that runs again: scratch is checked again before it is
    # published by a resumed job.
    assert [a.name for a in REGISTRY.values() if a.checkpointed and a.rerun_on_resume] == [
        "sync_packages"
    ]


@pytest.mark.parametrize("name", [n for n, a in REGISTRY.items() if a.kind is ActionKind.PEOPLE])
def test_people_actions_need_no_services_and_give_the_same_answer_twice(
    name: str, make_inputs: MakeInputs
) -> None:
    inputs = make_inputs(S.STAGE_ROLLOUT, S.PRODUCTION)
    no_services = cast(Services, cast(Any, None))
    first = REGISTRY[name].handler(inputs, no_services)
    assert first == REGISTRY[name].handler(inputs, no_services)


def test_only_resolve_ticket_resolves() -> None:
    assert [n for n, a in REGISTRY.items() if a.resolves_ticket] == ["resolve_ticket"]
    assert actions.REGISTRY is REGISTRY
