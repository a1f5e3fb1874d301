"""What this receiver process did with the hooks it was sent, as Prometheus counters: hooks
accepted (queued, or a duplicate of one queued before) and hooks refused, by a bounded reason.

Process-local: each receiver counts its own, from its start (the shared truth read from the
database is ``repo_daemon.observability``'s). ``INTAKE`` is the process's instance; the
receiver counts into it unless given another (tests). It never labels by ticket, caller or
the refusal's free text: a reason is one of ``REASONS``, derived from the answer's status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Counter
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# The refusals' reasons, by the HTTP status the receiver answers them with (``webhooks``):
# every refusal the receiver makes has one of these statuses.
REASON_BY_STATUS: Mapping[int, str] = {
    400: "malformed",  # not JSON / form, ids that do not match, a client that hung up
    401: "signature",  # unsigned, badly signed or stale
    413: "too_large",  # the body is over the size limit
    415: "media_type",  # neither JSON nor form-encoded
    422: "invalid",  # a field missing or invalid
    503: "unavailable",  # the queue database or the writer cannot take it now
}
OTHER = "other"
REASONS = (*REASON_BY_STATUS.values(), OTHER)
RESULTS = ("queued", "duplicate")


def reason_of(status: int) -> str:
    """The bounded reason of a refusal answered with HTTP ``status``."""
    return REASON_BY_STATUS.get(status, OTHER)


class IntakeMetrics(Collector):
    """The receiver's counters (a ``Collector``: register it, or collect it from another).
    Every label value is present from the start, at zero."""

    def __init__(self) -> None:
        self.accepted = Counter(
            "rollout_hooks_accepted",
            "Hooks this receiver answered 2xx: stored (queued) or already stored (duplicate).",
            ["result"],
            registry=None,
        )
        self.refused = Counter(
            "rollout_hooks_refused",
            "Hooks this receiver refused (4xx) or could not take (503), by reason.",
            ["reason"],
            registry=None,
        )
        # The children, looked up once: ``labels()`` per hook cost more than the increment.
        self._queued, self._duplicate = (self.accepted.labels(result) for result in RESULTS)
        for reason in REASONS:
            self.refused.labels(reason)

    def count_accepted(self, *, created: bool) -> None:
        """One hook answered 2xx: ``created`` (202, queued) or a duplicate (200)."""
        (self._queued if created else self._duplicate).inc()

    def count_refused(self, status: int) -> None:
        """One hook answered with the error ``status``."""
        self.refused.labels(reason_of(status)).inc()

    def collect(self) -> Iterable[Metric]:
        yield from self.accepted.collect()
        yield from self.refused.collect()


INTAKE = IntakeMetrics()
