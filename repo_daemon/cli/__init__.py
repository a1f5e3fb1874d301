"""The one ``rollout`` command, assembled: the root group (``repo_daemon.cli.root``) with one
module per command group added to it. ``main`` is the console script
(``rollout = "repo_daemon.cli:main"``) and ``python -m repo_daemon``.

It defines no command itself and holds no logic: see the modules it imports.
"""

from __future__ import annotations

from repo_daemon.cli import (
    daemon,
    db,
    deliveries,
    demo,
    events,
    events_check,  # noqa: F401  (adds verify, rebuild, prune to events)
    events_feed,  # noqa: F401  (registers `rollout events list` on the events group)
    metrics,
    metrics_backfill,
    queue,
    release,
    release_show,  # noqa: F401 - adds `show` to the release group
    repo,
    root,
    subscriptions,
    tracker,
    workflow,
)
from repo_daemon.cli import receiver as receiver_cli

for _command in (
    tracker.tracker,
    daemon.daemon,
    daemon.serve,
    daemon.run,
    daemon.reconcile,
    db.db,
    queue.queue_group,
    events.events_group,
    metrics.metrics_group,
    subscriptions.subscriptions_group,
    deliveries.deliveries_group,
    workflow.workflow_group,
    repo.repo_group,
    receiver_cli.receiver_group,
    release.release_group,
    demo.demo,
):
    root.cli.add_command(_command)
metrics.metrics_group.add_command(metrics_backfill.backfill)

main = root.main

__all__ = ["main"]
