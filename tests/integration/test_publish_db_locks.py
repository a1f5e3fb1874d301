"""The repository's locks in PostgreSQL (``db_locks``) with the real server the session starts:
two daemon processes publishing into one area never interleave, a SIGKILLed holder's lock is
free within its lease, the garbage collection's exclusive lock waits for a publication and
holds new ones back, and a holder whose lock connection broke stops before its swap.

Children are ``tests.support.lock_child`` processes: the real ``Repository`` with the real
advisory locks, publishing into ``stagerollout/7``.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, db_locks, gc
from repo_daemon.publish import errors as publish_errors
from repo_daemon.publish import manifest as area_manifest
from repo_daemon.publish import repository as publish
from tests.support import lock_child, paths
from tests.support.pg_server import PostgresServer

LEASE = 10.0  # the children's lease: a dead holder's lock must be free well within it
AREA = lock_child.AREA
_names = itertools.count()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database (the locks need no tables)."""
    name = f"locks_{os.getpid()}_{next(_names)}"
    server = pg_server
    with DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=name):
        yield server.url(name)


@pytest.fixture
def start(pg_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``lock_child`` processes on the test's database and repository root (``extra``:
    their options), each waited for until ready; stopped at the end."""
    started: list[subprocess.Popen[str]] = []

    def spawn(*extra: str) -> subprocess.Popen[str]:
        started.append(lock_child.start(pg_url, tmp_path / "repo", *extra))
        return started[-1]

    yield spawn
    for process in started:
        lock_child.stop(process)


def admin(url: str) -> psycopg.Connection[Any]:
    params = {k: v for k, v in db_locks.connection_parameters(url, 60).items() if k != "options"}
    params["application_name"] = "test-admin"
    return psycopg.connect(autocommit=True, **params)


def repository(root: Path, url: str, *, timeout: float = 30.0, **kwargs: Any) -> publish.Repository:
    return publish.Repository(
        RepositorySettings(root=root, keep_snapshots=10_000),
        area_locks=db_locks.DatabaseLocks(url, lease=LEASE, timeout=timeout),
        **kwargs,
    )


def wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``condition`` held (polled every 10 ms); fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.01)
    return time.monotonic() - started


def snapshot_tickets(root: Path) -> list[set[int]]:
    """The tickets of every complete snapshot of ``AREA``, oldest first."""
    top = root / gc.SNAPSHOT_DIR / AREA.key
    found = []
    for path in top.iterdir():
        number = path.name.split("-", 1)[0]
        if number.isdigit():
            data = (path / area_manifest.MANIFEST_NAME).read_bytes()
            read = area_manifest.AreaManifest.from_json(data, area=AREA.path)
            found.append((int(number), {r.ticket_id for r in read.releases}))
    return [tickets for _, tickets in sorted(found)]


def test_two_daemon_processes_publishing_into_one_area_never_interleave(
    pg_url: str, tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    root, record = tmp_path / "repo", tmp_path / "holds"
    count = 15
    children = [
        start("--first", str(first), "--count", str(count), "--record", str(record))
        for first in (1000, 2000)
    ]  # fmt: skip
    for child in children:
        lock_child.say(child)  # both go at once
    for child in children:
        lock_child.expect(child, "done")
        assert child.wait(timeout=60) == 0

    holds = sorted(
        (int(enter), int(leave), int(pid))
        for pid, enter, leave in (line.split() for line in record.read_text().splitlines())
    )
    assert len(holds) == 2 * count
    assert len({pid for _, _, pid in holds}) == 2
    overlaps = [(a, b) for a, b in itertools.pairwise(holds) if b[0] < a[1]]
    assert overlaps == []
    # Both really contended: the holders alternated at least once.
    assert any(a[2] != b[2] for a, b in itertools.pairwise(holds))

    # Every snapshot is the one before plus exactly one release: no update was lost.
    chain = snapshot_tickets(root)
    assert len(chain) == 2 * count
    assert [len(tickets) for tickets in chain] == list(range(1, 2 * count + 1))
    assert all(before < after for before, after in itertools.pairwise(chain))
    expected = set(range(1000, 1000 + count)) | set(range(2000, 2000 + count))
    assert chain[-1] == expected
    live = publish.Repository(RepositorySettings(root=root)).manifest(AREA)
    assert live is not None and {r.ticket_id for r in live.releases} == expected


def test_a_sigkilled_holder_frees_the_area_within_its_lease(
    pg_url: str, tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    root = tmp_path / "repo"
    child = start("--first", "1", "--count", "2", "--pause")
    lock_child.say(child)
    lock_child.expect(child, "paused")  # inside its publication, holding stagerollout/7
    repo = repository(root, pg_url, timeout=LEASE)
    with (
        pytest.raises(publish_errors.AreaBusy),
        db_locks.DatabaseLocks(pg_url, timeout=0.2).area(AREA),
    ):
        pass

    child.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    assert child.wait(timeout=10) == -signal.SIGKILL
    with repo.locks.area(AREA):  # polls until free; AreaBusy after LEASE seconds
        freed = time.monotonic() - killed
    assert freed < LEASE

    # The next publication finds the area as it was and clears what the dead one left.
    building = root / gc.SNAPSHOT_DIR / AREA.key
    assert any(p.name.startswith(".building-") for p in building.iterdir())
    info = lock_child.release(tmp_path / "scratch-9", 9)
    repo.publish_unverified(9, info, tmp_path / "scratch-9")
    result = repo.promote_to_stagerollout(9, info, "7")
    assert result.changed
    assert not any(p.name.startswith(".building-") for p in building.iterdir())
    assert snapshot_tickets(root) == [{9}]


def test_the_gc_waits_for_a_running_publication(
    pg_url: str, tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    root = tmp_path / "repo"
    child = start("--first", "1", "--count", "1", "--pause")
    lock_child.say(child)
    lock_child.expect(child, "paused")
    with pytest.raises(publish_errors.AreaBusy):
        repository(root, pg_url, timeout=0.3).collect_garbage()

    took: list[int] = []
    reports: list[gc.GcReport] = []
    repo = repository(root, pg_url, timeout=60)
    inner = repo.locks

    class Noting:
        def area(self, area: areas.Area) -> Any:
            return inner.area(area)

        def everything(self) -> Any:
            return _noting(inner.everything(), took)

    repo.locks = Noting()
    collecting = threading.Thread(target=lambda: reports.append(repo.collect_garbage()))
    collecting.start()
    with admin(pg_url) as conn:  # the GC is connected and polling for its lock
        wait(lambda: _lock_sessions(conn) >= 2, 10, "the GC's lock connection")
    assert not took
    resumed = time.monotonic_ns()
    lock_child.say(child)  # the publication goes on, swaps and lets go
    lock_child.expect(child, "done")
    collecting.join(timeout=60)
    assert reports and took and took[0] > resumed
    assert snapshot_tickets(root) == [{1}]
    assert reports[0].pool_removed == 0  # the new snapshot's files were referenced


def test_the_gcs_exclusive_lock_holds_new_publications_back(
    pg_url: str, tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    root = tmp_path / "repo"
    # Both set up (their releases pooled) before the GC's lock is taken.
    busy = start("--first", "1", "--count", "1", "--timeout", "0.5")
    child = start("--first", "2", "--count", "1", "--timeout", "60")
    with repository(root, pg_url).locks.everything():
        lock_child.say(busy)
        lock_child.expect(busy, "busy")
        assert busy.wait(timeout=10) == lock_child.BUSY
        assert not (root / AREA.path).exists()
    lock_child.say(child)
    lock_child.expect(child, "done")
    assert snapshot_tickets(root) == [{2}]


def test_a_holder_whose_lock_connection_broke_stops_before_its_swap(
    pg_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    info = lock_child.release(tmp_path / "scratch-1", 1)
    plain = repository(root, pg_url)
    plain.publish_unverified(1, info, tmp_path / "scratch-1")
    before = plain.live_snapshot(areas.Area.unverified(info.short_name, info.version))

    def cut_the_lock(snapshot: Path, contents: area_manifest.AreaManifest) -> None:
        if contents.area != AREA.path:
            return
        key = db_locks.area_lock_key(AREA)
        with admin(pg_url) as conn:
            pid = conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
                " AND (classid::bigint << 32 | objid::bigint) = %s",
                (key,),
            ).fetchone()
            assert pid is not None
            conn.execute("SELECT pg_terminate_backend(%s)", (pid[0],))

    repo = repository(root, pg_url, metadata=cut_the_lock)
    with pytest.raises(publish_errors.LockLost) as raised:
        repo.promote_to_stagerollout(1, info, "7")
    assert raised.value.transient
    assert "stagerollout~7" in str(raised.value)
    assert repo.live_snapshot(AREA) is None  # never swapped in
    assert plain.live_snapshot(areas.Area.unverified(info.short_name, info.version)) == before


def test_the_lock_session_carries_the_lease_on_both_ends(pg_url: str) -> None:
    lock = db_locks.DatabaseLocks(pg_url, lease=60)
    with lock.area(AREA) as held:
        conn: psycopg.Connection[Any] = held._connection  # type: ignore[attr-defined]
        shown = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in (
                "tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count",
                "tcp_user_timeout", "idle_session_timeout", "application_name",
            )
        }  # fmt: skip
        client = conn.info.get_parameters()
    assert shown == {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "60000",  # milliseconds
        "idle_session_timeout": "0",
        "application_name": db_locks.APPLICATION_NAME,
    }
    assert client["keepalives_idle"] == "30" and client["tcp_user_timeout"] == "60000"


def test_the_operators_queries_in_the_docs_show_the_holders(pg_url: str) -> None:
    doc = (paths.ROOT / "docs" / "publication.md").read_text(encoding="utf-8")
    section = doc.split("\n## Locks\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sql\n(.*?)```", section, re.S)
    every, one_area = (q.strip() for q in block.split(";") if q.strip())
    other = areas.Area.parse("production/UMD-5/updates")
    publisher = db_locks.DatabaseLocks(pg_url)
    with (
        publisher.area(AREA),
        publisher.area(other),
        admin(pg_url) as conn,
    ):
        rows = conn.execute(every).fetchall()
        holders = conn.execute(one_area).fetchall()
        lock_pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
                (db_locks.APPLICATION_NAME,),
            )
        ]
    keys = {
        (r[3], int(r[5], 16))
        for r in rows  # pid, client_addr, backend_start, mode, granted, key
    }
    assert keys == {
        ("ShareLock", db_locks.GLOBAL_KEY),
        ("ExclusiveLock", db_locks.area_lock_key(AREA)),
        ("ExclusiveLock", db_locks.area_lock_key(other)),
    }
    assert len(rows) == 4 and all(r[4] for r in rows)  # the global lock shared twice
    assert sorted({r[0] for r in rows}) == lock_pids
    assert [(h[0], h[3]) for h in holders] == [
        (r[0], "ExclusiveLock") for r in rows if int(r[5], 16) == db_locks.area_lock_key(AREA)
    ]


def _lock_sessions(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
        (db_locks.APPLICATION_NAME,),
    ).fetchone()
    return int(row[0]) if row else 0


class _noting:  # noqa: N801 - a context manager used like a function
    """Wraps a hold: notes ``time.monotonic_ns()`` once the lock is taken."""

    def __init__(self, inner: Any, took: list[int]) -> None:
        self.inner, self.took = inner, took

    def __enter__(self) -> Any:
        held = self.inner.__enter__()
        self.took.append(time.monotonic_ns())
        return held

    def __exit__(self, *exc: object) -> Any:
        return self.inner.__exit__(*exc)
