"""The daemon's sending of deliveries: claim the due ones under a lease, sign each, post them
from a pool of threads, and record every attempt as it ends.

A pipeline, not batches: a slot that frees is filled by the next claim, and each result is
recorded with whatever else finished meanwhile, so one slow endpoint never holds back the
deliveries to others; and no endpoint gets more than half the slots. It decides nothing about
retries (``bridge.store.deliveries`` does, from the schedule it is given) nor about failing
endpoints (``health``).
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.settings import model as settings_model
from bridge.store import deliveries
from repo_daemon.deliveries import outbound, signing

logger = logging.getLogger(__name__)


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
        self._stop = threading.Event()
        self._pool = futures.ThreadPoolExecutor(self.slots, thread_name_prefix="delivery")
        self._flying: dict[futures.Future[deliveries.AttemptResult], deliveries.Claimed] = {}

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Send until ``stop``: look for due deliveries every ``poll_interval`` when idle."""
        try:
            while not self._stop.is_set():
                if not self.step() and not self._flying:
                    self._stop.wait(self.settings.poll_interval)
        finally:
            self._settle()

    def close(self) -> None:
        """Stop, and let the sending threads end (each attempt ends within its timeout)."""
        self.stop()
        self._pool.shutdown(wait=True)

    def drain(self) -> int:
        """Send what is due now, and what falls due while sending; returns attempts made."""
        made = 0
        while True:
            self._fill()
            if not self._flying:
                return made
            made += self._wait()

    def step(self) -> int:
        """Fill free slots, then record what finished (waiting up to ``poll_interval`` if
        something flies). Returns how many attempts were recorded."""
        self._fill()
        return self._wait() if self._flying else 0

    def _wait(self) -> int:
        done, _ = futures.wait(
            list(self._flying), timeout=self.settings.poll_interval, return_when="FIRST_COMPLETED"
        )
        return self._record(done)

    def _fill(self) -> int:
        """Claim into the free slots, skipping endpoints that have their share in flight."""
        free = self.slots - len(self._flying)
        if free <= 0 or self._stop.is_set():
            return 0
        per: dict[int, int] = {}
        for c in self._flying.values():
            per[c.subscription.id] = per.get(c.subscription.id, 0) + 1
        full = {sub for sub, n in per.items() if n >= self.per_endpoint}
        claimed = self.store.claim(self.worker, limit=free, lease_seconds=self.lease, skip=full)
        surplus: list[int] = []
        for c in claimed:
            if per.get(c.subscription.id, 0) >= self.per_endpoint:
                surplus.append(c.id)
                continue
            per[c.subscription.id] = per.get(c.subscription.id, 0) + 1
            self._flying[self._pool.submit(self._send, c)] = c
        if surplus:
            self.store.give_back(self.worker, surplus)
        return len(claimed) - len(surplus)

    def _record(self, done: set[futures.Future[deliveries.AttemptResult]]) -> int:
        results = []
        for future in done:
            claimed = self._flying.pop(future)
            try:
                results.append(future.result())
            except Exception as exc:
                # The bridge's own trouble (a secret that is no secret, a bug): an attempt that
                # failed, retried by the schedule like any other, and said in its row.
                logger.error("delivery %s could not be sent: %s", claimed.id, exc)
                results.append(
                    deliveries.AttemptResult(
                        delivery_id=claimed.id,
                        request_headers={},
                        status=None,
                        response_body=b"",
                        duration=0.0,
                        error_class="bridge",
                        error=f"the bridge could not send it: {type(exc).__name__}: {exc}",
                    )
                )
        self.store.finish(
            self.worker,
            results,
            schedule=self.settings.retry_schedule,
            jitter=self.settings.jitter,
        )
        return len(results)

    def _settle(self) -> None:
        """On the way out: record what is in flight (each attempt ends within its timeout)."""
        if self._flying:
            done, _ = futures.wait(list(self._flying))
            self._record(done)

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
            request_headers=signing.redacted(headers),
            status=outcome.status,
            response_body=outcome.body,
            duration=outcome.duration,
            error_class=None if outcome.error_class is None else outcome.error_class.label,
            error=outcome.error,
            retry_after=outcome.retry_after,
        )
