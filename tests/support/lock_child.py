"""``python -m tests.support.lock_child DB_URL ROOT --first T --count N [options]``: a
daemon-like child process that publishes releases into ``stagerollout/7`` of the repository at
ROOT through the real ``Repository`` with the real PostgreSQL advisory locks
(``db_locks.DatabaseLocks``), for the tests that run two of it at once or SIGKILL it.

Set up, it pools releases T … T+N-1 (each in its own ``unverified/`` area), prints ``ready``
and waits for a line on its standard input (end of input: it ends). Then it promotes them into
``stagerollout/7`` one after another and prints ``done``; ``busy`` (exit 3) when a lock stayed
taken past ``--timeout``. ``--pause``: the first publication into ``stagerollout/7`` stops in
its metadata step, holding the area's lock, prints ``paused`` and goes on after one more line
on its standard input. ``--record FILE`` appends, for every hold of ``stagerollout/7``'s lock,
``<pid> <enter ns> <exit ns>`` of ``time.monotonic_ns()`` (one clock for every process of the
machine) taken just after the lock was taken and just before it is given back.

It owns nothing of the product and changes nothing of what it runs, only how it is started.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, db_locks, locks
from repo_daemon.publish import errors as publish_errors
from repo_daemon.publish import manifest as area_manifest
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.release_factory import release_info

ROOT = Path(__file__).resolve().parents[2]
AREA = areas.Area.stagerollout("7")
BUSY = 3


class Recording:
    """``locks.Locks`` that records each hold of ``AREA``'s lock in a file."""

    def __init__(self, inner: locks.Locks, record: Path | None) -> None:
        self.inner = inner
        self.record = record

    @contextmanager
    def area(self, area: areas.Area) -> Iterator[locks.Held]:
        with self.inner.area(area) as held:
            enter = time.monotonic_ns()
            try:
                yield held
            finally:
                if self.record is not None and area == AREA:
                    with self.record.open("a") as out:  # one short write: no interleaving
                        out.write(f"{os.getpid()} {enter} {time.monotonic_ns()}\n")

    def everything(self) -> AbstractContextManager[locks.Held]:
        return self.inner.everything()


def release(scratch: Path, ticket: int) -> release_model.ReleaseInfo:
    """Release ``Demo<ticket>`` 1.0.0 of one small package, written into ``scratch``."""
    path, data = f"rpms/demo-{ticket}.rpm", f"package of ticket {ticket}\n".encode()
    target = scratch / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    package = release_model.PackageFile(
        path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    return release_info(f"Demo{ticket}", "1.0.0", [package])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("root", type=Path)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--pause", action="store_true")
    parser.add_argument("--record", type=Path)
    args = parser.parse_args(argv)
    paused = not args.pause

    def metadata(snapshot: Path, contents: area_manifest.AreaManifest) -> None:
        nonlocal paused
        if contents.area == AREA.path and not paused:
            paused = True
            print("paused", flush=True)
            sys.stdin.readline()

    inner = db_locks.DatabaseLocks(args.url, lease=args.lease, timeout=args.timeout)
    repo = publish.Repository(
        RepositorySettings(root=args.root, keep_snapshots=10_000),
        metadata=metadata,
        area_locks=Recording(inner, args.record),
    )
    tickets = range(args.first, args.first + args.count)
    infos = {}
    for ticket in tickets:
        scratch = args.root.parent / f"scratch-{ticket}"
        infos[ticket] = release(scratch, ticket)
        repo.publish_unverified(ticket, infos[ticket], scratch)
    print("ready", flush=True)
    if not sys.stdin.readline():
        return 0
    try:
        for ticket in tickets:
            repo.promote_to_stagerollout(ticket, infos[ticket], "7")
    except publish_errors.AreaBusy as exc:
        print(f"busy {exc}", flush=True)
        return BUSY
    print("done", flush=True)
    return 0


def start(url: str, root: Path, *extra: str) -> subprocess.Popen[str]:
    """Start a child (``extra``: its options) and wait for its ``ready``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "tests.support.lock_child", url, str(root), *extra]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    expect(process, "ready")
    return process


def stop(process: subprocess.Popen[str]) -> None:
    """Kill the child if it still runs, reap it and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


def expect(process: subprocess.Popen[str], word: str) -> str:
    """The child's next line, which must start with ``word``."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(word):
        process.kill()
        raise AssertionError(f"child said {line!r} (exit {process.wait()}), not {word!r}")
    return line


def say(process: subprocess.Popen[str], line: str = "go") -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


if __name__ == "__main__":
    sys.exit(main())
