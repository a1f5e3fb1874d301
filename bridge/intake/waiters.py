"""Handing the outcomes of one group commit to the asyncio futures waiting for them: one call
into each waiting event loop per commit, instead of one wake-up of the loop per hook.

Used by ``inbox.Inbox``'s writer thread; the futures are resolved in their own loop (asyncio
futures are not thread-safe). It stores nothing and decides nothing about hooks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

Outcome = tuple["asyncio.Future[Any]", Any, "BaseException | None"]


def settle(outcomes: list[Outcome]) -> None:
    """In the waiters' event loop: give each waiter still waiting its result or exception."""
    for waiter, result, exc in outcomes:
        if waiter.done():  # cancelled: its request went away
            continue
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(result)


class Answers:
    """The outcomes of one commit, gathered per event loop (``add``), handed over by ``flush``."""

    def __init__(self) -> None:
        self._by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}

    def add(
        self,
        loop: asyncio.AbstractEventLoop,
        waiter: asyncio.Future[Any],
        result: Any,
        exc: BaseException | None,
    ) -> None:
        """Give ``waiter`` (of ``loop``) ``result``, or ``exc`` when not None, at ``flush``."""
        self._by_loop.setdefault(loop, []).append((waiter, result, exc))

    def flush(self) -> None:
        """Schedule every gathered outcome in its loop (thread-safe); a closed loop's are
        dropped, as nobody is waiting there any more."""
        by_loop, self._by_loop = self._by_loop, {}
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(settle, outcomes)
            except RuntimeError:
                logger.debug("%d answers for a closed event loop dropped", len(outcomes))
