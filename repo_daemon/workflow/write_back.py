"""**apply**, the ticket's part: a ``ticket_plan.TicketPlan`` written to RT in as few calls as
RT allows, each step checkpointed on the job so a retried job never comments twice.

One PUT for fields, watchers, status and owner; then one comment and one reply at most (RT
mails each); then, when groups were told of the change only (``TellGroups``), one more PUT that
takes them off the Cc again. A ticket a person closed (resolved, rejected, deleted) keeps its
status: nothing sets another, and a reply carries it (a reply reopens a closed ticket in RT);
a deleted ticket gets no reply at all (RT reopens it, and only its deleters may delete it
again).
It decides nothing: what to write comes from the plan and the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bridge import records
from bridge.store import event_log, events, releases
from bridge.tracker.client import TrackerClient
from repo_daemon.workflow import ticket_plan
from repo_daemon.workflow.gather import CLOSED_STATUSES

# Checkpoints of the write-back (beside the actions' own).
WROTE_TICKET, COMMENTED, REPLIED, UNTOLD = "write_ticket", "comment", "reply", "untell"
FAILURE_PHASE = releases.FAILURE_STEP_PREFIX


class Checkpoints(Protocol):
    """Where a job's finished steps are kept (``releases.ReleaseStore``)."""

    def steps_done(self, job_id: int) -> dict[str, str]: ...

    def mark_step(
        self,
        job_id: int,
        action: str,
        detail: str = "",
        *,
        event: event_log.Draft | None = None,
    ) -> None: ...


class WriteBack:
    """The write-back of one job to one ticket (as the job read it)."""

    def __init__(
        self,
        client: TrackerClient,
        checkpoints: Checkpoints,
        *,
        job_id: int,
        ticket: records.Ticket,
        plan: ticket_plan.TicketPlan,
        phase: str = "",
    ) -> None:
        self.client = client
        # Checkpoints of a failure's write-back carry ``FAILURE_PHASE`` before their names, so
        # a job re-run by hand after it told the ticket of its failure still writes its outcome
        # (and a re-run forgets them: ``queue.Queue.retry``).
        self.phase = phase
        self.checkpoints = checkpoints
        self.job_id = job_id
        self.ticket = ticket
        self.plan = plan
        self.done = checkpoints.steps_done(job_id)

    @property
    def kept_status(self) -> str | None:
        """The status a person closed the ticket with, which the bridge keeps; else None."""
        return self.ticket.status if self.ticket.status in CLOSED_STATUSES else None

    def write(
        self, fields: Mapping[str, str | tuple[str, ...]], *, owner: str | None = None
    ) -> None:
        """The PUT (fields, watchers with the groups told, status unless a reply carries it),
        then the messages; each step once."""
        plan = self.plan
        status = None if self.kept_status else ("resolved" if plan.resolve else None)
        status_by_reply = (status or self.kept_status) if plan.replies else None
        cc = plan.cc_while_telling(self.ticket.cc_groups())
        changes = fields or cc is not None or plan.admin_cc is not None or owner
        if self._todo(WROTE_TICKET) and (changes or (status and not status_by_reply)):
            self.client.update_ticket(
                self.ticket.id,
                custom_fields=dict(fields) or None,
                cc_groups=cc,
                admin_cc_groups=plan.admin_cc,
                status=None if status_by_reply else status,
                owner=owner,
                current=self.ticket,
            )
            self._mark(WROTE_TICKET, ", ".join(sorted(fields)), fields=sorted(fields))
        self._messages(status_by_reply)

    def _messages(self, status_by_reply: str | None) -> None:
        plan = self.plan
        # One comment and one reply at most: each is an RT call (and a mail).
        if plan.comments and self._todo(COMMENTED):
            text = "\n\n".join(plan.comments)
            self.client.comment(self.ticket.id, text)
            self._mark(COMMENTED, text[:200], comment=_first_line(text))
        # A reply reopens a deleted ticket, and the bridge may not delete it again: a deleted
        # ticket gets comments only.
        if plan.replies and self._todo(REPLIED) and self.ticket.status != "deleted":
            text = "\n\n".join(plan.replies)
            self.client.reply(self.ticket.id, text, status=status_by_reply)
            self._mark(REPLIED, text[:200], reply=_first_line(text), to="requestors")
        if plan.told and self._todo(UNTOLD):
            after = plan.cc_after_telling(self.ticket.cc_groups())
            self.client.update_ticket(self.ticket.id, cc_groups=after, current=self.ticket)
            self._mark(UNTOLD, ", ".join(plan.told), untold=list(plan.told))

    def _todo(self, step: str) -> bool:
        return f"{self.phase}{step}" not in self.done

    def _mark(self, step: str, detail: str, **told: object) -> None:
        """Checkpoint ``step`` with its ``ticket_told`` event (what the ticket was told)."""
        step = f"{self.phase}{step}"
        event = event_log.draft(
            events.EventKind.TICKET_TOLD,
            ticket_id=self.ticket.id,
            job_id=self.job_id,
            data={"detail": f"{step}: {detail}" if detail else step, "step": step, **told},
        )
        self.checkpoints.mark_step(self.job_id, step, detail, event=event)
        self.done[step] = detail


def _first_line(text: str) -> str:
    """A message's first line (up to 200 characters), for the event log."""
    return (text.strip().splitlines() or [""])[0][:200]
