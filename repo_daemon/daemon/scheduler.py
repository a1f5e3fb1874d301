"""APScheduler 3.11 wiring only: which jobs the daemon runs, how often, and clean shutdown.

Jobs are declared in code in an in-memory job store, one scheduler per daemon process
(safety between several daemons comes from the queue's leases, never from APScheduler):

- ``startup``: once, at start: one reconciliation pass, then it adds ``drain`` (so recovered
  changes are queued before the first drain);
- ``drain``: every ``drain_interval`` seconds, claim and process due jobs until none is due;
- ``reconcile``: every ``reconcile_interval`` seconds, queue changes whose hook never came;
- ``comment_refusals``: every ``COMMENT_INTERVAL`` seconds, comment refused changes on tickets.

Every job has ``max_instances=1``, ``coalesce=True`` and ``misfire_grace_time=30``. More jobs
(deliveries, housekeeping) are added with ``Daemon.add_interval_job``. SIGTERM / SIGINT (or
``request_stop``) stop the runner from claiming, let the job in hand finish, and shut down.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from bridge.settings import model as settings_model
from repo_daemon.daemon import runner as runner_module

logger = logging.getLogger(__name__)

COMMENT_INTERVAL = 10.0
MISFIRE_GRACE = 30
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE}

Task = Callable[[], object]


class _DropOverlapWarnings(logging.Filter):
    """APScheduler warns each time a tick is skipped because the job still runs. For ``drain``
    that is the normal case (it keeps going while there is work, e.g. during a long sync), so
    the warning would repeat every second; drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_scheduler_logger = logging.getLogger(__name__ + ".apscheduler")
_scheduler_logger.addFilter(_DropOverlapWarnings())


def _guarded(name: str, task: Task) -> Callable[[], None]:
    """``task`` with its failures logged in one line (the traceback only at debug level), so a
    down RT does not print a traceback every interval, and the job keeps its schedule."""

    def run() -> None:
        try:
            task()
        except Exception as exc:
            logger.error(
                "scheduled job %s failed: %s: %s",
                name,
                type(exc).__name__,
                exc,
                extra={"action": name},
            )
            logger.debug("scheduled job %s failed", name, exc_info=True, extra={"action": name})

    run.__name__ = name
    return run


class Daemon:
    """The daemon's scheduler: a ``BlockingScheduler`` (``rollout daemon``) or a
    ``BackgroundScheduler`` next to the HTTP receiver (``rollout run``)."""

    def __init__(
        self,
        settings: settings_model.DaemonSettings,
        runner: runner_module.Runner,
        *,
        reconcile: Task | None = None,
        comment_refusals: Task | None = None,
        blocking: bool = True,
        comment_interval: float = COMMENT_INTERVAL,
        workers: int = 4,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self._reconcile = reconcile
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        self._shutdown_thread: threading.Thread | None = None
        self._on_stop: list[Callable[[], None]] = []
        kind = BlockingScheduler if blocking else BackgroundScheduler
        self.scheduler: BaseScheduler = kind(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults=JOB_DEFAULTS,
            timezone=UTC,
            logger=_scheduler_logger,
        )
        self.scheduler.add_job(_guarded("startup", self._startup), id="startup", name="startup")
        if reconcile is not None:
            self.add_interval_job("reconcile", reconcile, settings.reconcile_interval)
        if comment_refusals is not None:
            self.add_interval_job("comment_refusals", comment_refusals, comment_interval)

    def add_interval_job(
        self, name: str, task: Task, seconds: float, *, start_now: bool = False
    ) -> None:
        """Run ``task`` every ``seconds`` (first after one interval, or now)."""
        extra: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if start_now else {}
        self.scheduler.add_job(
            _guarded(name, task), "interval", seconds=seconds, id=name, name=name, **extra
        )

    def on_stop(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` when a stop is requested (before running jobs are waited for), so a
        job that loops while there is work (``deliveries``) stops taking more."""
        self._on_stop.append(stop)

    def _startup(self) -> None:
        if self._reconcile is not None:
            try:
                self._reconcile()
            except Exception as exc:  # RT may be down at start: drain anyway, retry later
                logger.error(
                    "start-up reconciliation failed (%s: %s); draining anyway, the next "
                    "reconciliation runs in %g s",
                    type(exc).__name__,
                    exc,
                    self.settings.reconcile_interval,
                    extra={"action": "reconcile"},
                )
        if not self.stopping:
            self.add_interval_job(
                "drain", self.runner.drain, self.settings.drain_interval, start_now=True
            )

    # -- running and stopping --------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stopping

    def job_ids(self) -> list[str]:
        """The ids of the scheduled jobs."""
        return [job.id for job in self.scheduler.get_jobs()]

    def start(self) -> None:
        """Start a background scheduler (returns at once)."""
        self.scheduler.start()
        logger.info("daemon %s started", self.runner.worker, extra={"action": "start"})

    def run(self) -> None:
        """Run a blocking scheduler in the main thread until SIGTERM or SIGINT, then stop
        cleanly: the job in hand is finished, nothing more is claimed."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            if not self.stopping:
                logger.info("daemon %s started", self.runner.worker, extra={"action": "start"})
                self.scheduler.start()  # returns once the scheduler is shut down
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.wait_stopped()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "%s received: finishing the current job, then stopping",
            signal.Signals(signum).name,
            extra={"action": "stop"},
        )
        self.request_stop()

    def request_stop(self) -> None:
        """Stop claiming and shut the scheduler down once running jobs are finished. Safe
        from signal handlers and other threads; a second call does nothing."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self.runner.stop()
        for stop in self._on_stop:
            stop()
        # The shutdown waits for running jobs: never inside a signal handler.
        self._shutdown_thread = threading.Thread(
            target=self._shutdown, name="scheduler-shutdown", daemon=True
        )
        self._shutdown_thread.start()

    def _shutdown(self) -> None:
        try:
            # Paused first, so no tick submits a job to executors that are shutting down.
            self.scheduler.pause()
            self.scheduler.shutdown(wait=True)
        except SchedulerNotRunningError:
            pass
        finally:
            self._stopped.set()
            logger.info("daemon %s stopped", self.runner.worker, extra={"action": "stop"})

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until a requested stop is complete; True when it is (or none was asked)."""
        if not self._stopping:
            return True
        return self._stopped.wait(timeout)
