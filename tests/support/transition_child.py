"""``python -m tests.support.transition_child CONFIG``: a daemon-like child process that walks
one release through the staged workflow, for the atomicity tests that SIGKILL it: Submitted →
Unverified (sync and publication) → InVerification → StageRollout → Production, and in other
walks (``WALKS``) out of production again, or rejected from staged rollout.

It runs the product's parts as the daemon does: the real queue and release store on the
database CONFIG names, the workflow processor with the real repository steps (sync from the
provider's rsync daemon, publication into a temporary tree, real metadata and signing) and the
runner (``repo_daemon.daemon.runner``); the in-memory ``FakeTracker`` stands in for RT. The
tracker's state is saved to a file after each change (``SavedTracker``), so a restarted child
sees the ticket as RT would still show it. A manager's move is "changed in RT, then queued",
with a fixed transaction id per move, so a restarted child queues each move once and resumes
the work a killed one left (the lease of its job runs out, then the runner takes it again).

It reports progress on stdout, one line each: ``ready`` (set up, about to work), ``step
<State>`` (the move asked), ``finished`` (the release is where the walk goes) or ``failed
<why>``; with ``check_commits``, also each problem found after a commit. It is a test helper:
it changes nothing outside the database and the folders CONFIG names.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bridge import records
from bridge.records import RolloutState as S
from bridge.settings import model as settings_model
from bridge.store import database, queue, releases
from bridge.testing import FakeTracker
from repo_daemon.daemon import runner
from repo_daemon.workflow import processor as workflow
from repo_daemon.workflow import steps
from tests.support import event_consistency

TICKET = 7
# The moves a manager asks, in order (each from where the one before left the release).
TO_PRODUCTION = ("Unverified", "InVerification", "StageRollout", "Production")
WALKS = {
    "production": TO_PRODUCTION,
    "withdrawn": (*TO_PRODUCTION, "Withdrawn"),  # out of production again
    "rejected": ("Unverified", "InVerification", "StageRollout", "Rejected"),
}
MANAGER = "manager"
_SAVED = (
    "tickets", "attachments", "comments", "replies", "history", "memberships",
    "_transactions", "_field_ids",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Config:
    """What the parent gives the child (a JSON file)."""

    db_url: str
    data_dir: Path
    tracker_state: Path
    release_xml: Path
    sync_url: str
    signing_key: str
    gnupghome: Path
    lease_seconds: float
    major_release: str = "UMD-5"
    # Check the tables against the log after every commit (``event_consistency``), saying
    # ``inconsistent after commit N: ...`` for each problem and ``commits N`` at the end.
    check_commits: bool = False
    walk: str = "production"  # one of WALKS

    @classmethod
    def read(cls, path: Path) -> Config:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        for key in ("data_dir", "tracker_state", "release_xml", "gnupghome"):
            raw[key] = Path(raw[key])
        return cls(**raw)

    def write(self, path: Path) -> None:
        values = {k: str(v) if isinstance(v, Path) else v for k, v in vars(self).items()}
        path.write_text(json.dumps(values), encoding="utf-8")


class SavedTracker(FakeTracker):
    """A ``FakeTracker`` whose tickets, attachments, messages and history outlive the process:
    saved (atomically) after every change, loaded by the next child."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._next_id = 1000
        if path.exists():
            # Written by the previous child of the same trial, never by anyone else.
            saved = pickle.loads(path.read_bytes())  # noqa: S301
            for name in _SAVED:
                setattr(self, name, saved[name])
            self._next_id = saved["next_id"]

    def _txn(self, kind: str, actor: str, **more: Any) -> dict[str, Any]:
        self._next_id += 1
        return {"id": self._next_id, "Type": kind, "Creator": {"id": actor}, **more}

    def save(self) -> None:
        state = {name: getattr(self, name) for name in _SAVED} | {"next_id": self._next_id}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(pickle.dumps(state))
        tmp.replace(self.path)

    def change_field(self, ticket_id: int, name: str, value: str, *, actor: str) -> int:
        txn = super().change_field(ticket_id, name, value, actor=actor)
        self.save()
        return txn

    def update_ticket(self, ticket_id: int, **kw: Any) -> list[str]:
        messages = super().update_ticket(ticket_id, **kw)
        self.save()
        return messages

    def comment(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        super().comment(ticket_id, text, status=status)
        self.save()

    def reply(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        super().reply(ticket_id, text, status=status)
        self.save()


def settings_of(config: Config) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt.test/"),
        data_dir=config.data_dir,
        daemon=settings_model.DaemonSettings(
            rt_bridge_user="rollout-bridge",
            retry_max_attempts=3,
            retry_base_delay=0.2,
            lease_seconds=config.lease_seconds,
            workers=1,
        ),
        repository=settings_model.RepositorySettings(
            root=config.data_dir / "repo",
            base_url="http://repo.test/",
            signing_key=config.signing_key,
            gnupghome=config.gnupghome,
            sync_hosts=(settings_model.SyncHost(host="127.0.0.1"),),
            sync_timeout=60,
        ),
    )


def _file_ticket(tracker: SavedTracker, config: Config) -> None:
    """The provider's ticket, with release.xml attached (once: a restarted child finds it)."""
    if TICKET in tracker.tickets:
        return
    tracker.memberships[MANAGER] = frozenset({"sw-rel-qc", "sw-rel-sr", "sw-rel-admin"})
    tracker.add_ticket(TICKET, fields={
        "RolloutProgress": "Submitted", "EmergencyRelease": "No",
        "AssociatedMajorRelease": config.major_release, "ReleaseType": "NonIncremental",
        "Sync-Protocol": "rsync", "Sync-URL": config.sync_url, "RolloutHistory": (),
        "RepositoryURL": (), "EarlyAdopters": (), "StageRollout Report": (),
    })  # fmt: skip
    tracker.attach(TICKET, "release.xml", config.release_xml.read_bytes(), "application/xml")
    tracker.save()


def say(line: str) -> None:
    print(line, flush=True)


def _wait_done(jobs: queue.Queue, run: runner.Runner, transaction_id: int) -> records.Job:
    """Drain until the job of ``transaction_id`` is finished. A job a killed child held comes
    back when its lease runs out: until then nothing is due, and the loop waits for that."""
    while True:
        run.drain()
        (job,) = [
            j
            for j in jobs.list_jobs(ticket_id=TICKET)
            if j.request.transaction_id == transaction_id
        ]
        if job.status not in (records.JobStatus.QUEUED, records.JobStatus.RUNNING):
            return job
        time.sleep(0.05)


class CommitChecks:
    """After each commit on ``engine`` (the DBAPI's own, so the change is durable), check
    the database on an engine of its own and say every problem found."""

    def __init__(self, engine: sa.Engine, url: str) -> None:
        self.checker = database.create_engine(url)
        self.commits = 0
        self._lock = threading.Lock()
        self._commit = engine.dialect.do_commit
        engine.dialect.do_commit = self._do_commit  # type: ignore[method-assign]

    def _do_commit(self, dbapi_connection: Any) -> None:
        if self.checker.dialect.name != "postgresql":
            self._commit(dbapi_connection)
            with self._lock:
                self._check()
            return
        # On PostgreSQL the check reads the log and the tables in several statements, each
        # seeing what is committed when it runs: no other commit may land between them, or a
        # move committed by another thread meanwhile shows in the tables but not in the log
        # read before it. Readers never wait for writers there, so the lock is taken first.
        with self._lock:
            self._commit(dbapi_connection)
            self._check()

    def _check(self) -> None:
        self.commits += 1
        for problem in event_consistency.problems(self.checker):
            say(f"inconsistent after commit {self.commits}: {problem}")


def walk(config: Config) -> int:
    settings = settings_of(config)
    engine = database.create_engine(config.db_url)
    checks = CommitChecks(engine, config.db_url) if config.check_commits else None
    jobs = queue.Queue(engine, lease=timedelta(seconds=config.lease_seconds))
    store = releases.ReleaseStore(engine, clock=jobs.clock)
    tracker = SavedTracker(config.tracker_state)
    _file_ticket(tracker, config)
    work = steps.RepositoryWork(settings, store, steps.repository(settings))
    processor = workflow.WorkflowProcessor(
        settings, jobs, store, lambda: tracker,  # type: ignore[arg-type,return-value]
        repository=work,
    )  # fmt: skip
    run = runner.Runner(jobs, processor, settings.daemon, worker=f"child-{os.getpid()}")
    say("ready")
    try:
        moves = [S.parse(label) for label in WALKS[config.walk]]
        for n, asked in enumerate(moves):
            came_from, txn = moves[n - 1] if n else S.SUBMITTED, 5001 + n
            say(f"step {asked.label}")
            ticket = tracker.tickets[TICKET]
            known = {j.request.transaction_id for j in jobs.list_jobs(ticket_id=TICKET)}
            if txn not in known and ticket.field("RolloutProgress") != asked.label:
                tracker.change_field(TICKET, "RolloutProgress", asked.label, actor=MANAGER)
            jobs.enqueue_many([
                records.ReleaseRequest(ticket_id=TICKET, transaction_id=txn, current=asked,
                                       previous=came_from, actor=MANAGER)
            ])  # fmt: skip
            job = _wait_done(jobs, run, txn)
            found = store.get(TICKET)
            # A restarted child finds the moves done before it, the release further along.
            if (
                job.status is not records.JobStatus.DONE
                or found is None
                or (found.state not in moves[n:])
            ):
                state = found.state.label if found else "(no record)"
                say(f"failed job {job.id} {job.status.label}, release at {state}: {job.last_error}")
                return 1
    finally:
        run.close()
        processor.close()
        engine.dispose()
        if checks is not None:
            checks.checker.dispose()
            say(f"commits {checks.commits}")
    say("finished")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
    return walk(Config.read(Path(args[0])))


if __name__ == "__main__":
    sys.exit(main())
