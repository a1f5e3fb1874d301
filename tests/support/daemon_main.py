"""``python -m tests.support.daemon_main daemon|run [--no-reconcile]``: a real daemon process,
as ``rollout daemon`` / ``rollout run`` start it, with the recording processor of
``tests.support.daemon_helpers`` passed in instead of the workflow.

Settings come from ``ROLLOUT_*`` the normal way (``settings_load.load_settings``); the processor is
configured by ``$DAEMON_TEST_LOG`` and the hold variables. Exit 0 after a clean stop.
"""

from __future__ import annotations

import argparse
import logging
import sys

from bridge.settings import load as settings_load
from repo_daemon.daemon import assemble
from tests.support import daemon_helpers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.daemon_main")
    parser.add_argument("command", choices=["daemon", "run"])
    parser.add_argument("--no-reconcile", dest="reconcile", action="store_false")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("repo_daemon.daemon.scheduler.apscheduler").setLevel(logging.WARNING)
    settings = settings_load.load_settings()
    processor = daemon_helpers.recording_processor()
    if args.command == "daemon":
        assemble.run_daemon(settings, processor=processor, reconcile_changes=args.reconcile)
    else:
        assemble.run_all(settings, processor=processor, reconcile_changes=args.reconcile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
