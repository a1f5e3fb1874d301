"""An answer's status line and headers sent in one write with its body.

uvicorn's response cycle writes the head when the app sends ``http.response.start`` and the
body when it sends ``http.response.body``: two writes, two TCP segments, and two wake-ups of
the client for every small answer. On the receiver's hot path (a 202 of some 40 bytes) those
two system calls were the largest single cost of the event loop's thread. ``HeadWithBody``
stands in for the transport of one cycle: it holds the head until the body's first write
and sends both together, or, if no body comes within the same turn of the event loop (a
streamed answer, a HEAD request), sends the head alone on the next turn. It changes no byte
and no order on the wire; it never reads a request.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class _Cycle(Protocol):
    response_started: bool


class HeadWithBody:
    """The transport as one response cycle sees it (``write``, ``close``, ``is_closing``)."""

    __slots__ = ("_cycle", "_head", "_head_seen", "_loop", "_transport")

    def __init__(
        self, transport: asyncio.Transport, cycle: _Cycle, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._transport = transport
        self._cycle = cycle
        self._loop = loop
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        if not self._head_seen and self._cycle.response_started:
            # The cycle's first write once the response has started is its head (an earlier
            # one, "100 Continue", goes out at once: the client waits for it).
            self._head_seen = True
            self._head = data
            self._loop.call_soon(self.flush)
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def flush(self) -> None:
        """Send a head still held (no body came in the same turn of the loop)."""
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # anything else a cycle may ask the transport
        return getattr(self._transport, name)
