"""RT calls per workflow transition, counted against a real sandbox RT (not a test).

Walks releases through the standard workflow — the plain path to Production, a deferral and
its automatic promotion, a blocked move — with the real scrip, receiver, queue and workflow
processor, and prints, per transition, the HTTP requests the bridge made to RT and the time
the bridge spent on it. Run from the repository root:

    .venv/bin/python -m benchmarks.rt_calls
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.support.workflow_harness import Bridge, running_bridge


def _measure(
    bridge: Bridge, ticket: int, state: str, rows: list[tuple[str, str, int, float]]
) -> None:
    before = bridge.processor._client().total_round_trips()  # the runner's client
    previous = bridge.state(ticket) or "Submitted"
    started = time.perf_counter()
    bridge.move(ticket, state)
    took = time.perf_counter() - started
    calls = bridge.processor._client().total_round_trips() - before
    rows.append((f"#{ticket} {previous} → {state}", bridge.state(ticket) or "", calls, took))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    rows: list[tuple[str, str, int, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="rollout-rt-calls-") as tmp,
        running_bridge(Path(tmp)) as bridge,
    ):
        first = bridge.file_release("BENCH-1")
        second = bridge.file_release("BENCH-1")
        for state in ("Unverified", "InVerification", "StageRollout"):
            _measure(bridge, first, state, rows)
        for state in ("Unverified", "InVerification", "StageRollout"):
            _measure(bridge, second, state, rows)
        _measure(bridge, first, "InVerification", rows)  # blocked
        _measure(bridge, first, "Production", rows)  # also moves #second in
    print(f"{'transition (asked)':<42} {'ends in':<16} {'RT calls':>8} {'seconds':>8}")
    for name, result, calls, took in rows:
        print(f"{name:<42} {result:<16} {calls:>8} {took:>8.2f}")
    print(
        "\nRT calls: the bridge's own requests (read, PUT, comments, replies) for the change, "
        "including any automatic follow-up it queued; seconds: from the manager's change to "
        "the queue being settled, including the manager's own REST call."
    )


if __name__ == "__main__":
    main()
