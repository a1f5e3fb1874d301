"""What a person sees on the ticket, and waiting until the bridge has answered a change.

The demo reads the ticket the way a release manager looks at it: RolloutProgress, the last
line of RolloutHistory, RepositoryURL, and the bridge's newest comment. Fields and history go
through ``client.TrackerClient``; the text of a comment (which the bridge itself never
needs to read, so its client has no call for it) is one REST2 request of our own.
"""

from __future__ import annotations

import dataclasses
import time

import requests

from bridge import records
from bridge.settings import model as settings_model
from bridge.tracker.client import TrackerClient
from repo_daemon.demo.errors import StepTimedOut

FAILED = records.RolloutState.FAILED.label


@dataclasses.dataclass(frozen=True, kw_only=True)
class TicketView:
    """The ticket after the bridge answered a change."""

    ticket_id: int
    state: str
    history: tuple[str, ...]  # the states RolloutHistory lists, oldest first
    status: str  # RT's status: open, resolved, ...
    repository_url: str
    comment_id: int  # the transaction of the bridge's newest comment (0: none yet)


def history_states(text: str | None) -> tuple[str, ...]:
    """The states in a RolloutHistory field (``2024-05-17 10:00:00 UTC  Unverified  3s by …``)."""
    states = []
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] == "UTC":
            states.append(words[3])
    return tuple(states)


def newest_comment(client: TrackerClient, ticket_id: int, author: str) -> int:
    """The transaction id of ``author``'s newest comment on the ticket, 0 when there is none."""
    ids = [
        int(t["id"])
        for t in client.transactions_of(ticket_id)
        if t.get("Type") == "Comment" and (t.get("Creator") or {}).get("id") == author
    ]
    return max(ids, default=0)


def comment_text(tracker: settings_model.TrackerSettings, transaction_id: int) -> str:
    """The plain text of a comment (one REST2 round trip, as ``tracker``'s user)."""
    if tracker.user is None or tracker.password is None:
        raise ValueError("reading a comment needs a user and password")
    response = requests.get(
        tracker.rest_url + f"transaction/{int(transaction_id)}/attachments",
        params={"fields": "Content,ContentType"},
        auth=(tracker.user, tracker.password.reveal()),
        timeout=tracker.timeout,
    )
    response.raise_for_status()
    items = response.json().get("items") or []
    return "\n".join(str(i["Content"]) for i in items if i.get("ContentType") == "text/plain")


def look(client: TrackerClient, ticket_id: int) -> TicketView:
    """The ticket's fields now (no comment looked up)."""
    ticket = client.get_ticket(ticket_id)
    return TicketView(
        ticket_id=ticket_id,
        state=ticket.rollout_state.label,
        history=history_states(ticket.field("RolloutHistory")),
        status=ticket.status,
        repository_url=ticket.field("RepositoryURL") or "",
        comment_id=0,
    )


def wait_for_answer(
    client: TrackerClient,
    ticket_id: int,
    target: str,
    *,
    bridge_user: str,
    after_comment: int,
    timeout: float,
    hint: str,
    resolves: bool = False,
    interval: float = 0.3,
) -> TicketView:
    """Poll RT until the bridge has answered the move to ``target``: RolloutProgress and the
    last line of RolloutHistory show ``target`` (or Failed), the bridge commented after
    transaction ``after_comment`` and, when ``resolves``, the ticket is resolved (the bridge's
    last write). Raises ``StepTimedOut`` (with ``hint``) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        view = look(client, ticket_id)
        finished = view.state == FAILED or (
            view.state == target and (view.status == "resolved" or not resolves)
        )
        if finished and view.history[-1:] == (view.state,):
            comment = newest_comment(client, ticket_id, bridge_user)
            if comment > after_comment:
                return dataclasses.replace(view, comment_id=comment)
        if time.monotonic() >= deadline:
            raise StepTimedOut(
                f"the bridge did not process the change to {target} within {timeout:g} s "
                f"(RT shows {view.state}, ticket {view.status}, history ends with "
                f"{view.history[-1] if view.history else 'nothing'}): {hint}"
            )
        time.sleep(interval)
