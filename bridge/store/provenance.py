"""Who and what a piece of work is done for, so the events it writes say so.

The daemon sets a ``Provenance`` around each job (the job, its RT transaction, the person who
asked, the cause, the attempt); the stores read it when they append the event of a change, so
the provenance need not be threaded through every call. Per thread (a ``ContextVar``): the
daemon's workers each carry their own. It records; it decides nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from bridge.store import events


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """The job an event belongs to, who asked, why, and which attempt."""

    job_id: int | None = None
    ticket_id: int | None = None
    transaction_id: int | None = None
    actor: str = ""
    cause: events.Cause = events.Cause.BRIDGE
    attempt: int | None = None


NONE = Provenance()
_current: ContextVar[Provenance] = ContextVar("rollout_provenance", default=NONE)


def current() -> Provenance:
    """The provenance of the work under way in this thread (``NONE`` outside a job)."""
    return _current.get()


@contextlib.contextmanager
def working_for(provenance: Provenance) -> Iterator[Provenance]:
    """Set the provenance for the block (and restore the one before afterwards)."""
    token = _current.set(provenance)
    try:
        yield provenance
    finally:
        _current.reset(token)
