"""A read-only processor for tests: ``TrackerProcessor`` reads each job's ticket through the
tracker client and records a ``job_processed`` event with the ticket's current RolloutProgress.

It proves the path from the queue to RT and back without changing anything. A ticket that does
not exist is a permanent failure (``TrackerNotFound``); RT being down is transient. It is not
part of the product: the daemon runs the workflow processor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bridge import records
from bridge.store import events, queue
from bridge.tracker.client import TrackerClient

logger = logging.getLogger(__name__)


ClientFactory = Callable[[], TrackerClient]


class TrackerProcessor:
    """Read the ticket, record what RT says now.

    A tracker client is made per thread (the client's counters are not locked), on first use.
    """

    def __init__(self, jobs: queue.Queue, client_factory: ClientFactory) -> None:
        self.queue = jobs
        self._factory = client_factory
        self._local = threading.local()
        self._clients: list[TrackerClient] = []
        self._lock = threading.Lock()

    def _client(self) -> TrackerClient:
        client: TrackerClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def gave_up(self, job: records.Job, message: str) -> None:
        """Nothing to tell anyone about a dead letter."""

    def process(self, job: records.Job) -> None:
        """Read the ticket and record a ``job_processed`` event. Raises ``TrackerError``s."""
        ticket = self._client().get_ticket(job.ticket_id)
        request = job.request
        self.queue.record_event(
            events.EventKind.JOB_PROCESSED,
            ticket_id=job.ticket_id,
            transaction_id=request.transaction_id,
            job_id=job.id,
            detail=(
                f"ticket {ticket.id} is at RolloutProgress {ticket.rollout_state.label} "
                f"(change {request.previous.label} → {request.current.label} by "
                f"{request.actor or 'unknown'}, {request.source.label})"
            ),
        )
        logger.info(
            "job %s: ticket %s is at %s",
            job.id,
            ticket.id,
            ticket.rollout_state.label,
            extra={"job_id": job.id, "ticket_id": ticket.id, "action": "read_ticket"},
        )

    def close(self) -> None:
        """Close every client this processor made."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
