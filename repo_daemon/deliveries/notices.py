"""Telling release managers in RT that an endpoint's deliveries about their release are stuck:
one comment per release for each step of a failing endpoint (warned at 50 %, at 90 %,
disabled), never one per attempt. The steps and who is concerned are decided by
``bridge.store.delivery_health``; this module only writes the words and the comments.

The endpoint is named by its subscription's name and host, never by its full URL (a URL may
carry a token in its query).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from bridge import errors
from bridge.store import delivery_health
from bridge.tracker import protocol

logger = logging.getLogger(__name__)


def text_of(notice: delivery_health.Notice, *, disable_after: float) -> str:
    """The comment for ``notice``. Pure."""
    sub = notice.subscription
    host = urlsplit(sub.url).hostname or "?"
    where = f"webhook subscription {sub.name!r} ({host})"
    since = f"{notice.spell:%Y-%m-%d %H:%M} UTC"
    last = f" The last attempt: {sub.last_error}." if sub.last_error else ""
    if notice.step == delivery_health.DISABLED:
        return (
            f"Webhook deliveries about this release are stuck: {where} was disabled "
            f"({sub.disabled_reason or 'by the bridge'}).{last}\n"
            "Its deliveries wait and nothing is lost: they are sent, in order, once the endpoint "
            f"is enabled again (rollout subscriptions enable {sub.name}, after a ping it answers)."
        )
    share = 90 if notice.step == delivery_health.WARNED_90 else 50
    ends = notice.spell + timedelta(seconds=disable_after)
    return (
        f"Webhook deliveries about this release are delayed: {where} has failed since {since} "
        f"({share} % of its failure budget used).{last}\n"
        f"They are retried; unless the endpoint recovers it will be disabled at "
        f"{ends:%Y-%m-%d %H:%M} UTC. See rollout subscriptions show {sub.name}."
    )


class Notifier:
    """Comments the notices not yet said."""

    def __init__(
        self, health: delivery_health.Health, tracker: protocol.Tracker, *, disable_after: float
    ) -> None:
        self.health = health
        self.tracker = tracker
        self.disable_after = disable_after

    def run(self) -> int:
        """Comment every unsaid notice; returns how many were said. A tracker that is down
        leaves the rest for the next run; a ticket that is gone is not asked again."""
        said = 0
        for notice in self.health.unsaid():
            try:
                self.tracker.comment(
                    notice.ticket_id, text_of(notice, disable_after=self.disable_after)
                )
            except errors.TrackerNotFound:
                logger.warning(
                    "ticket %s is gone; its delivery notice is dropped", notice.ticket_id
                )
            except errors.TrackerError as exc:
                if exc.transient:
                    logger.warning("RT did not take a delivery notice (%s); trying later", exc)
                    return said
                logger.error("RT refused a delivery notice on %s: %s", notice.ticket_id, exc)
            self.health.said(notice)
            said += 1
        return said
