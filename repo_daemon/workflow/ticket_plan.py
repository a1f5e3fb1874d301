"""Planning what a transition writes back on the ticket: pure text and data, no RT calls.

The plan is applied by ``transitions`` in as few RT calls as RT allows: one PUT for fields,
watchers and status together, then one call per comment or reply. Who gets mail follows RT's
scrips: a comment mails AdminCc (and Cc, with the product's "On Comment Notify Ccs as Comment"
scrip), a reply also mails the requestors — so only messages meant for the technology
provider are replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bridge.records import RolloutState
from bridge.store import releases

# What people are told when a release enters a state, as the start of the bridge's comment.
STATE_NEWS: dict[RolloutState, str] = {
    RolloutState.UNVERIFIED: "The release is published to unverified and waits for verification.",
    RolloutState.IN_VERIFICATION: "Quality control is verifying the release.",
    RolloutState.WAITING_FOR_RESPONSE: "Quality control waits for an answer from the provider.",
    RolloutState.STAGE_ROLLOUT: "The release is in staged rollout; early adopters may install it.",
    RolloutState.DEFERRED: "The release waits for its major release's staged-rollout slot.",
    RolloutState.PRODUCTION: "The release is in production.",
    RolloutState.REJECTED: "The release was rejected and removed from the repository.",
    RolloutState.IGNORED: "The release is ignored and removed from the repository.",
    RolloutState.NOT_PUBLISHED: "The release will not be published and was removed.",
    RolloutState.FAILED: "Processing the release failed; see the comment below.",
}


@dataclass
class TicketPlan:
    """Everything one transition writes on the ticket."""

    fields: dict[str, str] = field(default_factory=dict)
    cc: tuple[str, ...] | None = None
    admin_cc: tuple[str, ...] | None = None
    status: str | None = None
    comments: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)


def history_text(
    spans: Sequence[releases.StateSpan], now: datetime, *, pending: RolloutState | None = None
) -> str:
    """The RolloutHistory field: one line per stay, oldest first, with how long it lasted.

    ``pending`` is the state being entered now (not in ``spans`` yet).
    """
    lines = []
    for i, span in enumerate(spans):
        is_last = i == len(spans) - 1
        left = span.left_at or (now if pending is not None and is_last else None)
        took = f"{_duration((left - span.entered_at).total_seconds())}" if left else "since"
        who = f" by {span.actor}" if span.actor else ""
        lines.append(f"{span.entered_at:%Y-%m-%d %H:%M:%S} UTC  {span.state.label:<18} {took}{who}")
    if pending is not None:
        lines.append(f"{now:%Y-%m-%d %H:%M:%S} UTC  {pending.label:<18} since")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
