"""Processors besides the workflow (``repo_daemon.workflow.processor``, the daemon's default).

``TrackerProcessor`` reads the ticket through the tracker client and records a
``job_processed`` event with the ticket's current RolloutProgress: it proves the path from the
queue to RT and back without changing anything (``--processor
repo_daemon.processing:default_processor``, e.g. to watch a new installation first). A ticket
that does not exist is a permanent failure (``TrackerNotFound``); RT being down is transient.
``load_processor`` resolves a ``module:attr`` spec, the extension and test hook behind
``rollout daemon --processor``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from bridge import records
from bridge.settings import model as settings_model
from bridge.store import events, queue
from bridge.tracker.client import TrackerClient
from repo_daemon import errors
from repo_daemon.daemon import runner

logger = logging.getLogger(__name__)

ClientFactory = Callable[[], TrackerClient]
ProcessorFactory = Callable[[settings_model.Settings, queue.Queue], runner.Processor]


class TrackerProcessor:
    """The default processor: read the ticket, record what RT says now.

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


def default_processor(settings: settings_model.Settings, jobs: queue.Queue) -> TrackerProcessor:
    """The read-only processor: reads each ticket, changes nothing."""
    return TrackerProcessor(jobs, lambda: TrackerClient(settings.tracker))


def load_processor(
    spec: str, settings: settings_model.Settings, jobs: queue.Queue
) -> runner.Processor:
    """The processor named by ``spec`` (``package.module:attr``).

    ``attr`` is either a factory called as ``attr(settings, queue)`` returning a processor, or
    an object with a ``process(job)`` method. Raises ``ProcessorNotFound`` saying what is wrong.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise errors.ProcessorNotFound(f"{spec!r} is not of the form package.module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise errors.ProcessorNotFound(f"cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise errors.ProcessorNotFound(f"{module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not isinstance(target, type) and callable(getattr(target, "process", None)):
        return cast(runner.Processor, target)
    if callable(target):  # a factory, or a class taking (settings, queue)
        made = target(settings, jobs)
        if callable(getattr(made, "process", None)):
            return cast(runner.Processor, made)
        raise errors.ProcessorNotFound(
            f"{spec} made a {type(made).__name__}, which has no process(job)"
        )
    raise errors.ProcessorNotFound(f"{spec} is neither a processor nor a factory of one")
