"""The runner: the only place that turns queued changes into processing and queue updates.

``Runner.drain`` claims due jobs and hands each to a ``Processor`` on one of ``workers`` threads
(``ROLLOUT_DAEMON_WORKERS``), so jobs of different tickets run side by side and one slow release
never holds up the others; the queue hands out only a ticket's oldest open change, so a
ticket's changes still run one at a time and in order. While a job runs, a heartbeat thread
keeps its lease alive; afterwards the runner completes it or records the failure with the retry
policy (backoff, then the dead letter). A failure is always recorded: its text is stored
escaped, and when even that fails a plain one is; a job whose outcome cannot be recorded at all
comes back when its lease runs out and is dead-lettered after its attempts.

It decides nothing about releases: what processing a change means is the processor's business.
It must not sleep or schedule itself: the scheduler calls ``drain``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Protocol

from bridge import errors, records
from bridge.settings import model as settings_model
from bridge.store import event_log, events, protocols, provenance, retry
from repo_daemon import errors as daemon_errors
from repo_daemon.daemon import failures, job_metrics

logger = logging.getLogger(__name__)


class Processor(Protocol):
    """Does the work of one queued change. Raises a ``bridge`` or ``repo_daemon`` error whose
    ``transient`` says whether a later try may help; any other exception counts as transient.
    Must be idempotent: a job whose daemon died half-way is processed again."""

    def process(self, job: records.Job) -> None: ...

    def gave_up(self, job: records.Job, message: str) -> None:
        """``job`` is dead-lettered after its last retry: tell a person if it can (the
        workflow sets the ticket to Failed); errors here are logged, never retried."""

    def close(self) -> None:
        """Release what processing holds (tracker clients); called once, when the daemon
        stops."""


@dataclass(kw_only=True)
class DrainReport:
    """What one ``drain`` did, by outcome."""

    claimed: int = 0
    done: int = 0
    skipped: int = 0  # the bridge's own writes
    retried: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0  # claimed, but given back untouched because the runner was stopping
    lost: int = 0  # the lease was taken over while the job ran; the result was dropped
    # The outcome could not be recorded (the database failed): the job comes back when its
    # lease runs out, and is dead-lettered once its attempts are spent.
    unrecorded: int = 0

    def add(self, other: DrainReport) -> None:
        """Count ``other``'s outcomes in this report too."""
        for name in (
            "claimed", "done", "skipped", "retried", "failed", "dead", "released", "lost",
            "unrecorded",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def finished(self) -> int:
        """Jobs this drain took to an outcome (anything but released or lost)."""
        return self.done + self.skipped + self.retried + self.failed + self.dead


class Runner:
    """Processes queued changes for one worker (one daemon process), ``workers`` at a time
    (``daemon.workers`` unless given; 1: in the thread that calls ``drain``).

    ``stop()`` (e.g. from a SIGTERM handler) makes ``drain`` finish the jobs in hand and claim
    nothing more; jobs claimed but not started are released. ``close()`` ends the worker
    threads. Each job's outcome and duration are counted in ``metrics`` (the process's
    ``job_metrics.JOBS`` unless given).
    """

    def __init__(
        self,
        jobs: protocols.JobQueue,
        processor: Processor,
        daemon: settings_model.DaemonSettings,
        *,
        worker: str,
        secrets: Sequence[str] = (),
        batch: int = 1,
        heartbeat_interval: float | None = None,
        workers: int | None = None,
        poll_interval: float | None = None,
        metrics: job_metrics.JobMetrics | None = None,
    ) -> None:
        self.queue = jobs
        self.metrics = metrics if metrics is not None else job_metrics.JOBS
        self.processor = processor
        self.worker = worker
        self.batch = max(1, batch)
        self.bridge_user = daemon.rt_bridge_user
        self.max_attempts = daemon.retry_max_attempts
        self.policy = retry.RetryPolicy(
            base_delay=daemon.retry_base_delay, max_attempts=daemon.retry_max_attempts
        )
        self.heartbeat_interval = (
            heartbeat_interval
            if heartbeat_interval is not None
            else max(0.05, jobs.lease.total_seconds() / 3)
        )
        self._secrets = list(secrets)
        self._stop = threading.Event()
        self.workers = max(1, workers if workers is not None else daemon.workers)
        # How often a drain with jobs in flight looks for more work.
        self.poll_interval = poll_interval if poll_interval is not None else daemon.drain_interval
        self._pool: futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current job, then claim nothing more. Safe from any thread."""
        if not self._stop.is_set():
            logger.info(
                "runner %s stopping: finishing the current job, claiming nothing more",
                self.worker,
                extra={"action": "stop"},
            )
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was called."""
        return self._stop.is_set()

    def close(self) -> None:
        """End the worker threads (after the jobs they run). Call once the draining is over."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _workers(self) -> futures.ThreadPoolExecutor:
        # One pool for the runner's life: the processor keeps a tracker client per thread.
        with self._pool_lock:
            if self._pool is None:
                self._pool = futures.ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix=f"job-{self.worker}"
                )
            return self._pool

    # -- draining -------------------------------------------------------------------------

    def drain(self, *, max_jobs: int | None = None) -> DrainReport:
        """Process due jobs until none is due and none is in hand, ``max_jobs`` were claimed,
        or ``stop`` is called (then the jobs in hand are finished first).

        With several ``workers``, jobs are claimed as workers come free, also while others
        are still running (every ``poll_interval``). A job whose outcome cannot be recorded
        is logged and left to its lease; the others go on. Queue errors while claiming (the
        database is unreachable) propagate once the jobs in hand are finished.
        """
        if self.workers == 1:
            return self._drain_here(max_jobs)
        report = DrainReport()
        in_flight: dict[futures.Future[DrainReport], records.Job] = {}
        try:
            while True:
                free = self.workers - len(in_flight)
                if max_jobs is not None:
                    free = min(free, max_jobs - report.claimed)
                claimed: list[records.Job] = []
                if free > 0 and not self._stop.is_set():
                    claimed = self.queue.claim(self.worker, limit=free)
                    report.claimed += len(claimed)
                for job in claimed:
                    in_flight[self._workers().submit(self._run_one, job)] = job
                if not in_flight:
                    break
                done, _ = futures.wait(
                    in_flight, timeout=self.poll_interval, return_when=futures.FIRST_COMPLETED
                )
                for future in done:
                    self._collect(in_flight.pop(future), future, report)
        finally:
            for future in futures.as_completed(in_flight):
                self._collect(in_flight[future], future, report)
        return report

    def _drain_here(self, max_jobs: int | None) -> DrainReport:
        """``drain`` with one worker: each job in the calling thread, ``batch`` claimed at a
        time."""
        report = DrainReport()
        while not self._stop.is_set():
            limit = self.batch
            if max_jobs is not None:
                limit = min(limit, max_jobs - report.claimed)
                if limit <= 0:
                    break
            claimed = self.queue.claim(self.worker, limit=limit)
            if not claimed:
                break
            report.claimed += len(claimed)
            pending = list(claimed)
            try:
                while pending:
                    if self._stop.is_set():
                        break
                    job = pending.pop(0)
                    self._run_recorded(job, report)
            finally:
                self._release(pending, report)
        return report

    def _run_one(self, job: records.Job) -> DrainReport:
        """One job on a worker thread; its outcomes in a report of its own."""
        report = DrainReport()
        if self._stop.is_set():
            self._release([job], report)
        else:
            self._run_recorded(job, report)
        return report

    def _collect(
        self, job: records.Job, future: futures.Future[DrainReport], report: DrainReport
    ) -> None:
        try:
            report.add(future.result())
        except Exception:  # _run_recorded catches everything; a bug here must not stop others
            report.unrecorded += 1
            logger.exception("job %s: its worker failed", job.id, extra={"job_id": job.id})

    def _run_recorded(self, job: records.Job, report: DrainReport) -> None:
        """``_run_and_record`` with the job's outcome and duration counted in ``metrics``."""
        started = time.monotonic()
        mine = DrainReport()
        try:
            self._run_and_record(job, mine)
        finally:
            report.add(mine)
            self.metrics.observe(job, mine, time.monotonic() - started)

    def _run_and_record(self, job: records.Job, report: DrainReport) -> None:
        """``_run``, and when its outcome cannot be recorded, say so and leave the job to its
        lease: it comes back, and once its attempts are spent it is dead-lettered."""
        try:
            self._run(job, report)
        except Exception as exc:
            report.unrecorded += 1
            logger.error(
                "job %s (ticket %s): its outcome could not be recorded (%s); it is tried again "
                "when its lease runs out, and dead-lettered after %d attempts",
                job.id,
                job.ticket_id,
                failures.describe_error(exc, self._secrets)[0],
                self.max_attempts,
                extra={"job_id": job.id, "ticket_id": job.ticket_id, "action": "record"},
            )
            logger.debug("job %s: recording failed", job.id, exc_info=True)

    def _release(self, jobs: Sequence[records.Job], report: DrainReport) -> None:
        for job in jobs:
            try:
                released = self.queue.give_back(job.id, self.worker)
            except Exception:  # the lease runs out anyway; someone claims it again
                logger.warning(
                    "could not release job %s; it comes back when its lease runs out",
                    job.id,
                    exc_info=True,
                    extra={"job_id": job.id, "action": "release"},
                )
                continue
            if released:
                report.released += 1
                logger.info(
                    "released job %s untouched (stopping)",
                    job.id,
                    extra={"job_id": job.id, "action": "release"},
                )

    def _run(self, job: records.Job, report: DrainReport) -> None:
        """``_work`` with the job's provenance set, so every event it writes says which job,
        attempt, person and cause it belongs to."""
        cause = events.Cause.parse(job.cause) if job.cause else events.Cause.BRIDGE
        with provenance.working_for(
            provenance.Provenance(
                job_id=job.id,
                ticket_id=job.ticket_id,
                transaction_id=job.request.transaction_id,
                actor=job.request.actor,
                cause=cause,
                attempt=job.attempt or job.attempts,
            )
        ):
            self._work(job, report)

    def _work(self, job: records.Job, report: DrainReport) -> None:
        request = job.request
        extra = {"job_id": job.id, "ticket_id": job.ticket_id, "action": "process"}
        change = request.describe()
        if job.attempts > self.max_attempts:
            message = (
                f"claimed {job.attempts} times without finishing: the daemon processing it "
                "stopped each time (crash, kill or out of memory) or could not record the "
                "outcome; dead-lettered so it cannot stop daemons again. Look for job "
                f"{job.id} in the daemon logs, then `rollout queue retry {job.id}`"
            )
            self._fail(job, message, transient=True, report=report, extra=extra)
            return
        own_write = request.source is not records.JobSource.BRIDGE
        if own_write and self.bridge_user and request.actor == self.bridge_user:
            skipped = event_log.draft(
                events.EventKind.JOB_SKIPPED_OWN_WRITE,
                ticket_id=job.ticket_id,
                data={"detail": f"{change} was made by the bridge's own account "
                      f"{self.bridge_user!r}; nothing to do"},
            )  # fmt: skip
            if self.queue.complete(job.id, self.worker, job=job, also=[skipped]):
                report.skipped += 1
                logger.info(
                    "job %s (ticket %s, %s) is the bridge's own write; skipped",
                    job.id,
                    job.ticket_id,
                    change,
                    extra=extra,
                )
            else:
                self._lost(job, report, extra)
            return

        logger.info(
            "processing job %s: ticket %s, %s (attempt %d)",
            job.id,
            job.ticket_id,
            change,
            job.attempts,
            extra=extra,
        )
        try:
            self._process_with_heartbeat(job)
        except Exception as exc:
            message, transient = failures.describe_error(exc, self._secrets)
            if not isinstance(exc, errors.BridgeError | daemon_errors.DaemonError):
                # The traceback may quote data verbatim: only at debug level (--verbose).
                logger.debug("job %s raised", job.id, exc_info=True, extra=extra)
            action = getattr(exc, "failed_action", None)
            at_once = bool(getattr(exc, "retry_at_once", False))
            self._fail(job, message, transient=transient, report=report, extra=extra,
                       action=action, at_once=at_once)  # fmt: skip
            return
        if self.queue.complete(job.id, self.worker, job=job):
            report.done += 1
            logger.info("job %s done", job.id, extra={**extra, "action": "complete"})
        else:
            self._lost(job, report, extra)

    def _process_with_heartbeat(self, job: records.Job) -> None:
        finished = threading.Event()
        extra = {"job_id": job.id, "action": "heartbeat"}

        def beat() -> None:
            while not finished.wait(self.heartbeat_interval):
                try:
                    if not self.queue.heartbeat(job.id, self.worker):
                        logger.warning(
                            "job %s: lease lost (another daemon took it over); its result "
                            "will be dropped",
                            job.id,
                            extra=extra,
                        )
                        return
                except Exception:
                    logger.warning(
                        "job %s: heartbeat failed; trying again", job.id, exc_info=True, extra=extra
                    )

        thread = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
        thread.start()
        try:
            self.processor.process(job)
        finally:
            finished.set()
            thread.join()

    def _fail(
        self,
        job: records.Job,
        message: str,
        *,
        transient: bool,
        report: DrainReport,
        extra: dict[str, object],
        action: str | None = None,
        at_once: bool = False,
    ) -> None:
        """Record a failure; ``at_once``: a transient one retried without the backoff (a
        decision another daemon outdated: the retry decides afresh)."""
        extra = {**extra, "action": "fail"}
        policy = self.policy.at_once() if at_once else self.policy
        status = self._record_failure(
            job, message, transient=transient, extra=extra, action=action, policy=policy
        )
        if status is None:
            self._lost(job, report, extra)
        elif status is records.JobStatus.QUEUED and at_once:
            report.retried += 1
            logger.info(
                "job %s (attempt %d) will be tried again at once: %s", job.id, job.attempts,
                message, extra=extra,
            )  # fmt: skip
        elif status is records.JobStatus.QUEUED:
            report.retried += 1
            logger.warning(
                "job %s failed (attempt %d), will retry: %s", job.id, job.attempts, message,
                extra=extra,
            )  # fmt: skip
        elif status is records.JobStatus.DEAD:
            report.dead += 1
            logger.error("job %s dead-lettered: %s", job.id, message, extra=extra)
            self._gave_up(job, message, extra)
        else:
            report.failed += 1
            logger.error("job %s failed for good: %s", job.id, message, extra=extra)

    def _record_failure(
        self,
        job: records.Job,
        message: str,
        *,
        transient: bool,
        extra: dict[str, object],
        action: str | None = None,
        policy: retry.RetryPolicy | None = None,
    ) -> records.JobStatus | None:
        """``queue.fail``; when the message cannot be stored, a plain one that says so. Raises
        when neither can be recorded (the database is failing)."""
        policy = policy or self.policy
        try:
            return self.queue.fail(job, self.worker, message, transient=transient,
                                   policy=policy, action=action)  # fmt: skip
        except Exception as exc:
            reason = failures.describe_error(exc, self._secrets)[0]
            logger.error(
                "job %s: its failure could not be recorded (%s); recording a plain one",
                job.id, reason, extra=extra,
            )  # fmt: skip
        plain = (
            f"the failure's own text could not be recorded ({reason}); its start: "
            f"{message[:200].encode('ascii', 'backslashreplace').decode('ascii')}"
        )
        return self.queue.fail(
            job, self.worker, plain, transient=transient, policy=policy, action=action
        )

    def _gave_up(self, job: records.Job, message: str, extra: dict[str, object]) -> None:
        """Tell the processor a job is dead-lettered, so a person hears of it (if it can)."""
        try:
            self.processor.gave_up(job, message)
        except Exception as exc:
            logger.error(
                "job %s: could not report the dead letter on the ticket: %s",
                job.id,
                failures.describe_error(exc, self._secrets)[0],
                extra=extra,
            )

    def _lost(self, job: records.Job, report: DrainReport, extra: dict[str, object]) -> None:
        report.lost += 1
        logger.warning(
            "job %s: this daemon no longer holds its lease (it ran longer than the lease and "
            "another daemon claimed it); result dropped",
            job.id,
            extra=extra,
        )
