"""Owners per phase against a real RT 5, with real users in real groups: the QC task leader
owns a release during verification, the staged-rollout leader during staged rollout (settings:
owners), and a state that names nobody keeps the owner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.settings import model as settings_model
from tests.support.workflow_harness import Bridge, running_bridge

pytestmark = pytest.mark.rt


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    owners = {"InVerification": "qc1", "StageRollout": "sr1"}
    with running_bridge(
        tmp_path_factory.mktemp("owners"),
        workflow_settings=settings_model.WorkflowSettings(owners=owners),
    ) as running:
        yield running


def test_each_phase_has_its_standing_owner(bridge: Bridge) -> None:
    ticket = bridge.file_release("OWN-1")
    owners = []
    for state in ("Unverified", "InVerification", "StageRollout", "Production"):
        bridge.move(ticket, state)
        after = bridge.manager.get_ticket(ticket)
        assert after.field("RolloutProgress") == state, bridge.comments(ticket)[-1]
        owners.append(after.owner)
    # Unverified names nobody (kept: Nobody); Production names nobody (kept: sr1).
    assert owners == [None, "qc1", "sr1", "sr1"]
