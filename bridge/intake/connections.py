"""The receiver's connections, kept within bounds: what uvicorn and httptools leave open.

uvicorn 0.55 with httptools closes a connection only on its keep-alive timer, which runs
between requests; a client that sends nothing, or half a request, holds its connection for
ever, httptools buffers a header of any size, and nothing stops one client address from
taking every connection up to ``limit_concurrency`` (after which every request, RT's
included, is answered 503). ``GuardedHttpToolsProtocol`` is uvicorn's own httptools protocol
with those gaps closed, by ``model.IntakeLimits``:

- a request's line and headers must arrive within ``header_timeout`` of the connection (or of
  the previous answer on it), its body within ``body_timeout`` of the headers: else 408 (or,
  for a connection that never sent a byte, a plain close);
- the line and headers together may be ``max_header_bytes``: beyond it, 431 and close, before
  httptools has buffered more than that;
- one client address may hold ``max_connections_per_client`` connections (addresses in
  ``uncapped_clients`` excepted, e.g. a reverse proxy); more are closed as they come;
- each kind of trouble, a client hanging up in the middle of a body, and uvicorn's own
  once-per-request warnings (not HTTP, over the concurrency limit, an upgrade) are logged as one
  line, at most once per ``log_interval`` (``log_limit``).

``ConnectionGuard`` holds the state shared by the connections of one server (the counts per
address, the limited logs); ``protocol_class`` gives uvicorn a protocol class bound to one.
This module decides nothing about hooks and reads no request beyond its size and timing.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.server import ServerState

from bridge.intake import log_limit, response_writes
from bridge.settings import model as settings_model

logger = logging.getLogger(__name__)


class Trouble(enum.Enum):
    """What the guard did to a connection, or saw happen to it (the value is the log's words)."""

    TOO_MANY = "refused a connection: the client holds as many as it may"
    IDLE = "closed a connection that sent no request in time"
    SLOW_HEADERS = "closed a connection: request headers not complete in time (408)"
    LARGE_HEADERS = "refused a request: headers over the size limit (431)"
    SLOW_BODY = "closed a connection: request body not complete in time (408)"
    HUNG_UP = "a client hung up in the middle of a request body"
    # uvicorn's own warnings, one per request, said through the same limit (``_LimitedLogger``).
    NOT_HTTP = "refused a request that is not valid HTTP (400)"
    BUSY = "answered 503: the receiver holds as many connections as it may"
    UPGRADE = "refused a request to upgrade the connection"


# uvicorn's warning texts (uvicorn.protocols.http.httptools_impl) → the kind they are.
_UVICORN_WARNINGS = {
    "Invalid HTTP request received.": Trouble.NOT_HTTP,
    "Exceeded concurrency limit.": Trouble.BUSY,
    "Unsupported upgrade request.": Trouble.UPGRADE,
}


_LEVELS = {
    Trouble.TOO_MANY: logging.WARNING,
    Trouble.LARGE_HEADERS: logging.WARNING,
    Trouble.NOT_HTTP: logging.WARNING,
    Trouble.BUSY: logging.WARNING,
    Trouble.UPGRADE: logging.WARNING,
}


class ConnectionGuard:
    """The limits of one server and what its connections share: open connections per client
    address and one ``LimitedLog`` per kind of ``Trouble``."""

    def __init__(
        self,
        limits: settings_model.IntakeLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._uncapped = tuple(ipaddress.ip_network(n) for n in limits.uncapped_clients)
        self._open: collections.Counter[str] = collections.Counter()
        self.logs = {
            kind: log_limit.LimitedLog(
                logger,
                kind.value,
                interval=limits.log_interval,
                level=_LEVELS.get(kind, logging.INFO),
                clock=clock,
            )
            for kind in Trouble
        }
        self._flush_scheduled: set[Trouble] = set()

    def capped(self, host: str) -> bool:
        """Whether ``host`` is held to the per-client cap (not in ``uncapped_clients``)."""
        if not self.limits.max_connections_per_client:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return True
        return not any(address in network for network in self._uncapped)

    def open_from(self, host: str) -> int:
        """Connections ``host`` holds now."""
        return self._open[host]

    def admit(self, host: str) -> bool:
        """Count a new connection from ``host``; False (not counted) when it holds its cap."""
        if self.capped(host) and self._open[host] >= self.limits.max_connections_per_client:
            return False
        self._open[host] += 1
        return True

    def release(self, host: str) -> None:
        """A connection ``admit`` counted is gone."""
        self._open[host] -= 1
        if self._open[host] <= 0:
            del self._open[host]

    def report(self, kind: Trouble, detail: str, loop: asyncio.AbstractEventLoop) -> None:
        """Log ``kind`` (limited); what is held back is said by a timer on ``loop`` later."""
        log = self.logs[kind]
        log.note(detail)
        due = log.flush_at
        if due is not None and kind not in self._flush_scheduled:
            self._flush_scheduled.add(kind)
            loop.call_later(max(0.0, due - log.clock()), self._flush, kind, loop)

    def _flush(self, kind: Trouble, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_scheduled.discard(kind)
        log = self.logs[kind]
        log.flush()
        due = log.flush_at  # more held back since (the flush's own line started a new interval)
        if due is not None:
            self._flush_scheduled.add(kind)
            loop.call_later(max(0.0, due - log.clock()), self._flush, kind, loop)


def _answer(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, in the receiver's ``{"error"}``."""
    body = json.dumps({"error": message}).encode()
    return b"".join(
        [
            httptools_impl.STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class _LimitedLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """uvicorn's ``uvicorn.error`` logger as one connection uses it, with the warnings it says
    once per request (``_UVICORN_WARNINGS``) said through the guard's limit instead; every
    other record goes to uvicorn's logger as before."""

    def __init__(self, target: logging.Logger, report: Callable[[Trouble], None]) -> None:
        super().__init__(target, {})
        self._report = report

    @property
    def level(self) -> int:  # uvicorn reads it to decide on its trace lines
        return int(self.logger.level)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        kind = _UVICORN_WARNINGS.get(msg) if isinstance(msg, str) and not args else None
        if kind is None:
            super().warning(msg, *args, **kwargs)
        else:
            self._report(kind)


class GuardedHttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol, held to the ``guard``'s limits (see the module)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.logger = _LimitedLogger(self.logger, self._uvicorn_warned)  # type: ignore[assignment]
        self._host: str | None = None  # set once admitted (counted by the guard)
        self._reading_headers = True  # waiting for (the rest of) a request's line and headers
        self._header_bytes = 0
        self._body_bytes = 0
        self._served = False  # answered a request already (idle now: keep-alive)
        self._closing_on_purpose = False
        self._timer: asyncio.TimerHandle | None = None

    # -- the connection ---------------------------------------------------------------------

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        remote = get_remote_addr(transport)
        host = remote[0] if remote else "unknown"
        if not self.guard.admit(host):
            self.transport = transport
            self.guard.report(
                Trouble.TOO_MANY,
                f"{host} holds {self.guard.open_from(host)} "
                f"(ROLLOUT_RECEIVER_MAX_CONNECTIONS_PER_CLIENT)",
                self.loop,
            )
            transport.close()
            return
        self._host = host
        super().connection_made(transport)
        self._start(self.guard.limits.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._host is None:  # refused in connection_made: nothing of it was set up
            return
        self._stop()
        self.guard.release(self._host)
        cycle = self.cycle
        if (
            not self._closing_on_purpose
            and not self._reading_headers
            and cycle is not None
            and cycle.more_body
            and not cycle.response_complete
        ):
            self.guard.report(Trouble.HUNG_UP, self._body_detail(), self.loop)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            room = self.guard.limits.max_header_bytes - self._header_bytes
            if len(data) > room:
                # Feed only what fits: httptools would buffer all of it before any callback.
                if room > 0:
                    super().data_received(data[:room])
                if self.transport.is_closing():
                    return
                if self._reading_headers:
                    self._headers_too_large()
                    return
                data = data[room:]
            else:
                self._header_bytes += len(data)
        super().data_received(data)

    # -- httptools' callbacks ---------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._body_bytes = 0
        self._start(self.guard.limits.body_timeout, self._body_late)
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            # Head and body in one write (``response_writes``).
            cycle.transport = response_writes.HeadWithBody(  # type: ignore[assignment]
                self.transport, cycle, self.loop
            )

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop()
        self._reading_headers = True
        self._header_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._served = True
        if self._reading_headers and not self.transport.is_closing():
            # The next request's headers (the keep-alive timer may close it first).
            self._start(self.guard.limits.header_timeout, self._headers_late)

    def _uvicorn_warned(self, kind: Trouble) -> None:
        self.guard.report(kind, f"from {self._host or 'unknown'}", self.loop)

    # -- limits -----------------------------------------------------------------------------

    def _start(self, seconds: float, late: Callable[[], None]) -> None:
        self._stop()
        self._timer = self.loop.call_later(seconds, late)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self, status: int | None, message: str) -> None:
        self._stop()
        self._closing_on_purpose = True
        if status is not None:
            self.transport.write(_answer(status, message))
        self.transport.close()

    def _headers_late(self) -> None:
        self._timer = None
        if self.transport.is_closing() or not self._reading_headers:
            return
        seconds = self.guard.limits.header_timeout
        if self._header_bytes == 0:
            if not self._served:  # idle keep-alive after an answer is no trouble
                self.guard.report(Trouble.IDLE, f"{self._client()} within {seconds:g} s", self.loop)
            self._close(None, "")
            return
        self.guard.report(
            Trouble.SLOW_HEADERS,
            f"{self._client()} sent {self._header_bytes} bytes in {seconds:g} s",
            self.loop,
        )
        self._close(408, f"request headers not complete within {seconds:g} s")

    def _headers_too_large(self) -> None:
        limit = self.guard.limits.max_header_bytes
        detail = f"{self._client()} sent over {limit} bytes"
        self.guard.report(Trouble.LARGE_HEADERS, detail, self.loop)
        self._close(431, f"request headers are larger than the limit of {limit} bytes")

    def _body_late(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._reading_headers:
            return
        seconds = self.guard.limits.body_timeout
        self.guard.report(Trouble.SLOW_BODY, f"{self._body_detail()} in {seconds:g} s", self.loop)
        started = self.cycle is not None and self.cycle.response_started
        self._close(None if started else 408, f"request body not complete within {seconds:g} s")

    def _client(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"

    def _body_detail(self) -> str:
        declared = next((v for n, v in self.headers or () if n == b"content-length"), None)
        of = f" of {declared.decode('latin-1')}" if declared is not None else ""
        return f"{self._client()} after {self._body_bytes}{of} bytes"


def protocol_class(guard: ConnectionGuard) -> type[GuardedHttpToolsProtocol]:
    """A ``GuardedHttpToolsProtocol`` subclass bound to ``guard``, for ``uvicorn.Config(http=)``
    (uvicorn makes one protocol per connection, from the class and its own arguments)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": guard})
