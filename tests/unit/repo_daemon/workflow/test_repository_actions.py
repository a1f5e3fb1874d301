"""The repository handlers call the repository through ``Services`` and return effects."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bridge.records import RolloutState as S
from bridge.store import releases
from repo_daemon import errors
from repo_daemon.workflow import effects, model
from repo_daemon.workflow import repository_actions as handlers
from repo_daemon.workflow.repository_actions import Services, Step
from tests.support.fake_repository import FakeRepository
from tests.unit.repo_daemon.workflow.conftest import MakeInputs


class Slots:
    """The staged-rollout slot part of ``ReleaseStore``, in memory."""

    def __init__(self) -> None:
        self.holders: dict[str, int] = {}

    def take_slot(self, major: str, ticket_id: int, *, emergency: bool) -> bool:
        return self.holders.setdefault(major, ticket_id) == ticket_id

    def free_slot(self, major: str, ticket_id: int) -> bool:
        if self.holders.get(major) != ticket_id:
            return False
        del self.holders[major]
        return True


def _services(repository: FakeRepository, slots: Slots | None = None) -> Services:
    store = cast(releases.ReleaseStore, cast(Any, slots or Slots()))
    return Services(tracker=cast(Any, None), store=store, repository=repository)


def test_a_resumed_intake_does_not_sync_what_it_published(make_inputs: MakeInputs) -> None:
    repo = FakeRepository()
    fresh = make_inputs(S.SUBMITTED, S.UNVERIFIED)
    handlers.sync_packages(fresh, _services(repo))
    resumed = make_inputs(S.SUBMITTED, S.UNVERIFIED, checkpoints=frozenset({"publish_unverified"}))
    result = handlers.sync_packages(resumed, _services(repo))
    assert result.detail == "already published; nothing to sync"
    assert repo.steps(7).count("sync_packages") == 1


def test_a_repository_note_becomes_a_comment() -> None:
    assert Step(detail="d", note="release.xml changed").result() == effects.Result(
        detail="d", effects=(effects.Comment(text="release.xml changed"),)
    )
    assert Step(detail="d").result().effects == ()


def test_promotion_uses_the_tickets_major_release(make_inputs: MakeInputs) -> None:
    repo = FakeRepository()
    handlers.promote_to_stagerollout(
        make_inputs(S.IN_VERIFICATION, S.STAGE_ROLLOUT), _services(repo)
    )
    assert repo.paths[7] == "stagerollout/UMD-5/arc/7.1.0"
    no_major = make_inputs(S.STAGE_ROLLOUT, S.PRODUCTION, AssociatedMajorRelease="")
    with pytest.raises(errors.ProcessingFailed, match="no AssociatedMajorRelease") as caught:
        handlers.promote_to_production(no_major, _services(repo))
    assert caught.value.transient is False


def test_a_slot_taken_meanwhile_is_decided_again_at_once(make_inputs: MakeInputs) -> None:
    slots = Slots()
    slots.holders["UMD-5"] = 41
    inputs = make_inputs(S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    with pytest.raises(errors.DecisionOutdated, match="taken meanwhile") as caught:
        handlers.take_stage_slot(inputs, _services(FakeRepository(), slots))
    assert (caught.value.transient, caught.value.retry_at_once) == (True, True)
    assert handlers.free_stage_slot(inputs, _services(FakeRepository(), slots)).detail == (
        "held no slot"
    )
    del slots.holders["UMD-5"]
    handlers.take_stage_slot(inputs, _services(FakeRepository(), slots))
    assert slots.holders == {"UMD-5": 7}
    assert handlers.free_stage_slot(inputs, _services(FakeRepository(), slots)).detail == (
        "freed the UMD-5 slot"
    )


def test_moving_the_next_deferred_in_is_a_follow_up(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(S.STAGE_ROLLOUT, S.PRODUCTION, facts=model.Facts())
    result = handlers.promote_next_deferred(inputs, _services(FakeRepository()))
    assert result.effects == (effects.MoveNextDeferredIn(major_release="UMD-5"),)
    none = make_inputs(S.STAGE_ROLLOUT, S.PRODUCTION, AssociatedMajorRelease="")
    assert handlers.promote_next_deferred(none, _services(FakeRepository())).effects == ()


def test_validation_reads_the_frozen_release_xml(make_inputs: MakeInputs) -> None:
    result = handlers.validate_release(
        make_inputs(S.SUBMITTED, S.UNVERIFIED), _services(FakeRepository())
    )
    assert result.detail == "valid: arc 7.1.0"


def test_a_withdrawal_goes_through_the_repository_and_says_what_it_did(
    make_inputs: MakeInputs,
) -> None:
    repo = FakeRepository()
    repo.paths[7] = "production/UMD-5/updates"
    result = handlers.withdraw_release(make_inputs(S.PRODUCTION, S.WITHDRAWN), _services(repo))
    assert repo.steps(7) == ["withdraw_release"]
    assert 7 not in repo.paths
    assert result.detail == "withdrew from production/UMD-5/updates"
