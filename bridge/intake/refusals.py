"""Telling tickets why the bridge refused a change of them: every failure a person must act on
ends up as a comment on the ticket, in words.

The receiver (and reconciliation) record a refused change as an event with ``needs_comment``;
``RefusalCommenter.run`` comments each reason on its ticket once, in words a person can act on,
and marks the event commented. The same refusal again (a captured delivery replayed: same
ticket, RT transaction and reason) is marked without a second comment. A ticket that does not
exist is marked so it is never tried
again; RT being unreachable leaves the event for the next run. It decides nothing else.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bridge import errors
from bridge.store import events as eventlog
from bridge.store import queue

logger = logging.getLogger(__name__)


class Commenter(Protocol):
    """The tracker call this needs (``bridge.tracker.client.TrackerClient`` has it)."""

    def comment(self, ticket_id: int, text: str) -> None: ...


def comment_text(event: eventlog.Event) -> str:
    """The comment for a refused change: what happened, why, and what to do about it.

    The reason is the event's ``reason`` (a refused hook's status and caller are for
    operators, not for the people working on the ticket); events without one (reconciliation's,
    and refusals recorded before the field existed) give their ``detail``.
    """
    txn = event.transaction_id
    which = f" (RT transaction {txn})" if txn else ""
    reason = (event.reason or event.detail).strip() or "no reason was recorded"
    return (
        f"The rollout bridge did not act on a change of this ticket{which}.\n"
        "\n"
        f"Reason: {reason}\n"
        "\n"
        "Nothing was published, promoted or removed for this change. Correct what the reason "
        "names and set RolloutProgress again; the bridge will then process it. If the reason "
        "points at the bridge itself (its configuration or its RT account), tell the release "
        "managers."
    )


class RefusalCommenter:
    """Comments the pending refusals on their tickets."""

    def __init__(self, jobs: queue.Queue, tracker: Commenter, *, batch: int = 20) -> None:
        self.queue = jobs
        self.tracker = tracker
        self.batch = batch

    def run(self) -> int:
        """Comment pending refusals; returns how many comments were made. Stops at the first
        transient tracker error (RT is down: the rest waits for the next run)."""
        made = 0
        for event in self.queue.pending_comments(limit=self.batch):
            event_id = event.id
            ticket_id = event.ticket_id
            extra = {"event_id": event_id, "ticket_id": ticket_id, "action": "comment_refusal"}
            if ticket_id is None:
                self.queue.mark_commented(event_id, done=False)
                continue
            if self.queue.already_commented(event):
                self.queue.mark_commented(event_id, done=False)
                logger.info(
                    "refusal %s repeats one already commented on ticket %s; not commented again",
                    event_id,
                    ticket_id,
                    extra=extra,
                )
                continue
            try:
                self.tracker.comment(ticket_id, comment_text(event))
            except errors.TrackerNotFound:
                logger.warning(
                    "refusal %s names ticket %s, which RT does not have; not commented",
                    event_id,
                    ticket_id,
                    extra=extra,
                )
                self.queue.mark_commented(event_id, done=False)
                continue
            except errors.TrackerError as exc:
                logger.warning(
                    "could not comment refusal %s on ticket %s (%s); will try again",
                    event_id,
                    ticket_id,
                    exc,
                    extra=extra,
                )
                if exc.transient:
                    break
                continue
            self.queue.mark_commented(event_id)
            made += 1
            logger.info("commented refusal %s on ticket %s", event_id, ticket_id, extra=extra)
        return made
