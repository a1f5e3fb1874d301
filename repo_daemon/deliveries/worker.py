"""The daemon's sending of deliveries: claim the due ones under a lease, sign each, post them
from a pool of threads, and record the attempts as they end.

A pipeline, not batches: deliveries are claimed ahead (up to ``batch`` at a time, into a local
queue) and started as slots free; finished attempts go to a recorder thread that writes
whatever has finished meanwhile in one transaction, while the slots keep sending. So the
database's commits are shared by many deliveries, one slow endpoint never holds back the
deliveries to others, and no endpoint gets more than half the slots. Leases of what is held are
extended while it waits. It decides nothing about retries (``bridge.store.deliveries`` does,
from the schedule it is given) nor about failing endpoints (``bridge.store.delivery_health``).
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.settings import model as settings_model
from bridge.store import deliveries
from repo_daemon.deliveries import outbound, signing

logger = logging.getLogger(__name__)
# The recorder takes every attempt finished by then, and waits this long (seconds) for more
# while it has fewer than a slot's worth, so they share a commit.
GATHER = 0.002
Finished = tuple[deliveries.Claimed, "futures.Future[deliveries.AttemptResult]"]


class DeliveryWorker:
    """Sends due deliveries until stopped (``run``), or what is due now (``drain``)."""

    def __init__(
        self,
        store: deliveries.DeliveryStore,
        sender: outbound.Sender,
        settings: settings_model.WebhookSettings,
        *,
        worker: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.sender = sender
        self.settings = settings
        self.worker = worker
        self.clock = clock
        # A lease outlives any attempt (its timeout bounds it), so only a dead daemon loses one.
        self.lease = max(settings.lease_seconds, 2 * settings.timeout + 5)
        self.slots = max(1, settings.workers)
        self.per_endpoint = max(1, self.slots // 2)
        self.ahead = max(self.slots, settings.batch)  # held (waiting or in flight) at most
        self._stop = threading.Event()
        self._pool = futures.ThreadPoolExecutor(self.slots, thread_name_prefix="delivery")
        self._flying: dict[futures.Future[deliveries.AttemptResult], deliveries.Claimed] = {}
        self._waiting: collections.deque[deliveries.Claimed] = collections.deque()
        self._finished: queue.Queue[Finished] = queue.Queue()  # sent, not yet recorded
        self._recorded = threading.Condition()
        self._unrecorded = 0
        self._recorder: threading.Thread | None = None
        self._extended = time.monotonic()
        self._reclaimed = 0.0
        self.made = 0  # attempts recorded

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Send until ``stop``: look for due deliveries every ``poll_interval`` when idle."""
        try:
            while not self._stop.is_set():
                if not self.step() and not self._flying and not self._waiting:
                    self._stop.wait(self.settings.poll_interval)
        finally:
            self._settle()

    def close(self) -> None:
        """Stop, and let the sending threads end (each attempt ends within its timeout)."""
        self.stop()
        self._settle()
        self._pool.shutdown(wait=True)
        if self._recorder is not None:
            self._finished.put(_END)
            self._recorder.join()

    def drain(self) -> int:
        """Send what is due now, and what falls due while sending; returns attempts recorded.
        Once stopped, it gives back what it holds and returns when what flies is recorded."""
        before = self.made
        try:
            while not self._stop.is_set():
                claimed = self._claim()
                self._start()
                if self._flying:
                    self._wait()
                elif not claimed and not self._waiting:
                    # Nothing held: what was sent is recorded, and then nothing else is due.
                    self._until_recorded()
                    if not self._claim():
                        break
                    self._start()
            return self.made - before
        finally:
            if self._stop.is_set():
                self._settle()

    def step(self) -> int:
        """Claim, start what fits, and hand what finished to the recorder (waiting up to
        ``poll_interval`` for something in flight). Returns how many finished."""
        self._claim()
        self._start()
        return self._wait() if self._flying else 0

    def _wait(self) -> int:
        done, _ = futures.wait(
            list(self._flying), timeout=self.settings.poll_interval, return_when="FIRST_COMPLETED"
        )
        self._keep_leases()
        done |= {f for f in self._flying if f.done()}
        for future in done:
            self._hand_over(self._flying.pop(future), future)
        return len(done)

    def _hand_over(
        self, claimed: deliveries.Claimed, future: futures.Future[deliveries.AttemptResult]
    ) -> None:
        if self._recorder is None:
            self._recorder = threading.Thread(
                target=self._record_loop, name=f"delivery-recorder-{self.worker}", daemon=True
            )
            self._recorder.start()
        with self._recorded:
            self._unrecorded += 1
        self._finished.put((claimed, future))

    def _until_recorded(self) -> None:
        with self._recorded:
            self._recorded.wait_for(lambda: self._unrecorded == 0)

    def _counts(self) -> dict[int, int]:
        held: dict[int, int] = {}
        for c in (*self._flying.values(), *self._waiting):
            held[c.subscription.id] = held.get(c.subscription.id, 0) + 1
        return held

    def _claim(self) -> int:
        """Claim ahead once fewer than ``slots`` wait, up to ``ahead`` held; endpoints holding
        half of ``ahead`` already are passed over."""
        held = len(self._flying) + len(self._waiting)
        if self._stop.is_set() or len(self._waiting) >= self.slots or held >= self.ahead:
            return 0
        full = {sub for sub, n in self._counts().items() if n >= self.ahead // 2}
        now = time.monotonic()
        reclaim = now - self._reclaimed >= self.lease / 4
        if reclaim:
            self._reclaimed = now
        claimed = self.store.claim(
            self.worker,
            limit=self.ahead - held,
            lease_seconds=self.lease,
            skip=full,
            reclaim=reclaim,
        )
        self._waiting.extend(claimed)
        return len(claimed)

    def _start(self) -> None:
        """Start waiting deliveries in the free slots, no endpoint more than its share."""
        flying = collections.Counter(c.subscription.id for c in self._flying.values())
        later: list[deliveries.Claimed] = []
        while self._waiting and len(self._flying) < self.slots and not self._stop.is_set():
            c = self._waiting.popleft()
            if flying[c.subscription.id] >= self.per_endpoint:
                later.append(c)
                continue
            flying[c.subscription.id] += 1
            self._flying[self._pool.submit(self._send, c)] = c
        self._waiting.extendleft(reversed(later))

    def _keep_leases(self) -> None:
        """Extend the leases of what is held, a few times per lease."""
        now = time.monotonic()
        if now - self._extended < self.lease / 3:
            return
        self._extended = now
        ids = [c.id for c in (*self._flying.values(), *self._waiting)]
        if ids:
            self.store.extend(self.worker, ids, lease_seconds=self.lease)

    def _record_loop(self) -> None:
        """The recorder: what has finished by now, recorded in one transaction, again and
        again. A failed transaction is logged; its deliveries keep their leases and are sent
        again after them (at least once)."""
        while True:
            batch = [self._finished.get()]
            gather = time.monotonic() + GATHER
            while True:
                try:  # everything that finished while the last transaction ran
                    batch.append(self._finished.get_nowait())
                    continue
                except queue.Empty:
                    pass
                left = gather - time.monotonic()
                if len(batch) >= self.slots or left <= 0:
                    break
                try:
                    batch.append(self._finished.get(timeout=left))
                except queue.Empty:
                    break
            ending = any(item is _END for item in batch)
            items = [item for item in batch if item is not _END]
            try:
                self._record([_result(c, f) for c, f in items])
            except Exception as exc:
                logger.error("recording %d delivery attempts failed: %s", len(items), exc)
            with self._recorded:
                self._unrecorded -= len(items)
                self.made += len(items)
                self._recorded.notify_all()
            if ending:
                return

    def _record(self, results: list[deliveries.AttemptResult]) -> None:
        self.store.finish(
            self.worker,
            results,
            schedule=self.settings.retry_schedule,
            jitter=self.settings.jitter,
        )

    def _settle(self) -> None:
        """On the way out: give back what waits, hand over what is in flight (each attempt
        ends within its timeout), and wait until it is recorded."""
        if self._waiting:
            self.store.give_back(self.worker, [c.id for c in self._waiting])
            self._waiting.clear()
        if self._flying:
            done, _ = futures.wait(list(self._flying))
            for future in done:
                self._hand_over(self._flying.pop(future), future)
        self._until_recorded()

    def _send(self, claimed: deliveries.Claimed) -> deliveries.AttemptResult:
        now = self.clock()
        body = claimed.payload.encode("utf-8")
        headers = signing.headers_for(
            webhook_id=claimed.webhook_id,
            timestamp=now.replace(tzinfo=UTC),
            body=body,
            secrets=claimed.subscription.signing_secrets(now),
            github=claimed.subscription.github_signature,
        )
        outcome = self.sender.post(claimed.subscription.url, body, headers)
        return deliveries.AttemptResult(
            delivery_id=claimed.id,
            attempt=claimed.attempt,
            request_headers=signing.redacted(headers),
            status=outcome.status,
            response_body=outcome.body,
            duration=outcome.duration,
            error_class=None if outcome.error_class is None else outcome.error_class.label,
            error=outcome.error,
            retry_after=outcome.retry_after,
        )


_END: Finished = (None, None)  # type: ignore[assignment]  # tells the recorder to stop


def _result(
    claimed: deliveries.Claimed, future: futures.Future[deliveries.AttemptResult]
) -> deliveries.AttemptResult:
    """The attempt's result; the bridge's own trouble (a secret that is no secret, a bug) is a
    failed attempt retried by the schedule like any other, and said in its row."""
    try:
        return future.result()
    except Exception as exc:
        logger.error("delivery %s could not be sent: %s", claimed.id, exc)
        return deliveries.AttemptResult(
            delivery_id=claimed.id,
            attempt=claimed.attempt,
            request_headers={},
            status=None,
            response_body=b"",
            duration=0.0,
            error_class="bridge",
            error=f"the bridge could not send it: {type(exc).__name__}: {exc}",
        )
