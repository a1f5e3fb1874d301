"""In-memory fakes of the bridge's seams, for tests of the parts that use them.

``InMemoryQueue`` (``bridge.testing.queue``) stands in for ``bridge.store.queue.Queue`` (the
``JobQueue`` protocol and the event log) and ``FakeTracker`` (``bridge.testing.tracker``) for
``bridge.tracker.client.TrackerClient`` (the ``Tracker`` protocol), the way procrastinate ships
its ``InMemoryConnector``: product code, typed, kept true by tests that hold them to the real
things' promises (dedupe, a ticket's changes in order and one at a time, fenced finishing,
refused unknown fields, history by transaction id). They keep everything in dicts and lists:
no database, no HTTP, no clock of their own (pass one). They must not be used by the product
itself. Import them from here: ``from bridge import testing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.testing.queue import InMemoryQueue
from bridge.testing.tracker import FakeTracker, TrackerCall

__all__ = ["FakeTracker", "InMemoryQueue", "TrackerCall"]

if TYPE_CHECKING:  # mypy holds the fakes, and the real client, to the protocols
    from bridge.store import protocols, queue
    from bridge.tracker import client, protocol

    def _conforms(
        jobs: InMemoryQueue, real_jobs: queue.Queue, fake: FakeTracker, real: client.TrackerClient
    ) -> tuple[protocols.JobQueue, protocols.JobQueue, protocol.Tracker, protocol.Tracker]:
        return jobs, real_jobs, fake, real
