"""The people actions are pure: gathered inputs in, effects out."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.records import JobSource
from bridge.records import RolloutState as S
from repo_daemon import errors
from repo_daemon.workflow import effects, engine, model, ticket_actions
from tests.unit.repo_daemon.workflow.conftest import MakeInputs


def test_check_fields_names_every_empty_mandatory_field(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(
        S.SUBMITTED,
        S.UNVERIFIED,
        **{"Sync-URL": "", "AssociatedMajorRelease": "", "ReleaseType": ""},
    )
    with pytest.raises(errors.ProcessingFailed) as caught:
        ticket_actions.check_fields(inputs)
    # ReleaseType is not among them: it defaults to NonIncremental.
    assert "the ticket lacks Sync-URL, AssociatedMajorRelease; fill them in" in str(caught.value)
    assert caught.value.transient is False
    assert ticket_actions.check_fields(make_inputs(S.SUBMITTED, S.UNVERIFIED)).effects == ()


def test_notify_watchers_sets_the_states_cc_and_leads_with_the_news(
    make_inputs: MakeInputs,
) -> None:
    result = ticket_actions.notify_watchers(make_inputs(S.SUBMITTED, S.UNVERIFIED))
    watchers, headline = result.effects
    assert watchers == effects.SetWatchers(cc=("sw-rel-qc",), admin_cc=("sw-rel-admin",))
    assert headline == effects.Comment(
        text="RolloutProgress: Submitted → Unverified. The release is published to unverified "
        "and waits for verification.",
        headline=True,
    )


def test_an_automatic_move_says_so(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(S.DEFERRED, S.STAGE_ROLLOUT, source=JobSource.BRIDGE)
    (_, headline) = ticket_actions.notify_watchers(inputs).effects
    assert isinstance(headline, effects.Comment)
    assert headline.text.startswith("RolloutProgress: Deferred → StageRollout (automatically).")


def test_a_failure_headline_carries_the_reason(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(S.SUBMITTED, S.UNVERIFIED)
    failure = engine.on_failure(
        inputs.definition, at=S.SUBMITTED, attempted=S.UNVERIFIED, error="x"
    )
    inputs = dataclasses.replace(inputs, decision=failure, failure="checksum of a.rpm differs")
    (_, headline) = ticket_actions.notify_watchers(inputs).effects
    assert headline == effects.Comment(
        text="RolloutProgress: Submitted → Failed. checksum of a.rpm differs.", headline=True
    )
    (comment,) = ticket_actions.comment_failure(inputs).effects
    assert comment == effects.Comment(text="Processing failed: checksum of a.rpm differs.")


def test_deferral_names_the_holders(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(
        S.IN_VERIFICATION, S.STAGE_ROLLOUT, facts=model.Facts(slot_holders=(41, 42))
    )
    (comment,) = ticket_actions.comment_deferred(inputs).effects
    assert isinstance(comment, effects.Comment)
    assert comment.text.startswith("Deferred: the UMD-5 staged-rollout slot is held by #41, #42.")


def test_the_provider_reply_comes_from_the_state_table_with_the_subject_quoted(
    make_inputs: MakeInputs,
) -> None:
    inputs = make_inputs(S.STAGE_ROLLOUT, S.PRODUCTION, subject="ARC {7}")
    (reply,) = ticket_actions.reply_provider(inputs).effects
    assert reply == effects.Reply(text="Your release 'ARC {7}' is in production. Thank you.")
    # A state without its own reply says what the news says.
    bare = dataclasses.replace(
        inputs.definition,
        states={
            **inputs.definition.states,
            S.PRODUCTION: model.StateInfo(description="d", news="n"),
        },
    )
    (reply,) = ticket_actions.reply_provider(dataclasses.replace(inputs, definition=bare)).effects
    assert isinstance(reply, effects.Reply)
    assert reply.text.startswith("Your release 'ARC {7}' is Production. n Answer on this ticket")


@pytest.mark.parametrize("state", [S.REJECTED, S.IGNORED, S.NOT_PUBLISHED])
def test_closing_replies_carry_the_managers_reason(make_inputs: MakeInputs, state: S) -> None:
    given = make_inputs(
        S.IN_VERIFICATION, state, **{"Closing Reason": "fails QC criterion GEN_1 {subject}"}
    )
    (reply,) = ticket_actions.reply_provider(given).effects
    assert isinstance(reply, effects.Reply)
    assert reply.text.startswith("Your release 'ARC 7.1' ")
    # The reason is quoted as written: a placeholder inside it is not filled in.
    assert reply.text.endswith("The reason: fails QC criterion GEN_1 {subject}")
    (reply,) = ticket_actions.reply_provider(make_inputs(S.IN_VERIFICATION, state)).effects
    assert isinstance(reply, effects.Reply)
    assert reply.text.endswith(
        "The reason: none was written in the ticket's Closing Reason field; ask on this ticket"
    )


def test_a_withdrawal_tells_the_provider_and_production(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(
        S.PRODUCTION, S.WITHDRAWN, **{"Closing Reason": "a security hole (CVE-2026-0001)"}
    )
    (reply,) = ticket_actions.reply_provider(inputs).effects
    assert reply == effects.Reply(
        text="Your release 'ARC 7.1' was withdrawn from production: sites no longer get its "
        "packages after their next update. The reason: a security hole (CVE-2026-0001)"
    )
    watchers = ticket_actions.notify_watchers(inputs).effects[0]
    assert watchers == effects.SetWatchers(cc=("sw-rel-production",), admin_cc=("sw-rel-admin",))


def test_resolve_and_outcome(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(S.IN_VERIFICATION, S.IGNORED)
    assert ticket_actions.resolve_ticket(inputs).effects == (effects.Resolve(),)
    assert ticket_actions.comment_outcome(inputs).effects == (
        effects.Comment(text="Ignored: The release is ignored and removed from the repository."),
    )


def test_only_a_failure_the_provider_can_fix_is_replied(make_inputs: MakeInputs) -> None:
    theirs = make_inputs(S.SUBMITTED, S.UNVERIFIED)
    theirs = dataclasses.replace(theirs, failure="Sync-URL refused", failure_for_provider=True)
    (reply,) = ticket_actions.reply_failure(theirs).effects
    assert isinstance(reply, effects.Reply)
    assert reply.text.startswith("Your release 'ARC 7.1' could not be processed: Sync-URL refused.")
    ours = dataclasses.replace(theirs, failure_for_provider=False)
    assert ticket_actions.reply_failure(ours).effects == ()


def test_an_unknown_major_release_is_refused_naming_the_known_ones(
    make_inputs: MakeInputs,
) -> None:
    inputs = make_inputs(S.SUBMITTED, S.UNVERIFIED, AssociatedMajorRelease="umd5")
    known = dataclasses.replace(inputs, known_major_releases=("UMD-5", "UMD-6", "CAs"))
    with pytest.raises(errors.TicketIncomplete) as caught:
        ticket_actions.check_major_release(known)
    assert str(caught.value) == (
        "AssociatedMajorRelease 'umd5' is not a known major release; known: UMD-5, UMD-6, CAs"
    )
    assert caught.value.provider_can_fix
    assert ticket_actions.check_major_release(inputs).detail == "any major release"
    fine = make_inputs(S.SUBMITTED, S.UNVERIFIED)
    fine = dataclasses.replace(fine, known_major_releases=("UMD-5",))
    assert ticket_actions.check_major_release(fine).detail == "major release UMD-5"


def test_notify_watchers_hands_the_ticket_to_the_states_owner(make_inputs: MakeInputs) -> None:
    inputs = make_inputs(S.UNVERIFIED, S.IN_VERIFICATION)
    people = dataclasses.replace(inputs.people, owner_overrides={"InVerification": "qc1"})
    result = ticket_actions.notify_watchers(dataclasses.replace(inputs, people=people))
    assert effects.SetOwner(owner="qc1") in result.effects
    plain = ticket_actions.notify_watchers(inputs)
    assert not any(isinstance(e, effects.SetOwner) for e in plain.effects)
