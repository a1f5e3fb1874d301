"""Events are written in the same transaction as their change (issue 16): a daemon-like child
(``tests.support.transition_child``: the real queue, release store, workflow processor with
real sync over an rsync daemon, real publication, metadata and signing, and the runner; a fake
RT) walks a release Submitted → Unverified → InVerification → StageRollout → Production and is
SIGKILLed at a random point, uniform over the measured length of a whole walk (seeded; the seed
is printed, ``ROLLOUT_TEST_KILL_SEED`` repeats it). After each kill the stored tables and what
the log rebuilds agree (no change without its event, no event without its change; the job the
child held is "running" in both), every finished step has its event and every such event its
step, and the hash chain holds (``tests.support.event_consistency``). Then a new child
finishes the walk and all of it is checked again. 20 trials on SQLite, 5 on PostgreSQL.

Random kills land where the time goes (syncing, metadata); a kill right after a commit leaves
what that commit left, so one more test checks the database after every commit of a walk. And
the checks themselves are shown to see a change made without its event.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue as threads_queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_postgresql.janitor import DatabaseJanitor

from bridge.store import database, tables
from tests.support import event_consistency, packages
from tests.support.pg_server import PostgresServer
from tests.support.repo_clients import shared_key
from tests.support.rsync_server import RsyncDaemon
from tests.support.transition_child import TICKET, Config

ROOT = Path(__file__).resolve().parents[2]
TRIALS = {"sqlite": 20, "postgresql": 5}  # kills per backend
LEASE = 1.5  # seconds: how soon a restarted child takes over the killed one's job
READY_TIMEOUT = 60.0
WALK_TIMEOUT = 300.0
SEED = int(os.environ.get("ROLLOUT_TEST_KILL_SEED", "0")) or random.SystemRandom().randrange(
    1, 2**31
)


@dataclass
class Child:
    """One run of the child: its process and the lines it printed so far."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _feed: threads_queue.Queue[str | None] = field(default_factory=threads_queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._feed.put(line.strip())
        self._feed.put(None)

    def wait_for(self, done: Callable[[str], bool], timeout: float) -> str:
        """The first line (from now) for which ``done`` holds; AssertionError when the child
        ends or the time runs out first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._feed.get(timeout=max(0.0, deadline - time.monotonic()))
            except threads_queue.Empty:
                raise AssertionError(f"child said {self.lines[-3:]} and then nothing") from None
            if line is None:
                raise AssertionError(f"child ended ({self.process.wait()}): {self.lines[-3:]}")
            self.lines.append(line)
            if line.startswith("failed"):
                raise AssertionError(f"child: {line}")
            if done(line):
                return line

    def end(self) -> int:
        """Wait for the child to end (killed after 30 s); close its pipe; its exit code."""
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=30)
        while (line := self._feed.get(timeout=10)) is not None:
            self.lines.append(line)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    def step(self) -> str:
        """The move the child was on (its last ``step`` line)."""
        steps = [line.split(" ", 1)[1] for line in self.lines if line.startswith("step ")]
        return steps[-1] if steps else "(setting up)"


@dataclass
class World:
    """What every trial shares: the provider's tree on an rsync daemon, the signing key."""

    root: Path
    rsync: RsyncDaemon
    release_xml: Path
    sync_url: str

    def config(
        self, trial: Path, db_url: str, *, check_commits: bool = False, walk: str = "production"
    ) -> Path:
        trial.mkdir(parents=True)
        key = shared_key()
        config = Config(
            db_url=db_url, data_dir=trial / "data", tracker_state=trial / "rt.pickle",
            release_xml=self.release_xml, sync_url=self.sync_url, signing_key=key.fingerprint,
            gnupghome=key.home, lease_seconds=LEASE, check_commits=check_commits,
            walk=walk,
        )  # fmt: skip
        path = trial / "config.json"
        config.write(path)
        return path

    def start(self, config: Path, log: Path) -> Child:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env["PYTHONPATH"] = str(ROOT)
        with log.open("a") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.transition_child", str(config)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        return Child(process)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    missing = packages.tools_missing()
    assert not missing, f"install {missing} (Debian: dpkg, rpm) to build the test packages"
    root = tmp_path_factory.mktemp("atomicity")
    provider = root / "provider"
    with RsyncDaemon(root / "rsyncd", {"provider": provider}) as rsync:
        url = rsync.url("provider", "atomic/")
        tree = packages.layout_provider_tree(
            provider / "atomic",
            packages.build_pair(root / "built", "atomic-pkg", tag="atomic"),
            short_name="atomic", sync_url=url, major_release="UMD-5",
        )  # fmt: skip
        release_xml = root / "release.xml"
        release_xml.write_bytes(tree.release_xml)
        yield World(root=root, rsync=rsync, release_xml=release_xml, sync_url=url)


# -- what must hold after every kill --------------------------------------------------------


def assert_consistent(engine: sa.Engine, when: str) -> None:
    found = event_consistency.problems(engine)
    assert found == [], f"{when}: the tables and the log disagree: {found}"


def where_it_died(engine: sa.Engine) -> str:
    """The last event written and the jobs' statuses, as a short phrase."""
    log, jobs = tables.event_log, tables.jobs
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(log.c.kind, log.c.data).order_by(log.c.id.desc()).limit(1)
        ).first()
        running = (
            conn.execute(sa.select(jobs.c.id).where(jobs.c.status == "running")).scalars().all()
        )
    if last is None:
        return "before any event"
    data = json.loads(last.data)
    what = data.get("action") or data.get("step") or data.get("to") or ""
    held = f", job {running[0]} running" if running else ""
    return f"after {last.kind}{f' ({what})' if what else ''}{held}"


def state_of(engine: sa.Engine) -> str | None:
    rel = tables.releases
    with engine.connect() as conn:
        return conn.execute(sa.select(rel.c.state).where(rel.c.ticket_id == TICKET)).scalar()


# -- the trials -----------------------------------------------------------------------------


def run_whole(world: World, trial: Path, db_url: str) -> float:
    """One walk without a kill; returns its length (from ``ready`` to ``finished``)."""
    child = world.start(world.config(trial, db_url), trial / "child.log")
    try:
        child.wait_for(lambda line: line == "ready", READY_TIMEOUT)
        started = time.monotonic()
        child.wait_for(lambda line: line == "finished", WALK_TIMEOUT)
        length = time.monotonic() - started
    finally:
        assert child.end() == 0
    return length


def kill_and_finish(world: World, trial: Path, db_url: str, delay: float) -> str:
    """Kill a child ``delay`` seconds after it is ready; check; finish with a new child;
    check. Returns where the killed child was."""
    config = world.config(trial, db_url)
    child = world.start(config, trial / "child.log")
    try:
        child.wait_for(lambda line: line == "ready", READY_TIMEOUT)
    except AssertionError:
        child.end()
        raise
    time.sleep(delay)  # the random kill point itself: the only fixed wait
    child.process.send_signal(signal.SIGKILL)
    assert child.end() == -signal.SIGKILL or "finished" in child.lines
    engine = database.create_engine(db_url)
    try:
        finished = "finished" in child.lines
        where = "finished before the kill" if finished else (
            f"→{child.step()}: {where_it_died(engine)}"
        )  # fmt: skip
        assert_consistent(engine, f"after the kill ({where})")
        again = world.start(config, trial / "child.log")
        try:
            again.wait_for(lambda line: line == "finished", WALK_TIMEOUT)
        finally:
            assert again.end() == 0
        assert state_of(engine) == "Production"
        assert_consistent(engine, f"after finishing the walk killed {where}")
    finally:
        engine.dispose()
    return where


NewDatabase = Callable[[str], contextlib.AbstractContextManager[str]]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_db(request: pytest.FixtureRequest, world: World) -> NewDatabase:
    """Fresh, migrated databases (one per name) on the test's backend."""

    @contextlib.contextmanager
    def sqlite(name: str) -> Iterator[str]:
        path = world.root / "sqlite-db" / name
        path.mkdir(parents=True)
        url = database.default_url(path)
        _migrate(url)
        yield url

    @contextlib.contextmanager
    def postgresql(name: str) -> Iterator[str]:
        server: PostgresServer = request.getfixturevalue("pg_server")
        dbname = f"atomic_{os.getpid()}_{name.replace('-', '_')}"
        with DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=dbname):
            url = server.url(dbname)
            _migrate(url)
            yield url

    return sqlite if request.param == "sqlite" else postgresql


def _migrate(url: str) -> None:
    engine = database.create_engine(url)
    database.migrate(engine)
    engine.dispose()


def _backend(new_db: NewDatabase) -> str:
    return new_db.__name__


def test_a_sigkill_at_random_points_leaves_no_change_without_its_event(
    world: World, new_db: NewDatabase
) -> None:
    backend = _backend(new_db)
    rng = random.Random(f"{SEED}-{backend}")
    print(f"\nkill seed {SEED} ({backend}); ROLLOUT_TEST_KILL_SEED={SEED} repeats it")
    runs = world.root / backend
    with new_db("whole") as url:
        length = run_whole(world, runs / "whole", url)
        engine = database.create_engine(url)
        assert_consistent(engine, "after a whole walk")
        engine.dispose()
    print(f"a whole walk takes {length:.2f} s")
    for n in range(1, TRIALS[backend] + 1):
        delay = rng.uniform(0, length)
        with new_db(f"trial-{n}") as url:
            where = kill_and_finish(world, runs / f"trial-{n}", url, delay)
        print(f"trial {n:2d}: killed at {delay:6.3f} s {where}")


@pytest.mark.parametrize("walk", ["withdrawn", "rejected"])
def test_every_commit_of_a_walk_leaves_the_tables_and_the_log_agreeing(
    world: World, new_db: NewDatabase, walk: str
) -> None:
    """The same property at every commit, not only where a kill happens to land: the child
    checks the database after each commit of a whole walk (what a kill right after that
    commit would leave), to Production and out again, or rejected from StageRollout."""
    trial = world.root / _backend(new_db) / f"every-commit-{walk}"
    with new_db(f"every-commit-{walk}") as url:
        config = world.config(trial, url, check_commits=True, walk=walk)
        child = world.start(config, trial / "child.log")
        try:
            child.wait_for(lambda line: line == "finished", WALK_TIMEOUT)
        finally:
            assert child.end() == 0
    problems = [line for line in child.lines if line.startswith("inconsistent")]
    (commits,) = [int(line.split()[1]) for line in child.lines if line.startswith("commits ")]
    print(f"\n{commits} commits checked")
    assert commits > 50  # the walk's claims, steps, moves and completions, each committed
    assert problems == []


@pytest.fixture(scope="module")
def walked(world: World) -> Path:
    """A SQLite database (its file) with one release walked to Production."""
    path = world.root / "walked"
    url = database.default_url(path / "db")
    (path / "db").mkdir(parents=True)
    _migrate(url)
    run_whole(world, path / "run", url)
    return path / "db" / "bridge.sqlite"


TAMPERING = {
    "a state without its move": "UPDATE releases SET state = 'Failed'",
    "a job status without its event": "UPDATE jobs SET status = 'queued' WHERE id = 2",
    "a step without its event": "INSERT INTO job_steps (job_id, action, done_at, detail) "
    "VALUES (2, 'sync_packages', '2026-01-01 00:00:00', '')",
    "a step's event without the step": "DELETE FROM job_steps WHERE action = 'publish_unverified'",
    "an area without its publication": "DELETE FROM release_areas WHERE area LIKE 'stagerollout%'",
    "an event edited": "UPDATE event_log SET actor = 'someone' WHERE kind = 'transition_done'",
}


@pytest.mark.parametrize("change", list(TAMPERING.values()), ids=list(TAMPERING))
def test_the_checks_see_a_change_without_its_event(
    walked: Path, tmp_path: Path, change: str
) -> None:
    copy = tmp_path / "bridge.sqlite"
    shutil.copyfile(walked, copy)
    engine = database.create_engine(f"sqlite:///{copy}")
    try:
        assert event_consistency.problems(engine) == []
        with engine.begin() as conn:
            assert conn.exec_driver_sql(change).rowcount >= 1
        assert event_consistency.problems(engine) != []
    finally:
        engine.dispose()
