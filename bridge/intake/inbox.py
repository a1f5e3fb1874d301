"""The receiver's two writers around ``queue.Queue``: group commit of accepted hooks, and a
rate-limited record of refused ones.

``Inbox`` is one thread that takes every pending hook at once, stores them with one
``queue.enqueue_many`` call (one durable transaction), then resolves each hook's future (the
waiters of one event loop all in one call into that loop). So concurrent hooks share commits,
and no hook is answered before its commit has returned.
``RefusalRecorder`` is another thread that writes ``hook_refused`` events, capped per second
so that a flood of bad calls cannot turn into a flood of database writes; what it leaves out
it counts in a log line. Neither judges hooks (``webhooks`` does) nor speaks HTTP
(``receiver`` does).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import sqlalchemy as sa

from bridge import errors, records
from bridge.intake import waiters
from bridge.store import events as eventlog
from bridge.store import queue as jobqueue

logger = logging.getLogger(__name__)


class InboxClosed(errors.BridgeError):
    """The inbox is not taking hooks (not started yet, or shutting down)."""

    transient = True


class QueueUnavailable(errors.BridgeError):
    """The commit failed (database down, full, locked…); nothing of the batch was stored."""

    transient = True


def describe(exc: BaseException, engine: sa.Engine | None = None) -> str:
    """One line on why a database call failed, safe to show: no password, no SQL."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0] if lines else 'no details'}"
    password = engine.url.password if engine is not None else None
    if password:
        text = text.replace(str(password), "********")
    return text[:300]


def _data_error(exc: BaseException) -> bool:
    """Whether the failure is about the rows, not the database (so the others may still go)."""
    return isinstance(exc, sa.exc.DBAPIError) and not isinstance(
        exc, sa.exc.OperationalError | sa.exc.InterfaceError
    )


@dataclass
class _Pending:
    request: records.ReleaseRequest
    future: Future[jobqueue.Enqueued] | None = None  # from ``submit``
    waiter: asyncio.Future[jobqueue.Enqueued] | None = None  # from ``submit_async``
    loop: asyncio.AbstractEventLoop | None = None

    def answer(
        self,
        answers: waiters.Answers,
        result: jobqueue.Enqueued | None = None,
        exc: BaseException | None = None,
    ) -> None:
        """Resolve ``submit``'s future now, or leave ``submit_async``'s to ``answers``."""
        if self.future is not None:
            if exc is not None:
                self.future.set_exception(exc)
            else:
                self.future.set_result(result)  # type: ignore[arg-type]
        elif self.waiter is not None and self.loop is not None:
            answers.add(self.loop, self.waiter, result, exc)

    def claim(self) -> bool:
        """False when a ``submit`` future was cancelled before its commit (left out)."""
        return self.future is None or self.future.set_running_or_notify_cancel()


class Inbox:
    """Group commit of accepted hooks: ``submit`` from any thread, one writer thread commits.

    ``max_batch`` caps how many hooks share one transaction (so one commit stays short).
    """

    def __init__(self, queue: jobqueue.Queue, *, max_batch: int = 256) -> None:
        self._queue = queue
        self.max_batch = max_batch
        self._pending: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        # Counters, written by the writer thread only (read them for logs and benchmarks).
        self.commits = 0
        self.stored = 0
        self.largest_batch = 0
        self.failed_commits = 0

    def start(self) -> None:
        """Start the writer thread (once)."""
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="hook-inbox", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        """Whether hooks are being taken."""
        return self._thread is not None and self._thread.is_alive() and not self._closing

    def submit(self, request: records.ReleaseRequest) -> Future[jobqueue.Enqueued]:
        """Queue ``request`` for the next commit; the future resolves once it is durable.

        The future's result is the ``queue.Enqueued`` (job id, and ``created`` False for a
        transaction queued before); its exception is ``QueueUnavailable`` when the commit
        failed. Cancelling the future before the commit begins leaves the hook out.
        Raises ``InboxClosed`` when not started or shutting down.
        """
        future: Future[jobqueue.Enqueued] = Future()
        self._add(_Pending(request, future=future))
        return future

    def submit_async(self, request: records.ReleaseRequest) -> asyncio.Future[jobqueue.Enqueued]:
        """``submit`` for a caller in an event loop: an asyncio future of that loop, resolved
        with the others of its commit in one call into the loop (cheaper than wrapping the
        future of ``submit``). The hook is stored even if the future is cancelled meanwhile.
        Raises ``InboxClosed`` when not started or shutting down."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[jobqueue.Enqueued] = loop.create_future()
        self._add(_Pending(request, waiter=waiter, loop=loop))
        return waiter

    def _add(self, item: _Pending) -> None:
        with self._cond:
            if self._closing or self._thread is None:
                raise InboxClosed("the receiver is not taking hooks (starting or shutting down)")
            self._pending.append(item)
            self._cond.notify()

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop taking hooks, commit every hook submitted so far, stop the thread.

        Hooks still pending after ``timeout`` (the database hung) fail with ``InboxClosed``,
        so every waiting request gets an answer.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            left, self._pending = list(self._pending), deque()
        answers = waiters.Answers()
        for item in left:
            if item.claim():
                item.answer(answers, exc=InboxClosed("the receiver stopped before storing it"))
        answers.flush()
        if left:
            logger.error("inbox closed with %d hooks not stored (answered 503)", len(left))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return  # closing, and everything submitted has been committed
                count = min(len(self._pending), self.max_batch)
                batch = [self._pending.popleft() for _ in range(count)]
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        live = [item for item in batch if item.claim()]
        if not live:
            return
        answers = waiters.Answers()
        try:
            self._store(live, answers)
        finally:
            answers.flush()

    def _store(self, live: list[_Pending], answers: waiters.Answers) -> None:
        try:
            results = self._queue.enqueue_many([item.request for item in live])
        except Exception as exc:
            self.failed_commits += 1
            if len(live) > 1 and _data_error(exc):
                # One unstorable row must not cost the rest of the batch their answers.
                logger.warning("batch of %d refused by the database; storing one by one", len(live))
                for item in live:
                    self._store_one(item, answers)
                return
            reason = describe(exc, self._queue.engine)
            logger.error("commit of %d hooks failed: %s", len(live), reason)
            unavailable = f"the queue database is unavailable ({reason})"
            for item in live:
                item.answer(answers, exc=QueueUnavailable(unavailable))
            return
        self.commits += 1
        self.stored += len(live)
        self.largest_batch = max(self.largest_batch, len(live))
        for item, result in zip(live, results, strict=True):
            item.answer(answers, result)

    def _store_one(self, item: _Pending, answers: waiters.Answers) -> None:
        try:
            (result,) = self._queue.enqueue_many([item.request])
        except Exception as exc:
            reason = describe(exc, self._queue.engine)
            logger.error(
                "transaction %s could not be stored: %s",
                item.request.transaction_id,
                reason,
                extra={"ticket_id": item.request.ticket_id},
            )
            item.answer(answers, exc=QueueUnavailable(f"the hook could not be stored ({reason})"))
            return
        self.commits += 1
        self.stored += 1
        item.answer(answers, result)


class TokenBucket:
    """``rate`` events per second on average, up to ``burst`` at once. Not thread-safe."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        """Spend one token; False when there is none (the event is over the limit)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass(frozen=True, kw_only=True)
class _Refusal:
    ticket_id: int | None
    transaction_id: int | None
    http_status: int
    reason: str
    caller: str
    needs_comment: bool
    future: Future[int]

    @property
    def detail(self) -> str:
        """The line operators read: "HTTP 400: <reason> (from <caller>)"."""
        return f"HTTP {self.http_status}: {self.reason} (from {self.caller})"[:4000]


class RefusalRecorder:
    """Writes ``hook_refused`` events from a thread of its own, at most so many per second.

    Signed hooks (from RT itself) and unsigned ones have separate budgets, so a flood of
    forged calls cannot crowd out the refusals that lead to a comment on a ticket.
    """

    def __init__(
        self,
        queue: jobqueue.Queue,
        *,
        signed_per_second: float = 50.0,
        unsigned_per_second: float = 5.0,
        max_pending: int = 200,
        summary_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._buckets = {
            True: TokenBucket(signed_per_second, 2 * signed_per_second, clock),
            False: TokenBucket(unsigned_per_second, 2 * unsigned_per_second, clock),
        }
        self.max_pending = max_pending
        self.summary_every = summary_every
        self._clock = clock
        self._pending: deque[_Refusal] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.recorded = 0
        self.dropped = 0  # over the limit since the last summary line
        self.dropped_total = 0

    def start(self) -> None:
        """Start the recording thread (once)."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hook-refusals", daemon=True)
                self._thread.start()

    def record(
        self,
        *,
        signed: bool,
        ticket_id: int | None,
        transaction_id: int | None,
        http_status: int,
        reason: str,
        caller: str,
        needs_comment: bool,
    ) -> Future[int] | None:
        """Queue one refusal for the event log; the future resolves to the event id.

        ``http_status`` is the answer given, ``reason`` what the ticket is told, ``caller`` who
        called (address, and whether RT signed it), for operators. Each is stored on its own.

        Returns None, and only counts it, when over the limit or not running.
        """
        with self._cond:
            if (
                self._closing
                or self._thread is None
                or len(self._pending) >= self.max_pending
                or not self._buckets[signed].take()
            ):
                self.dropped += 1
                self.dropped_total += 1
                return None
            future: Future[int] = Future()
            self._pending.append(
                _Refusal(
                    ticket_id=ticket_id,
                    transaction_id=transaction_id,
                    http_status=http_status,
                    reason=reason[:4000],
                    caller=caller[:400],
                    needs_comment=needs_comment,
                    future=future,
                )
            )
            self._cond.notify()
        return future

    def close(self, timeout: float | None = 10.0) -> None:
        """Record what is pending, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._summarise()

    def _summarise(self) -> None:
        with self._cond:
            dropped, self.dropped = self.dropped, 0
        if dropped:
            logger.warning(
                "%d refused hooks were not recorded: over the limit of refusals per second",
                dropped,
            )

    def _run(self) -> None:
        next_summary = self._clock() + self.summary_every
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait(timeout=self.summary_every)
                item = self._pending.popleft() if self._pending else None
                stop = item is None and self._closing
            if self._clock() >= next_summary:
                self._summarise()
                next_summary = self._clock() + self.summary_every
            if stop:
                return
            if item is not None:
                self._write(item)

    def _write(self, item: _Refusal) -> None:
        if not item.future.set_running_or_notify_cancel():
            return
        try:
            event_id = self._queue.record_event(
                eventlog.EventKind.HOOK_REFUSED,
                ticket_id=item.ticket_id,
                transaction_id=item.transaction_id,
                detail=item.detail,
                needs_comment=item.needs_comment,
                http_status=item.http_status,
                reason=item.reason,
                caller=item.caller,
            )
        except Exception as exc:
            logger.error(
                "could not record a refused hook (%s): %s",
                describe(exc, self._queue.engine),
                item.detail,
            )
            item.future.set_exception(exc)
            return
        self.recorded += 1
        logger.warning(
            "hook refused: %s",
            item.detail,
            extra={"ticket_id": item.ticket_id, "transaction_id": item.transaction_id},
        )
        item.future.set_result(event_id)
