"""Hand-made status changes: a ticket resolved, rejected, deleted or reopened by a person in
RT, and what that means for its release. Pure: the rules, as effects and a closing state.

- Closed by hand (resolved, rejected, deleted) while the release is open (not in a final
  state): a closed ticket holds nothing, so the workflow closes the release as if the person
  had set ``RolloutProgress`` — Rejected for a rejected ticket, Ignored for a resolved or
  deleted one — removing it from unverified and stagerollout, freeing its staged-rollout slot
  (the next Deferred release moves in) and saying so on the ticket. The ticket keeps the status
  the person gave it.
- Closed while the release is final already (the bridge's own resolve, or a finished release
  closed again): nothing to do.
- Reopened by hand: only a comment; the release stays where it is (a final one stays final).
- A change that no longer holds when the bridge gets to it (closed, then reopened at once —
  or the bridge's own reply reopening and closing a ticket) is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.records import RolloutState
from repo_daemon.workflow import effects
from repo_daemon.workflow.gather import CLOSED_STATUSES, ChangeInputs

# The final state a release is closed in when a person closes its ticket with that status.
CLOSED_AS: Mapping[str, RolloutState] = {
    "resolved": RolloutState.IGNORED,
    "rejected": RolloutState.REJECTED,
    "deleted": RolloutState.IGNORED,
}


def status_changed(inputs: ChangeInputs) -> effects.Handling:
    """What a person's change of the ticket's status means for the release."""
    old, new = inputs.request.old_value, inputs.request.new_value
    actor = inputs.request.actor or "someone"
    state = inputs.release.state
    was_closed, now_closed = old in CLOSED_STATUSES, new in CLOSED_STATUSES
    if was_closed == now_closed:
        return effects.Handling(detail=f"status {old} → {new}: nothing for the release")
    if (inputs.ticket.status in CLOSED_STATUSES) != now_closed:
        return effects.Handling(
            detail=f"status {old} → {new} no longer holds (the ticket is {inputs.ticket.status})"
        )
    if not now_closed:
        if inputs.final:
            then = (
                f"the release stays {state.label} (final): nothing changes in the repository; "
                "to publish it again, file the release again"
            )
        else:
            then = f"the release is {state.label}; the workflow goes on from there"
        text = f"The ticket was reopened by {actor} in RT: {then}."
        return effects.Handling(detail=f"reopened ({old} → {new})", effects=_say(text))
    if inputs.final:
        return effects.Handling(detail=f"{new}; the release is {state.label} already")
    target = CLOSED_AS.get(new, RolloutState.IGNORED)
    text = (
        f"The ticket was {new} by {actor} in RT while the release was {state.label}. A closed "
        f"ticket holds nothing, so the bridge closes the release as {target.label}: it is "
        "removed from unverified and stagerollout and gives up its staged-rollout slot (the "
        "next Deferred release of its major release moves in). To publish it after all, file "
        "the release again."
    )
    return effects.Handling(
        detail=f"{new} by hand while {state.label}: closing as {target.label}",
        effects=(effects.Comment(text=text, headline=True),),
        close_as=target,
    )


def _say(text: str) -> tuple[effects.Effect, ...]:
    return (effects.Comment(text=text),)
