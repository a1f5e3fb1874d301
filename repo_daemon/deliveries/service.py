"""The deliveries' parts assembled from ``Settings`` for a daemon: the worker that sends, the
judge of failing endpoints with the notices it comments in RT, retention, and the declared
subscriptions kept in step at start-up. ``repo_daemon.daemon.assemble`` schedules them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bridge.settings import model as settings_model
from bridge.store import deliveries, delivery_health, subscription_store
from bridge.store import events as eventlog
from bridge.tracker import protocol
from repo_daemon.deliveries import destinations, notices, outbound, worker

logger = logging.getLogger(__name__)
HEALTH_INTERVAL = 60.0  # seconds between judgements of failing endpoints


@dataclass
class Deliveries:
    """What a daemon runs for deliveries."""

    settings: settings_model.WebhookSettings
    store: deliveries.DeliveryStore
    worker: worker.DeliveryWorker
    sender: outbound.Sender
    health: delivery_health.Health
    notifier: notices.Notifier | None
    clock: Callable[[], datetime]

    def send(self) -> int:
        """Send what is due (the scheduled ``deliveries`` job)."""
        return self.worker.drain()

    def judge(self) -> list[str]:
        """Take the failing endpoints' due steps and say them on the tickets concerned."""
        taken = self.health.judge(
            disable_after=self.settings.disable_after,
            min_failures=self.settings.disable_min_failures,
        )
        for line in taken:
            logger.warning("webhook endpoint %s", line, extra={"action": "deliveries"})
        if self.notifier is not None:
            self.notifier.run()
        return taken

    def prune(self) -> tuple[int, int]:
        """Retention: finished deliveries and attempts older than ``retention_days``."""
        cut = self.clock() - timedelta(days=self.settings.retention_days)
        return self.store.prune(older_than=cut)

    def stop(self) -> None:
        self.worker.stop()

    def close(self) -> None:
        self.worker.close()
        self.sender.close()


def build(
    settings: settings_model.Settings,
    engine: sa.Engine,
    *,
    worker_name: str,
    tracker: protocol.Tracker | None,
    clock: Callable[[], datetime],
    ca_bundle: str | None = None,
) -> Deliveries:
    """The deliveries' parts on ``engine``; ``tracker`` comments the notices (None: they
    wait)."""
    hooks = settings.webhooks
    store = deliveries.DeliveryStore(engine, clock=clock)
    sender = outbound.Sender(
        destinations.DestinationPolicy.from_cidrs(hooks.allow_cidrs),
        timeout=hooks.timeout,
        body_cap=hooks.response_cap,
        pool_connections=hooks.workers,
        ca_bundle=ca_bundle,
    )
    health = delivery_health.Health(engine, clock=clock)
    return Deliveries(
        settings=hooks,
        store=store,
        worker=worker.DeliveryWorker(store, sender, hooks, worker=worker_name, clock=clock),
        sender=sender,
        health=health,
        notifier=None
        if tracker is None
        else notices.Notifier(health, tracker, disable_after=hooks.disable_after),
        clock=clock,
    )


def sync_declared(
    settings: settings_model.Settings, engine: sa.Engine, *, clock: Callable[[], datetime]
) -> list[str]:
    """Keep the ``[[subscriptions]]`` of the settings file in the database (names only are
    logged)."""
    store = subscription_store.SubscriptionStore(engine, clock=clock)
    done = store.sync_declared(settings.webhooks.declared, actor=eventlog.BRIDGE_ACTOR)
    for line in done:
        logger.info("declared subscriptions: %s", line, extra={"action": "start"})
    return done
