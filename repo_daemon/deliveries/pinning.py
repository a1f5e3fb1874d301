"""The connections of outbound deliveries: a ``requests`` adapter whose urllib3 connections
resolve the URL's host themselves, ask ``DestinationPolicy`` about every address at that
moment, and connect to a checked address, so a name that changes its answer between a check
and a connect (DNS rebinding) cannot slip past; and the deadline that bounds one attempt.

Only urllib3's ``_new_conn`` is replaced: the ``Host`` header, TLS's server name (SNI) and the
certificate check still use the URL's host, since urllib3 keeps ``host`` apart from the
address it dials. HTTP itself stays urllib3's. It decides nothing about where deliveries may
go (``destinations`` does) and nothing about what an answer means (``outbound`` does).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.util.connection

from repo_daemon.deliveries import destinations

RESOLVER_THREADS = 8


class DestinationRefused(Exception):
    """A destination refused before anything was connected (the message says why and how to
    allow it). Not an ``OSError``, so neither urllib3 nor requests wraps or retries it: it
    comes straight out of ``Session.post``."""


class Deadline:
    """One attempt's deadline: what is left of it, the address connected to, and the socket
    to shut down when it passes (shutting a socket down wakes a read blocked on it; closing it
    from another thread would not)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self.address: str | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it has)."""
        if sock is None:
            return
        with self._lock:
            if self._done:
                return
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            found = list(self._sockets)
        for sock in found:
            _shut(sock)

    def finish(self) -> None:
        """The attempt is over: a late expiry must not cut a connection back in its pool."""
        with self._lock:
            self._done = True
            self._sockets.clear()

    @property
    def finished(self) -> bool:
        return self._done


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown on a TLS socket too: it acts on the descriptor only and
    # leaves the TLS object to the thread reading with it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()


class _Watchdog:
    """One thread that expires every attempt's deadline when it passes (a thread per attempt
    cost more than the attempt on loopback). Finished deadlines are dropped when they come up."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._count = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._count), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="delivery-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, deadline = self._heap[0]
                left = at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
            deadline.expire()


_watchdog = _Watchdog()


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[Deadline]:
    """A deadline for what this thread does inside: connections made then resolve and connect
    within it, and their sockets are shut down when it passes."""
    deadline = Deadline(seconds)
    _current.deadline = deadline
    _watchdog.watch(deadline)
    try:
        yield deadline
    finally:
        deadline.finish()
        _current.deadline = None


_resolvers: concurrent.futures.ThreadPoolExecutor | None = None
_resolvers_lock = threading.Lock()


def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses of ``host`` in the resolver's order, without repeats, within ``timeout``
    seconds (the system resolver has no deadline of its own, so it runs in a small pool).
    Raises ``socket.gaierror`` or ``TimeoutError``. An address is its own answer."""
    global _resolvers
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]
    with _resolvers_lock:
        if _resolvers is None:
            _resolvers = concurrent.futures.ThreadPoolExecutor(
                RESOLVER_THREADS, thread_name_prefix="resolve"
            )
    family = urllib3.util.connection.allowed_gai_family()
    future = _resolvers.submit(socket.getaddrinfo, host, port, family, socket.SOCK_STREAM)
    found = future.result(timeout=timeout)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _connect(
    conn: urllib3.connection.HTTPConnection, policy: destinations.DestinationPolicy
) -> socket.socket:
    """``conn``'s socket, connected to a checked address of its host (its ``_new_conn``)."""
    deadline: Deadline | None = getattr(_current, "deadline", None)
    budget = deadline.remaining() if deadline is not None else 15.0
    start = time.monotonic()
    host = str(conn._dns_host).strip("[]")
    try:
        addresses = resolve(host, conn.port, budget)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise urllib3.exceptions.ConnectTimeoutError(conn, "resolving timed out") from exc
    refused = policy.refused(host, addresses)
    if refused is not None:
        raise DestinationRefused(refused)
    last: OSError | None = None
    for address in addresses:
        left = max(budget - (time.monotonic() - start), 0.001)
        if deadline is not None:
            deadline.address = address  # the one tried last, for the error's text
        try:
            sock = urllib3.util.connection.create_connection(
                (address, conn.port), left, conn.source_address, conn.socket_options
            )
        except TimeoutError as exc:
            raise urllib3.exceptions.ConnectTimeoutError(conn, "connecting timed out") from exc
        except OSError as exc:
            last = exc
            continue
        return sock
    raise urllib3.exceptions.NewConnectionError(conn, f"connecting failed: {last}") from last


def _watched(sock: Any) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


def _pool_classes(
    policy: destinations.DestinationPolicy,
) -> dict[str, type[urllib3.connectionpool.HTTPConnectionPool]]:
    class HTTPConnection(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, policy)

        def getresponse(self) -> Any:  # a reused connection is watched from here
            _watched(self.sock)
            return super().getresponse()

    class HTTPSConnection(urllib3.connection.HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, policy)

        def getresponse(self) -> Any:
            _watched(self.sock)
            return super().getresponse()

    class HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = HTTPConnection

    class HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = HTTPSConnection

    return {"http": HTTPPool, "https": HTTPSPool}


class PinnedAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter whose connections go only where ``policy`` allows, pinned to the
    address checked; no retries of its own (the deliveries' schedule retries)."""

    def __init__(self, policy: destinations.DestinationPolicy, pool_connections: int) -> None:
        self._policy = policy
        retries = urllib3.Retry(total=0, redirect=False, raise_on_status=False)
        super().__init__(pool_connections, pool_connections, max_retries=retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._policy)
