"""The workflow engine, pair by pair: every one of the 12 × 12 (from, to) changes of the shipped
staged-rollout workflow, against an expected table written here by hand (not derived from the
definition), then the facts that change the answer: emergencies, the staged-rollout slot and
retries from Failed."""

from __future__ import annotations

import pytest

from bridge.records import RolloutState as S
from repo_daemon.workflow import engine, loader, model
from repo_daemon.workflow.engine import Facts, Outcome

STAGED = loader.load_template("staged")
DIRECT = loader.load_template("direct")

SUB, UNV, INV, WFR = S.SUBMITTED, S.UNVERIFIED, S.IN_VERIFICATION, S.WAITING_FOR_RESPONSE
STR, DEF, PRD, REJ = S.STAGE_ROLLOUT, S.DEFERRED, S.PRODUCTION, S.REJECTED
IGN, NPB, FLD, WDN = S.IGNORED, S.NOT_PUBLISHED, S.FAILED, S.WITHDRAWN
ENDINGS = {REJ: REJ, IGN: IGN, NPB: NPB}

# With the plainest facts (not an emergency, the slot free, nothing failed): where a change
# from each state ends. Pairs not listed are blocked; a change to the same state is a no-op.
EXPECTED_STAGED: dict[S, dict[S, S]] = {
    SUB: {UNV: UNV, **ENDINGS},
    UNV: {INV: INV, **ENDINGS},
    INV: {UNV: UNV, WFR: WFR, STR: STR, **ENDINGS},
    WFR: {INV: INV, STR: STR, **ENDINGS},
    STR: {PRD: PRD, **ENDINGS},
    DEF: {STR: STR, INV: INV, **ENDINGS},
    PRD: {WDN: WDN},
    REJ: {},
    IGN: {},
    NPB: {},
    FLD: {**ENDINGS},
    WDN: {},
}

PAIRS = [(a, b) for a in S for b in S]


@pytest.mark.parametrize(("current", "requested"), PAIRS, ids=lambda s: s.label)
def test_every_pair_of_states(current: S, requested: S) -> None:
    decision = engine.decide(STAGED, at=current, asked=requested, facts=Facts())
    if requested == current:
        assert decision.outcome is Outcome.STAY
        assert decision.actions == ()
        return
    expected = EXPECTED_STAGED[current].get(requested)
    if expected is None:
        assert decision.outcome is Outcome.BLOCK, decision.reason
        assert decision.state == current  # put back
        assert decision.actions == ()
        assert f"RolloutProgress stays {current.label}" in decision.reason
    else:
        assert decision.outcome is Outcome.MOVE, decision.reason
        assert decision.state == expected


def test_the_expected_table_covers_144_pairs() -> None:
    assert len(PAIRS) == 144
    assert set(EXPECTED_STAGED) == set(S)


def test_a_block_says_what_is_allowed() -> None:
    decision = engine.decide(STAGED, at=STR, asked=INV, facts=Facts())
    assert decision.reason == (
        "RolloutProgress cannot go from StageRollout to InVerification; RolloutProgress stays "
        "StageRollout (from StageRollout it may go to: Production, Rejected, Ignored, NotPublished)"
    )


def test_a_final_state_says_so() -> None:
    decision = engine.decide(STAGED, at=REJ, asked=STR, facts=Facts())
    assert decision.outcome is Outcome.BLOCK
    assert decision.reason.startswith("Rejected is final")
    assert "nothing follows it" in decision.reason


def test_a_final_state_may_be_left_only_by_its_rows() -> None:
    # "Final" means the ticket is resolved there; Production may still be withdrawn.
    withdrawn = engine.decide(STAGED, at=PRD, asked=WDN, facts=Facts())
    assert (withdrawn.outcome, withdrawn.state) == (Outcome.MOVE, WDN)
    assert withdrawn.actions == (
        "withdraw_release", "comment_outcome", "reply_provider", "notify_watchers",
        "resolve_ticket",
    )  # fmt: skip
    blocked = engine.decide(STAGED, at=PRD, asked=STR, facts=Facts())
    assert blocked.outcome is Outcome.BLOCK
    assert blocked.reason == (
        "RolloutProgress cannot go from Production to StageRollout; RolloutProgress stays "
        "Production (from Production it may go to: Withdrawn)"
    )
    again = engine.decide(STAGED, at=WDN, asked=PRD, facts=Facts())
    assert again.outcome is Outcome.BLOCK
    assert again.reason.startswith("Withdrawn is final")


# (current, requested, facts) -> (outcome, state, must-have actions)
FACT_CASES = [
    pytest.param(INV, PRD, Facts(emergency=True), Outcome.MOVE, PRD,
                 ("promote_to_production", "resolve_ticket"), id="emergency-skips-stagerollout"),
    pytest.param(WFR, PRD, Facts(emergency=True), Outcome.MOVE, PRD, ("promote_to_production",),
                 id="emergency-from-waiting"),
    pytest.param(UNV, PRD, Facts(emergency=True), Outcome.BLOCK, UNV, (),
                 id="emergency-still-needs-verification"),
    pytest.param(INV, STR, Facts(slot_holders=(41,)), Outcome.MOVE, DEF, ("comment_deferred",),
                 id="slot-taken-defers"),
    pytest.param(WFR, STR, Facts(slot_holders=(41,)), Outcome.MOVE, DEF, ("comment_deferred",),
                 id="slot-taken-defers-from-waiting"),
    pytest.param(INV, STR, Facts(slot_holders=(41,), emergency=True), Outcome.MOVE, STR,
                 ("take_stage_slot", "promote_to_stagerollout"), id="emergency-never-deferred"),
    pytest.param(DEF, STR, Facts(slot_holders=(41,)), Outcome.MOVE, DEF, ("comment_deferred",),
                 id="deferred-stays-while-taken"),
    pytest.param(DEF, STR, Facts(), Outcome.MOVE, STR, ("take_stage_slot",),
                 id="deferred-moves-in-when-free"),
    pytest.param(DEF, PRD, Facts(emergency=True), Outcome.MOVE, PRD, ("promote_to_production",),
                 id="deferred-emergency-to-production"),
    pytest.param(STR, PRD, Facts(), Outcome.MOVE, PRD,
                 ("free_stage_slot", "promote_next_deferred", "resolve_ticket"),
                 id="production-frees-slot"),
    pytest.param(STR, REJ, Facts(), Outcome.MOVE, REJ,
                 ("remove_release", "free_stage_slot", "promote_next_deferred", "resolve_ticket",
                  "reply_provider"), id="rejected-from-stagerollout-frees-slot"),
    pytest.param(INV, IGN, Facts(), Outcome.MOVE, IGN, ("remove_release", "resolve_ticket"),
                 id="ignored-removes-and-resolves"),
    pytest.param(FLD, UNV, Facts(failed_target=UNV), Outcome.MOVE, UNV,
                 ("freeze_release_xml", "sync_packages", "publish_unverified"), id="retry-intake"),
    pytest.param(FLD, STR, Facts(failed_target=UNV), Outcome.BLOCK, FLD, (),
                 id="retry-only-where-it-failed"),
    pytest.param(FLD, STR, Facts(failed_target=STR, slot_holders=(7,)), Outcome.MOVE, DEF,
                 ("comment_deferred",), id="retry-stagerollout-defers-if-taken"),
    pytest.param(FLD, PRD, Facts(failed_target=PRD), Outcome.MOVE, PRD,
                 ("promote_to_production", "resolve_ticket"), id="retry-production"),
    pytest.param(FLD, REJ, Facts(failed_target=UNV), Outcome.MOVE, REJ, ("resolve_ticket",),
                 id="reject-after-failure"),
    pytest.param(FLD, WDN, Facts(failed_target=WDN), Outcome.MOVE, WDN,
                 ("withdraw_release", "resolve_ticket"), id="retry-withdrawal"),
    pytest.param(FLD, WDN, Facts(failed_target=PRD), Outcome.BLOCK, FLD, (),
                 id="withdraw-only-what-failed-withdrawing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("current", "requested", "facts", "outcome", "state", "actions"), FACT_CASES
)
def test_facts_change_the_answer(
    current: S, requested: S, facts: Facts, outcome: Outcome, state: S, actions: tuple[str, ...]
) -> None:
    decision = engine.decide(STAGED, at=current, asked=requested, facts=facts)
    assert (decision.outcome, decision.state) == (outcome, state), decision.reason
    assert set(actions) <= set(decision.actions)


def test_deferral_names_the_slot_holder() -> None:
    decision = engine.decide(STAGED, at=INV, asked=STR, facts=Facts(slot_holders=(41,)))
    assert "held by #41" in decision.reason
    assert "asked for StageRollout" in decision.reason


def test_production_without_emergency_says_why() -> None:
    decision = engine.decide(STAGED, at=INV, asked=PRD, facts=Facts())
    assert "only an emergency release (EmergencyRelease = Yes) may do this" in decision.reason


def test_retry_from_failed_says_where_it_may_go() -> None:
    decision = engine.decide(STAGED, at=FLD, asked=STR, facts=Facts(failed_target=UNV))
    assert "only be retried into the state whose processing failed" in decision.reason


def test_intake_does_the_repository_work_in_order() -> None:
    decision = engine.decide(STAGED, at=SUB, asked=UNV, facts=Facts())
    assert decision.actions == (
        "check_fields", "check_major_release", "check_sync_url", "fill_in_fields",
        "freeze_release_xml",
        "validate_release", "sync_packages",
        "publish_unverified", "notify_watchers",
    )  # fmt: skip


def test_a_failure_goes_to_failed_and_says_how_to_retry() -> None:
    decision = engine.on_failure(STAGED, at=SUB, attempted=UNV, error="checksum of a.rpm differs")
    assert decision.state is FLD
    assert decision.actions == ("comment_failure", "reply_failure", "notify_watchers")
    assert "set RolloutProgress to Unverified to retry, or to Rejected" in decision.reason


def test_direct_workflow_has_no_staged_rollout() -> None:
    assert STR not in DIRECT.states and DEF not in DIRECT.states
    assert engine.decide(DIRECT, at=INV, asked=PRD, facts=Facts()).state is PRD
    blocked = engine.decide(DIRECT, at=INV, asked=STR, facts=Facts())
    assert blocked.outcome is Outcome.BLOCK
    assert "the direct workflow does not use StageRollout" in blocked.reason


def _fact_sets(definition: model.Definition) -> list[Facts]:
    plain = [Facts(emergency=e, slot_holders=h) for e in (False, True) for h in ((), (7,))]
    return plain + [Facts(failed_target=s) for s in definition.states]


@pytest.mark.parametrize("definition", [STAGED, DIRECT], ids=lambda d: d.name)
def test_every_state_of_a_shipped_workflow_is_reached_by_asking(
    definition: model.Definition,
) -> None:
    # Walk the engine itself (not the loader's check): from the initial state, every request
    # under every set of facts, plus a processing failure wherever a move has work.
    reached, frontier = {definition.initial}, [definition.initial]
    while frontier:
        at = frontier.pop()
        for asked in S:
            for facts in _fact_sets(definition):
                decision = engine.decide(definition, at=at, asked=asked, facts=facts)
                ends = {decision.state} if decision.outcome is Outcome.MOVE else set()
                if decision.outcome is Outcome.MOVE:
                    ends.add(engine.on_failure(definition, at=at, attempted=asked, error="x").state)
                for state in ends - reached:
                    reached.add(state)
                    frontier.append(state)
    assert reached == set(definition.states)


@pytest.mark.parametrize("definition", [STAGED, DIRECT], ids=lambda d: d.name)
def test_a_shipped_workflow_can_close_a_release_from_every_open_state(
    definition: model.Definition,
) -> None:
    # Invariant 10: Rejected, Ignored and NotPublished are always possible, and they take the
    # release out of the trees and resolve the ticket; the only way out of a final state is a
    # withdrawal from Production, which ends final too and resolves the ticket again.
    for at in set(definition.states) - definition.terminal:
        for closing in (REJ, IGN, S.NOT_PUBLISHED):
            decision = engine.decide(definition, at=at, asked=closing, facts=Facts())
            assert (decision.outcome, decision.state) == (Outcome.MOVE, closing), (at, closing)
            assert "remove_release" in decision.actions and "resolve_ticket" in decision.actions
    for at in definition.terminal:
        for asked in set(S) - {at}:
            decision = engine.decide(definition, at=at, asked=asked, facts=Facts())
            if (at, asked) == (PRD, WDN):
                assert decision.state in definition.terminal
                assert "resolve_ticket" in decision.actions
            else:
                assert decision.outcome is Outcome.BLOCK, (at, asked)
