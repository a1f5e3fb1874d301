"""The daemon's throughput: releases taken from Submitted to Unverified per minute with 4 jobs
in flight, next to 1 at a time (not a test: nothing is asserted).

Against a real sandbox RT (the real scrip, receiver, queue and workflow processor on loopback)
and a real rsync daemon serving freshly built .rpm and .deb packages: each round files
``--releases`` releases (each its own major release, so each publishes into its own areas),
asks for Unverified on all of them, waits until every change is queued, and then times one
``Runner.drain`` with ``--workers`` workers (the same runner ``rollout daemon`` runs; the
drain also completes the hooks of the bridge's own writes). Each job reads the ticket, freezes
and validates release.xml, syncs and verifies the packages, publishes with metadata (createrepo_c,
apt-ftparchive, gpg) and writes the outcome back on the ticket. Rounds alternate between the
worker counts. Run from the repository root:

    .venv/bin/python -m benchmarks.daemon [--releases 8] [--rounds 2] [--workers 1 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bridge import records
from repo_daemon.daemon import runner
from tests.support.workflow_harness import Bridge, running_bridge

_majors = iter(range(1, 1_000_000))


def _round(bridge: Bridge, releases: int, workers: int) -> float:
    """File ``releases`` releases, queue their move to Unverified, and time one drain with
    ``workers`` workers; returns the seconds."""
    tickets = [bridge.file_release(f"BENCH-{next(_majors)}") for _ in range(releases)]
    bridge.drain()  # the creations' own hooks, if any: not part of the measurement
    for ticket in tickets:
        bridge.manager.set_custom_fields(ticket, {"RolloutProgress": "Unverified"})
    until = time.monotonic() + 120
    while not all(
        any(j.request.current is records.RolloutState.UNVERIFIED
            for j in bridge.queue.list_jobs(ticket_id=t))
        for t in tickets
    ):  # fmt: skip
        if time.monotonic() > until:
            raise SystemExit("the changes were not queued within 120 s")
        time.sleep(0.1)
    run = runner.Runner(
        bridge.queue,
        bridge.processor,
        dataclasses.replace(bridge.settings.daemon, workers=workers),
        worker=f"bench-{workers}",
    )
    started = time.perf_counter()
    try:
        while run.drain().claimed:  # again for hooks that arrived meanwhile
            pass
    finally:
        run.close()
    took = time.perf_counter() - started
    states = {bridge.state(t) for t in tickets}
    if states != {"Unverified"}:
        raise SystemExit(f"not every release reached Unverified: {states}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=8, help="releases per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    times: dict[int, list[float]] = {w: [] for w in args.workers}
    with (
        tempfile.TemporaryDirectory(prefix="rollout-bench-daemon-") as tmp,
        running_bridge(Path(tmp)) as bridge,
    ):
        _round(bridge, 2, max(args.workers))  # warm-up: RT's caches, group look-ups
        for _ in range(args.rounds):
            for workers in args.workers:
                took = _round(bridge, args.releases, workers)
                times[workers].append(took)
                print(f"  {workers} worker(s): {args.releases} releases in {took:.1f} s",
                      flush=True)  # fmt: skip
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.releases} releases per round, {args.rounds} rounds")  # fmt: skip
    print(f"{'workers':>8} {'median s':>9} {'releases/min':>13} {'s per release':>14}")
    base = None
    for workers in args.workers:
        median = statistics.median(times[workers])
        base = base or median
        print(f"{workers:>8} {median:>9.1f} {60 * args.releases / median:>13.1f} "
              f"{median / args.releases:>14.2f}   ×{base / median:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
