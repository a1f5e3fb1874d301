"""What the repository's locks cost, and how soon a killed holder's lock is free (issue 19).

    .venv/bin/python -m benchmarks.locks [--holds 300] [--kills 5]

Against a throw-away PostgreSQL on loopback (``tests.support.pg_server``):

1. **One hold** of an area's lock, taken, verified (as before a swap) and given back: the
   ``flock`` files of SQLite (``locks.FileLocks``) and PostgreSQL's advisory locks on their own
   connection (``db_locks.DatabaseLocks``: connect, two try-locks, one ``pg_locks`` check,
   close), alternated hold by hold in the same run. Medians and p99 in milliseconds, and the
   ratio of the medians.
2. **Freed after SIGKILL**: a child process takes the area's lock through ``DatabaseLocks`` and
   waits; it is SIGKILLed, and the time until this process holds the lock (polling as a
   waiting daemon does, with its back-off) is measured, ``--kills`` times.

Targets (checked here, never in tests): a killed holder's lock is free within ``FREED_TARGET``
seconds on a live host (far below any lease); one PostgreSQL hold costs under
``HOLD_TARGET_MS`` ms at the median (a promotion costs tens of ms, docs/benchmarks.md).
Everything stays on 127.0.0.1 in temporary directories and is bounded. Not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from repo_daemon.publish import areas, db_locks, locks

ROOT = Path(__file__).resolve().parents[1]
AREA = areas.Area.stagerollout("7")
FREED_TARGET = 1.0  # seconds
HOLD_TARGET_MS = 20.0

_CHILD = """
import sys
from repo_daemon.publish import areas, db_locks
with db_locks.DatabaseLocks(sys.argv[1]).area(areas.Area.stagerollout("7")):
    print("held", flush=True)
    sys.stdin.readline()
"""


def hold_ms(lock: locks.Locks) -> float:
    started = time.perf_counter()
    with lock.area(AREA) as held:
        held.verify()
    return (time.perf_counter() - started) * 1000


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.99))]


def holds(url: str, workdir: Path, count: int) -> tuple[float, float]:
    file_locks = locks.FileLocks(workdir / "repo")
    database = db_locks.DatabaseLocks(url)
    hold_ms(file_locks), hold_ms(database)  # warm up
    by_file, by_db = [], []
    for _ in range(count):
        by_file.append(hold_ms(file_locks))
        by_db.append(hold_ms(database))
    file_median, db_median = statistics.median(by_file), statistics.median(by_db)
    print(f"  flock files : median {file_median:.3f} ms, p99 {p99(by_file):.3f} ms")
    print(f"  PostgreSQL  : median {db_median:.3f} ms, p99 {p99(by_db):.3f} ms")
    print(f"  ratio of the medians (PostgreSQL / flock): {db_median / file_median:.0f}x")
    return file_median, db_median


def freed_after_kill(url: str, count: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    waiter = db_locks.DatabaseLocks(url, timeout=60)
    freed = []
    for _ in range(count):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, url], env=env, cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        child.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        with waiter.area(AREA):
            freed.append(time.perf_counter() - killed)
        child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()
    print("  freed after SIGKILL: " + ", ".join(f"{s * 1000:.0f} ms" for s in freed))
    return freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.locks", description=__doc__)
    parser.add_argument("--holds", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.support.pg_server import PostgresServer

    print(f"machine: {os.cpu_count()} cores, load {Path('/proc/loadavg').read_text().strip()}")
    sys.stdout.flush()
    workdir = Path(tempfile.mkdtemp(prefix="rollout-locks-"))
    pg_root = Path(tempfile.mkdtemp(prefix="rollout-locks-pg-"))
    server = PostgresServer(pg_root)  # (it hands the folder to postgres under root)
    server.start()
    try:
        url = server.url("postgres")
        print(f"one hold, {args.holds} of each, alternated:")
        _, db_median = holds(url, workdir, args.holds)
        freed = freed_after_kill(url, args.kills)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
    met = max(freed) < FREED_TARGET and db_median < HOLD_TARGET_MS
    print(
        f"targets: freed within {FREED_TARGET} s, PostgreSQL hold under {HOLD_TARGET_MS} ms: "
        + ("met" if met else "NOT met")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
