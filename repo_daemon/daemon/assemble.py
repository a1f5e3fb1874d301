"""Assembling the long-running parts from ``Settings``: the queue, the runner, reconciliation,
the refusal commenter and the scheduler, and the three ways to run them
(``rollout daemon``, ``rollout serve``, ``rollout run``).

Each tracker client belongs to one part (a client is not thread-safe); the workflow processor
makes one per worker thread of the runner. The HTTP receiver is
``bridge.intake.receiver``; it is imported only when it is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bridge import secrets as bridge_secrets
from bridge.intake import reconcile, refusals
from bridge.settings import event_retention
from bridge.settings import model as settings_model
from bridge.store import database, events, queue, retention, settings_seen
from bridge.tracker.client import TrackerClient
from repo_daemon.daemon import failures, runner, scheduler
from repo_daemon.deliveries import service as delivery_service
from repo_daemon.publish import locks as publish_locks
from repo_daemon.publish import repository as publish
from repo_daemon.workflow import processor as workflow

if TYPE_CHECKING:
    from repo_daemon.observability import exposition

logger = logging.getLogger(__name__)


def worker_name(settings: settings_model.Settings) -> str:
    """This process's name in the queue's leases: the setting, else ``hostname:pid``."""
    return settings.daemon.worker_name or f"{socket.gethostname()}:{os.getpid()}"


def open_queue(settings: settings_model.Settings) -> queue.Queue:
    """The queue on the configured database, with the configured lease."""
    engine = database.create_engine(settings.database())
    return queue.Queue(engine, lease=timedelta(seconds=settings.daemon.lease_seconds))


def migrate(engine: sa.Engine) -> None:
    """Bring the database to the newest schema (serialised between processes)."""
    database.migrate(engine)


@dataclass(kw_only=True)
class Parts:
    """The daemon's parts for one process. ``close()`` releases their connections.

    ``repository`` is the publish ``Repository`` whose pool garbage the daemon collects every
    ``housekeeping_interval``; ``None`` when the processor publishes nothing.
    """

    settings: settings_model.Settings
    queue: queue.Queue
    processor: runner.Processor
    repository: publish.Repository | None
    runner: runner.Runner
    reconciler: reconcile.Reconciler | None
    commenter: refusals.RefusalCommenter
    clients: list[TrackerClient] = field(default_factory=list)
    # Sending webhook deliveries (docs/notifications.md); None: this daemon sends none.
    deliveries: delivery_service.Deliveries | None = None

    def daemon(self, *, blocking: bool) -> scheduler.Daemon:
        """A scheduler with the daemon's jobs, the event log's retention, and pool garbage
        collection when there is a repository."""
        daemon = scheduler.Daemon(
            self.settings.daemon,
            self.runner,
            reconcile=self.reconciler.run if self.reconciler is not None else None,
            comment_refusals=self.commenter.run,
            blocking=blocking,
            workers=6,
        )
        if self.deliveries is not None:
            hooks = self.settings.webhooks
            daemon.add_interval_job(
                "deliveries", self.deliveries.send, hooks.poll_interval, start_now=True
            )
            daemon.add_interval_job(
                "delivery_health", self.deliveries.judge, delivery_service.HEALTH_INTERVAL
            )
            daemon.add_interval_job(
                "delivery_retention",
                self.deliveries.prune,
                self.settings.daemon.housekeeping_interval,
            )
            daemon.on_stop(self.deliveries.stop)
        daemon.add_interval_job(
            "event_retention", self.apply_retention, self.settings.daemon.housekeeping_interval
        )
        if self.repository is not None:
            daemon.add_interval_job(
                "collect_garbage",
                self.repository.collect_garbage,
                self.settings.daemon.housekeeping_interval,
            )
        return daemon

    def apply_retention(self) -> retention.Outcome:
        """The event log's standing retention (``event_retention``, refused hooks after
        ``refusal_retention_days``), exported first to ``event_export_dir``."""
        rules = [
            retention.Rule(
                kinds=tuple(events.EventKind(k) for k in r.kinds),
                older_than=timedelta(days=r.days),
            )
            for r in event_retention.standing(self.settings.daemon)
        ]
        return retention.prune(
            self.queue, rules, export_dir=self.settings.daemon.event_export_dir,
            actor=events.BRIDGE_ACTOR,
        )  # fmt: skip

    def close(self) -> None:
        self.runner.close()
        self.processor.close()
        if self.deliveries is not None:
            self.deliveries.close()
        for client in self.clients:
            client.close()


def build_parts(
    settings: settings_model.Settings,
    jobs: queue.Queue,
    *,
    processor: runner.Processor | None = None,
    repository: publish.Repository | None = None,
    reconcile_changes: bool = True,
    worker: str | None = None,
) -> Parts:
    """The parts of a daemon. Without a ``processor``, jobs run the release workflow
    (``workflow_processor``) and the configured repository's garbage is collected; with one
    (tests, tools), garbage is collected only in the ``repository`` given. The parts own the
    processor: ``Parts.close()`` closes it."""
    if processor is None:
        processor = workflow.workflow_processor(settings, jobs)
        repository = repository or publish.Repository(
            settings.repository, area_locks=publish_locks.chosen(settings)
        )
    clients: list[TrackerClient] = []
    reconciler = None
    if reconcile_changes:
        clients.append(TrackerClient(settings.tracker))
        reconciler = reconcile.Reconciler(jobs, clients[-1], settings.queue)
    clients.append(TrackerClient(settings.tracker))
    commenter = refusals.RefusalCommenter(jobs, clients[-1])
    name = worker or worker_name(settings)
    clients.append(TrackerClient(settings.tracker))
    sending = delivery_service.build(
        settings, jobs.engine, worker_name=name, tracker=clients[-1], clock=queue.utcnow
    )
    return Parts(
        settings=settings,
        queue=jobs,
        processor=processor,
        repository=repository,
        runner=runner.Runner(
            jobs,
            processor,
            settings.daemon,
            worker=name,
            secrets=failures.secrets_of(settings),
        ),
        reconciler=reconciler,
        commenter=commenter,
        clients=clients,
        deliveries=sending,
    )


@contextmanager
def opened(settings: settings_model.Settings) -> Iterator[queue.Queue]:
    """The queue on a migrated database; the engine is disposed of afterwards."""
    jobs = open_queue(settings)
    try:
        migrate(jobs.engine)
        yield jobs
    finally:
        jobs.engine.dispose()


def seen_at_start(settings: settings_model.Settings, jobs: queue.Queue, process: str) -> None:
    """Record ``settings_seen`` when this process starts with settings or workflow templates
    other than the last process saw (names only; see ``bridge.store.settings_seen``)."""
    from repo_daemon.workflow import loader

    workflows = {
        name: hashlib.sha256(repr(loader.load_template(name)).encode()).hexdigest()[:32]
        for name in loader.TEMPLATES
    }
    changed = settings_seen.record(
        jobs, settings_seen.digests(settings), workflows, process=process
    )
    if changed:
        logger.info("settings changed since the last start: %s", ", ".join(changed))
    delivery_service.sync_declared(settings, jobs.engine, clock=queue.utcnow)


def run_daemon(
    settings: settings_model.Settings,
    *,
    processor: runner.Processor | None = None,
    reconcile_changes: bool = True,
) -> None:
    """``rollout daemon``: the scheduler in the foreground until SIGTERM / SIGINT.
    ``processor`` as in ``build_parts`` (``None``: the release workflow)."""
    with opened(settings) as jobs:
        seen_at_start(settings, jobs, "daemon")
        parts = build_parts(
            settings, jobs, processor=processor, reconcile_changes=reconcile_changes
        )
        metrics = _daemon_metrics(settings, jobs)
        try:
            _announce(settings, parts)
            parts.daemon(blocking=True).run()
        finally:
            if metrics is not None:
                metrics.stop()
            parts.close()


def run_serve(settings: settings_model.Settings) -> None:
    """``rollout serve``: only the HTTP receiver, until SIGTERM / SIGINT."""
    from bridge.intake import receiver  # the web stack only for the commands that serve HTTP

    receiver.require_secret(settings)  # a configuration error before any database is touched
    with opened(settings) as jobs, _events_api(settings, jobs) as routers:
        seen_at_start(settings, jobs, "serve")
        receiver.serve(settings, jobs, routers=routers)


def run_all(
    settings: settings_model.Settings,
    *,
    processor: runner.Processor | None = None,
    reconcile_changes: bool = True,
) -> None:
    """``rollout run``: the receiver in the main thread and the daemon's scheduler in the
    background, in one process. SIGTERM / SIGINT stop both at once: the receiver answers the
    requests in flight (uvicorn's graceful shutdown) while the daemon finishes the jobs in hand
    and claims nothing more."""
    from bridge.intake import receiver  # the web stack only for the commands that serve HTTP

    receiver.require_secret(settings)  # a configuration error before any database is touched
    with opened(settings) as jobs, _events_api(settings, jobs, daemon=True) as routers:
        seen_at_start(settings, jobs, "run")
        server = receiver.build_server(settings, jobs, routers=routers)
        parts = build_parts(
            settings, jobs, processor=processor, reconcile_changes=reconcile_changes
        )
        daemon = parts.daemon(blocking=False)

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # Before uvicorn runs (and again after: uvicorn re-raises the signal it caught).
            if not daemon.stopping:
                logger.info("%s received: stopping", signal.Signals(signum).name)
            server.should_exit = True
            daemon.request_stop()

        previous: dict[int, Any] = {
            sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        uvicorn_handler = server.handle_exit

        def handle_exit(signum: int, frame: FrameType | None) -> None:
            # While uvicorn runs, the signal is its own; stop claiming at once as well, so the
            # daemon winds down while the receiver finishes its requests.
            if not daemon.stopping:
                logger.info(
                    "%s received: stopping the receiver and the daemon (the jobs in hand are "
                    "finished first)",
                    signal.Signals(signum).name,
                )
            daemon.request_stop()
            uvicorn_handler(signum, frame)

        server.handle_exit = handle_exit  # type: ignore[method-assign,assignment]
        try:
            _announce(settings, parts)
            daemon.start()
            try:
                server.run()
            except SystemExit as exc:  # uvicorn exits when it cannot bind or start
                raise receiver.ReceiverFailed(
                    f"the receiver could not start on {settings.receiver.host}:"
                    f"{settings.receiver.port} (see the log above)"
                ) from exc
        finally:
            daemon.request_stop()
            daemon.wait_stopped()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            parts.close()


@contextmanager
def _events_api(
    settings: settings_model.Settings, jobs: queue.Queue, *, daemon: bool = False
) -> Iterator[list[Any]]:
    """The audit feed's API (``GET /api/events``) to mount on the receiver, on the queue's
    database, readable by ``events_api_roles``; its RT clients are closed afterwards.
    ``/metrics`` too, with the daemon's counters when it runs in this process (``daemon``)."""
    # the web stack only for the commands that serve
    from repo_daemon.deliveries import ping
    from repo_daemon.observability import exposition
    from repo_daemon.web import (
        deliveries_api,
        events_access,
        events_api,
        metrics_api,
        subscriptions_api,
    )
    from repo_daemon.web import webhooks_access as hooks
    from repo_daemon.web.status import pages as status_pages

    access = events_access.feed_access(settings)
    status_access = events_access.feed_access(
        settings,
        roles=settings.access.status_roles,
        what=f"{status_pages.PREFIX} and /api/metrics",
        realm=metrics_api.REALM,
    )
    hooks_access, sender = hooks.webhooks_access(settings), ping.sender_for(settings)
    metrics = exposition.endpoint(settings, jobs.engine, daemon=daemon)
    try:
        yield [
            metrics.router,
            events_api.router(jobs.engine, access),
            subscriptions_api.router(
                jobs.engine, hooks_access, webhooks=settings.webhooks, sender=sender
            ),
            deliveries_api.router(jobs.engine, hooks_access),
            metrics_api.router(jobs.engine, status_access),
            status_pages.router(jobs.engine, settings, status_access),
        ]
    finally:
        metrics.close()
        status_access.close()
        sender.close()
        hooks_access.close()
        access.close()


def _daemon_metrics(
    settings: settings_model.Settings, jobs: queue.Queue
) -> exposition.DaemonMetricsServer | None:
    """``rollout daemon``'s own ``/metrics`` when ``daemon_metrics_port`` is set (started),
    else None."""
    if not settings.daemon.metrics_port:
        return None
    from repo_daemon.observability import exposition as serving  # the web stack, when asked

    server = serving.DaemonMetricsServer(settings, jobs.engine)
    server.start()
    return server


def _announce(settings: settings_model.Settings, parts: Parts) -> None:
    logger.info(
        "worker %s (%d at once) on %s; queue %s; lease %g s; drain every %g s; reconcile %s",
        parts.runner.worker,
        settings.daemon.workers,
        bridge_secrets.redact_url(settings.database()),
        settings.queue,
        settings.daemon.lease_seconds,
        settings.daemon.drain_interval,
        f"every {settings.daemon.reconcile_interval:g} s"
        if parts.reconciler is not None
        else "off",
        extra={"action": "start"},
    )
    if not settings.repository.sync_hosts:
        logger.warning(
            "no sync_hosts are configured: a ticket's Sync-URL may name any host and port, "
            "and the sync credentials are offered to whichever it names; list the providers' "
            "hosts in sync_hosts (docs/sync.md)",
            extra={"action": "start"},
        )
