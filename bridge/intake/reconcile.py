"""Reconciliation: find the changes whose hook never reached the bridge.

RT's scrip POSTs each change once and never retries. So the daemon regularly asks RT
(TransactionSQL over REST2) for the changes the bridge follows (``records.TrackedField``: the
custom fields RolloutProgress, EarlyAdopters, StageRollout Report and EmergencyRelease, and the
ticket's status) on tickets of the release queue newer than a cursor (the highest RT
transaction id already looked at, kept in the queue's state table as ``reconcile_cursor``) and
queues them as ``JobSource.RECOVERED``. RT's transaction id is the queue's dedupe key, so a
change whose hook did arrive (or arrives late) is queued exactly once. A field the queue does
not have yet (an RT not re-initialised since the bridge began to follow it) is left out.

The first run with no cursor starts from the newest change: nothing historical is queued.
``run(since=N)`` (``rollout reconcile --since N``) backfills everything after transaction N.
This module decides nothing about processing; it only fills the queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bridge import errors, records
from bridge.store import events, queue
from bridge.tracker import history

logger = logging.getLogger(__name__)

CURSOR_KEY = "reconcile_cursor"
FIELD_NAME = "RolloutProgress"
# The custom fields followed; the status is the other tracked change.
CUSTOM_FIELDS = tuple(t.label for t in records.TrackedField if t is not records.TrackedField.STATUS)


class TrackerHistory(Protocol):
    """The tracker calls reconciliation needs (``bridge.tracker.client.TrackerClient`` has them)."""

    def custom_field_ids(self, names: Sequence[str], queue: str) -> dict[str, int]: ...

    def field_changes_since(
        self,
        watched: history.Watched,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
    ) -> list[history.FieldChange]: ...

    def newest_field_change(self, watched: history.Watched, *, queue: str) -> int | None: ...


@dataclass(frozen=True, kw_only=True)
class ReconcileReport:
    """What one reconciliation run found and did."""

    cursor_before: int | None  # where this pass started (the cursor, or ``since``)
    cursor_after: int  # the stored cursor after the pass
    scanned_to: int = 0  # the newest transaction this pass looked at
    first_run: bool = False
    found: int = 0  # changes RT reported after the cursor
    queued: tuple[int, ...] = ()  # ids of the jobs created: hooks that never came
    known: int = 0  # changes already queued (their hook did arrive)
    refused: tuple[int, ...] = field(default=())  # transactions with a value we do not know

    def summary(self) -> str:
        """One line for logs and the CLI."""
        if self.first_run:
            return (
                f"first run: cursor set to transaction {self.cursor_after}; earlier changes "
                "were not queued (backfill with `rollout reconcile --since TXN`)"
            )
        return (
            f"{self.found} change(s) after transaction {self.cursor_before}: "
            f"{len(self.queued)} queued as recovered, {self.known} already queued, "
            f"{len(self.refused)} refused; cursor now {self.cursor_after}"
        )


def _request(change: history.FieldChange) -> records.ReleaseRequest:
    """The queued form of a change found in RT's history; ``ValueError`` for a RolloutProgress
    value the bridge does not know."""
    return records.ReleaseRequest.field_change(
        ticket_id=change.ticket_id,
        transaction_id=change.transaction_id,
        field=records.TrackedField.parse(change.field),
        old_value=change.old,
        new_value=change.new,
        actor=change.actor,
        # Not in the history; processing reads the ticket's current EmergencyRelease anyway.
        emergency=False,
        source=records.JobSource.RECOVERED,
        changed_at=change.changed_at,
    )


class Reconciler:
    """Reconciles one release queue of RT with the bridge's queue. Runs are serialised."""

    def __init__(
        self,
        jobs: queue.Queue,
        tracker: TrackerHistory,
        queue_name: str,
        *,
        batch_limit: int = 1000,
    ) -> None:
        self.queue = jobs
        self.tracker = tracker
        self.queue_name = queue_name
        self.batch_limit = batch_limit
        self._lock = threading.Lock()

    def cursor(self) -> int | None:
        """The stored cursor, or None before the first run."""
        value = self.queue.get_state(CURSOR_KEY)
        return int(value) if value is not None else None

    def _advance(self, value: int) -> None:
        # Several daemons may reconcile at once; never move the cursor backwards (a lost race
        # only means a later run looks at a few changes again, which the dedupe key absorbs).
        current = self.cursor()
        if current is None or value > current:
            self.queue.set_state(CURSOR_KEY, str(value))

    def run(self, *, since: int | None = None) -> ReconcileReport:
        """One pass: queue the changes after the cursor (or after ``since``), at most
        ``batch_limit`` of them. Raises ``TrackerError`` when RT cannot be asked."""
        with self._lock:
            watched = self._watched()
            stored = self.cursor()
            if since is None and stored is None:
                return self._first_run(watched)
            after = since if since is not None else stored
            assert after is not None
            changes = self.tracker.field_changes_since(
                watched, after, queue=self.queue_name, limit=self.batch_limit
            )
            return self._queue(changes, after)

    def _watched(self) -> history.Watched:
        """The followed fields the queue has, and its status. Raises ``TrackerNotFound`` when
        even RolloutProgress is missing (RT is not set up)."""
        ids = self.tracker.custom_field_ids(CUSTOM_FIELDS, self.queue_name)
        if FIELD_NAME not in ids:
            raise errors.TrackerNotFound(
                f"queue {self.queue_name!r} has no custom field {FIELD_NAME!r} (or the bridge's "
                "account may not see it); run `rollout tracker init`",
                operation="reconcile",
            )
        return history.Watched(
            custom_fields={field_id: name for name, field_id in ids.items()}, status=True
        )

    def run_until_done(self, *, since: int | None = None) -> list[ReconcileReport]:
        """Passes until RT reports nothing more (for ``rollout reconcile``)."""
        reports = [self.run(since=since)]
        while not reports[-1].first_run and reports[-1].found >= self.batch_limit:
            reports.append(self.run(since=reports[-1].scanned_to))
        return reports

    def _first_run(self, watched: history.Watched) -> ReconcileReport:
        newest = self.tracker.newest_field_change(watched, queue=self.queue_name) or 0
        self._advance(newest)
        logger.warning(
            "reconciliation's first run: starting after transaction %d, the newest "
            "followed change in queue %s; earlier changes are NOT queued (backfill "
            "them with `rollout reconcile --since TXN`)",
            newest,
            self.queue_name,
            extra={"action": "reconcile", "transaction_id": newest},
        )
        return ReconcileReport(
            cursor_before=None, cursor_after=newest, scanned_to=newest, first_run=True
        )

    def _queue(self, changes: Sequence[history.FieldChange], after: int) -> ReconcileReport:
        requests: list[records.ReleaseRequest] = []
        refused: list[int] = []
        for change in sorted(changes, key=lambda c: c.transaction_id):
            try:
                requests.append(_request(change))
            except ValueError as exc:
                refused.append(change.transaction_id)
                self._refuse(change, str(exc))
        results = self.queue.enqueue_many(requests)
        created = tuple(r.job_id for r in results if r.created)
        for request, result in zip(requests, results, strict=True):
            if result.created:
                logger.info(
                    "recovered transaction %d of ticket %d (%s): its hook never came; "
                    "queued as job %d",
                    request.transaction_id,
                    request.ticket_id,
                    request.describe(),
                    result.job_id,
                    extra={"job_id": result.job_id, "action": "reconcile"},
                )
        newest = max([after, *(c.transaction_id for c in changes)])
        self._advance(newest)
        stored = self.cursor()
        report = ReconcileReport(
            cursor_before=after,
            cursor_after=max(newest, stored or 0),
            scanned_to=newest,
            found=len(changes),
            queued=created,
            known=len(requests) - len(created),
            refused=tuple(refused),
        )
        level = logging.INFO if changes else logging.DEBUG
        logger.log(level, "reconciliation: %s", report.summary(), extra={"action": "reconcile"})
        return report

    def _refuse(self, change: history.FieldChange, reason: str) -> None:
        """A value the bridge does not know: tell the ticket once (the receiver may have
        refused the same change's hook already)."""
        told = any(
            e.transaction_id == change.transaction_id
            for e in self.queue.events(ticket_id=change.ticket_id, limit=1000)
        )
        logger.warning(
            "transaction %d of ticket %d not queued: %s",
            change.transaction_id,
            change.ticket_id,
            reason,
            extra={"action": "reconcile"},
        )
        if not told:
            self.queue.record_event(
                events.EventKind.RECOVERED_REFUSED,
                ticket_id=change.ticket_id,
                transaction_id=change.transaction_id,
                detail=f"RolloutProgress was set to {change.new!r}, which the bridge does not "
                f"know ({reason}); the change was not acted on",
                needs_comment=True,
            )
