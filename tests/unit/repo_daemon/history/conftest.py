"""Event lists for the timeline's tests: ``make_events`` numbers events (ids and per-ticket
sequence numbers) the way the log does, from a compact spelling of each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from bridge.store.events import BRIDGE_ACTOR, Cause, Event, EventKind

T0 = datetime(2026, 11, 24, 10, 0, 0)
TICKET = 7


def at(minutes: float) -> datetime:
    """``T0`` plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


class Events:
    """Events of ticket ``TICKET`` being written, oldest first."""

    def __init__(self, first_seq: int = 1) -> None:
        self.items: list[Event] = []
        self._seq = first_seq - 1

    def add(
        self,
        kind: EventKind,
        minutes: float,
        *,
        job: int | None = None,
        actor: str = BRIDGE_ACTOR,
        cause: Cause = Cause.HOOK,
        txn: int | None = None,
        **data: Any,
    ) -> Events:
        self._seq += 1
        self.items.append(
            Event(
                id=1000 + len(self.items),
                at=at(minutes),
                kind=kind,
                ticket_id=TICKET,
                seq=self._seq,
                job_id=job,
                actor=actor,
                cause=cause,
                transaction_id=txn,
                data={"detail": f"{kind.value} at {minutes}", **data},
            )
        )
        return self

    def move(self, minutes: float, came_from: str, to: str, **more: Any) -> Events:
        """A ``transition_done`` of job 1 by anna."""
        more.setdefault("job", 1)
        more.setdefault("actor", "anna")
        return self.add(
            EventKind.TRANSITION_DONE,
            minutes,
            **{"from": came_from, "to": to, "asked": to, "actions": []},
            **more,
        )


@pytest.fixture
def make_events() -> Callable[..., Events]:
    return Events
