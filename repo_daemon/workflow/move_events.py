"""The events a change of state writes, drafted from the change's inputs (pure): the move's
own (``transition_done``, ``transition_failed``: from, to, asked, who, what each action did)
and what it means to subscribers (``release_reached_production``, ``release_failed``;
docs/notifications.md). The processor appends them in the move's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bridge.records import RolloutState
from bridge.store import event_log, events
from repo_daemon.workflow.gather import Inputs


def transition(
    kind: events.EventKind,
    inputs: Inputs,
    to: RolloutState,
    *,
    ran: Sequence[Mapping[str, object]],
    actor: str | None = None,
    **data: object,
) -> event_log.Draft:
    """The event of a move the workflow made: from, to, asked, who, and what each action
    did (written in the move's transaction)."""
    request = inputs.job.request
    reason = inputs.decision.reason
    return event_log.draft(
        kind,
        ticket_id=inputs.ticket.id,
        job_id=inputs.job.id,
        transaction_id=request.transaction_id,
        actor=request.actor if actor is None else actor,
        data={
            "detail": f"{inputs.came_from.label} → {to.label}: {reason}",
            "from": inputs.came_from.label,
            "to": to.label,
            "asked": request.current.label,
            "actions": [dict(a) for a in ran],
            **{k: v for k, v in data.items() if v is not None},
        },
    )


def for_subscribers(
    kind: events.EventKind,
    inputs: Inputs,
    detail: str,
    *,
    actor: str | None = None,
    **data: object,
) -> event_log.Draft:
    """An event of what a move means to subscribers (docs/notifications.md), with every field
    of its kind present (null when unknown), written in the move's transaction."""
    request = inputs.job.request
    return event_log.draft(
        kind, ticket_id=inputs.ticket.id, job_id=inputs.job.id,
        transaction_id=request.transaction_id,
        actor=request.actor if actor is None else actor,
        data={"detail": detail, **data},
    )  # fmt: skip
