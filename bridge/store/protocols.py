"""The seams to the store that other parts are written against, as ``Protocol``s.

``JobQueue`` is what the runner (``repo_daemon.daemon.runner``) needs of a queue:
``bridge.store.queue.Queue`` is the real one, ``bridge.testing.InMemoryQueue`` the fake.
Declarations only: no behaviour lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from bridge import records
from bridge.store import event_log, events, retry


class JobQueue(Protocol):
    """Claim, heartbeat, finish and give back jobs, and record events about them."""

    lease: timedelta

    def claim(self, worker: str, *, limit: int = 1) -> list[records.Job]: ...

    def heartbeat(self, job_id: int, worker: str) -> bool: ...

    def complete(
        self,
        job_id: int,
        worker: str,
        *,
        job: records.Job | None = None,
        also: Sequence[event_log.Draft] = (),
    ) -> bool: ...

    def give_back(self, job_id: int, worker: str) -> bool: ...

    def fail(
        self,
        job: records.Job,
        worker: str,
        error: str,
        *,
        transient: bool,
        policy: retry.RetryPolicy,
        action: str | None = None,
    ) -> records.JobStatus | None: ...

    def record_event(
        self,
        kind: events.EventKind,
        *,
        ticket_id: int | None = None,
        transaction_id: int | None = None,
        job_id: int | None = None,
        detail: str = "",
        needs_comment: bool = False,
        http_status: int | None = None,
        reason: str | None = None,
        caller: str | None = None,
    ) -> int: ...
