"""A publication killed with SIGKILL at every one of its steps leaves nothing behind that the
next garbage collection does not repair: no writable pool file, no swap symlink, no
half-built or half-deleted snapshot, no metadata tool still running; every area points at a
complete snapshot, and repeating the step finishes it.

The publication runs in a child process with the daemon's own metadata step (real
createrepo_c, apt-ftparchive and gpg, signed). An audit hook (``sys.addaudithook``) in the
child numbers every file-system step below the repository (link, chmod, rename, symlink,
mkdir, unlink, rmdir, opening a file to write) and every start of a tool. One run counts
them; then, for each step, a fresh copy of the same repository is published into again and
the child is killed just before that step, and once more *while* each tool runs: a watcher
thread stops the tool mid-work (SIGSTOP: without its parent-death signal it would wait there
for ever) and kills its own process. After each kill the test looks in /proc for tools, runs
the GC, checks the tree, then repeats the step in-process and checks the areas it gives.
The children are forked from one "zygote" process that has imported everything, so a kill
costs the publication only (about 0.3 s each).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.secrets import Secret
from bridge.settings.model import RepositorySettings, Settings, TrackerSettings
from repo_daemon.publish import areas, names, pool
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from repo_daemon.workflow import steps
from tests.support import packages, paths, repo_clients
from tests.support.release_factory import release_info
from tests.support.repo_clients import TestKey

ROOT = paths.ROOT
TOOLS = ("createrepo_c", "apt-ftparchive", "gpg")
MAJOR = "7"
TICKET = 3  # the release every publication below is about; 1 and 2 are already published
REPOSITORIES = (
    release_model.RepositorySpec(
        identifier="crash-rpm", name="RPMs", type="YUM", relative_path="rpms/noarch"
    ),
    release_model.RepositorySpec(
        identifier="crash-deb", name="Debs", type="APT", relative_path="debs"
    ),
)
RELEASES = {1: "Alpha", 2: "Beta", TICKET: "Crash"}
AREAS = (
    "unverified/Alpha/1.0.0",
    "unverified/Beta/1.0.0",
    "unverified/Crash/1.0.0",
    "stagerollout/7",
    "production/7/updates",
)
# Audit events that change the file system, and where each keeps its path.
CHANGES = {
    "os.link": 1,
    "os.rename": 1,
    "os.symlink": 1,
    "os.chmod": 0,
    "os.mkdir": 0,
    "os.remove": 0,
    "os.rmdir": 0,
    "os.truncate": 0,
    "os.utime": 0,
    "os.chown": 0,
}
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
TOOL_GONE_WITHIN = 10.0  # seconds for the kernel to deliver the parent-death signal


# ---------------------------------------------------------------- what a publication is here


def settings_for(run: Path, key_home: Path, fingerprint: str) -> Settings:
    """The daemon's settings for the repository in ``run``: signed, one snapshot kept."""
    return Settings(
        tracker=TrackerSettings(url="http://127.0.0.1:9/", token=Secret("1-2-3")),
        data_dir=run / "data",
        repository=RepositorySettings(
            root=run / "data" / "repo",
            base_url="http://127.0.0.1:9/repo/",
            keep_snapshots=1,  # every publication also deletes an old snapshot
            signing_key=fingerprint,
            gnupghome=key_home,
        ),
    )


def release_of(run: Path, ticket: int) -> release_model.ReleaseInfo:
    """The release of ``ticket``, described from its scratch tree (read only)."""
    short = RELEASES[ticket]
    scratch = run / "scratch" / short
    files = sorted(p for p in scratch.rglob("*") if p.is_file())
    found = [
        release_model.PackageFile(
            path=p.relative_to(scratch).as_posix(),
            size=p.stat().st_size,
            sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in files
    ]
    return release_info(short, "1.0.0", found, repositories=REPOSITORIES, major_release=MAJOR)


def publish_step(repo: publish.Repository, run: Path, ticket: int) -> None:
    repo.publish_unverified(ticket, release_of(run, ticket), run / "scratch" / RELEASES[ticket])


def stage_step(repo: publish.Repository, run: Path, ticket: int) -> None:
    repo.promote_to_stagerollout(ticket, release_of(run, ticket), MAJOR)


def production_step(repo: publish.Repository, run: Path, ticket: int) -> None:
    repo.promote_to_production(ticket, release_of(run, ticket), MAJOR, "Incremental")


OPERATIONS: dict[str, Callable[[publish.Repository, Path, int], None]] = {
    "publish_unverified": publish_step,
    "promote_to_stagerollout": stage_step,
    "promote_to_production": production_step,
}


# ---------------------------------------------------------------- the child that gets killed


def zygote() -> None:
    """Read one spec (JSON) per line from stdin, run each in a forked child (``run_spec``) and
    write its exit code (negative: the signal that ended it) to stdout. Forking from a
    process that has imported everything once makes each kill cost the publication only."""
    for line in sys.stdin:
        spec = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: the publication, as the daemon's job would run it
            code = 0
            try:
                run_spec(spec)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


def run_spec(spec: dict[str, Any]) -> None:
    """Run one operation of ``spec``; with ``kill_at`` N, SIGKILL this process just before
    its N-th step (or, with ``during``, while the tool that step starts runs). Without, write
    the list of steps to ``log``."""
    run, log = Path(spec["run"]), Path(spec["log"])
    settings = settings_for(run, Path(spec["key_home"]), spec["fingerprint"])
    repo = steps.repository(settings)
    operation = OPERATIONS[spec["operation"]]
    kill_at: int | None = spec.get("kill_at")
    prefix = str(run) + "/"
    seen: list[str] = []
    armed = False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal armed
        if not armed:
            return
        step = describe(event, args, prefix)
        if step is None:
            return
        seen.append(step)
        if len(seen) != kill_at:
            return
        armed = False
        if spec.get("during"):
            kill_while_running(step.split()[1], log)
        else:
            note(log, f"killed before {step}")
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)  # in the forked child only: audit hooks cannot be removed
    armed = True
    operation(repo, run, TICKET)
    armed = False
    if kill_at is None:
        log.write_text("\n".join(seen) + "\n")
    else:
        note(log, f"finished: {len(seen)} steps")


def describe(event: str, args: tuple[Any, ...], prefix: str) -> str | None:
    """A step of the publication (``"<event> <path>"``), or None for an event that changes
    nothing below the run directory (reading; Python's own files)."""
    if event == "subprocess.Popen":
        return f"run {Path(args[1][0]).name}"
    if event == "open":
        path, _, flags = args
        if not isinstance(flags, int) or not flags & WRITING:
            return None
    elif event in CHANGES:
        path = args[CHANGES[event]]
        dir_fd = args[-1]
        if isinstance(dir_fd, int) and dir_fd >= 0:
            return f"{event} {os.fsdecode(path)} (in a directory being deleted)"
    else:
        return None
    if isinstance(path, int):
        return f"{event} <fd>"
    text = os.fsdecode(path)
    return f"{event} {text.removeprefix(prefix)}" if text.startswith(prefix) else None


def note(log: Path, line: str) -> None:
    with log.open("a") as out:
        out.write(line + "\n")


def kill_while_running(tool: str, log: Path) -> None:
    """Start a thread that waits until this process's next child has become ``tool``, stops
    it mid-work and kills this process. If the child ends before it is seen, note a miss."""
    me = os.getpid()
    floor = last_pid()

    def watch() -> None:
        deadline = time.monotonic() + 60
        target = None
        while time.monotonic() < deadline:
            if target is None:
                target = next((p for p in pids_above(floor) if parent_of(p) == me), None)
                continue
            comm = comm_of(target)
            if comm is None or parent_of(target) != me:
                break  # it ended (and was reaped) before it was seen as the tool
            if comm == tool[:15]:
                os.kill(target, signal.SIGSTOP)
                note(log, f"caught {tool} {target}")
                os.kill(me, signal.SIGKILL)
        note(log, f"missed {tool}")

    threading.Thread(target=watch, name="killer", daemon=True).start()


def last_pid() -> int:
    return int(Path("/proc/loadavg").read_text().split()[-1])


def pids_above(floor: int) -> list[int]:
    found = (p.name for p in Path("/proc").iterdir())
    return sorted(int(n) for n in found if n.isdigit() and int(n) > floor)


def parent_of(pid: int) -> int | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat_line.rpartition(")")[2].split()[1])


def comm_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


# ---------------------------------------------------------------- what the test looks at


def same_step(text: str) -> str:
    """``text`` without what differs between two runs of one step (times, random names)."""
    text = re.sub(r"[0-9]{8}T[0-9]{6}Z", "*", text)
    return re.sub(r"(swap-|\.db\.)[0-9a-f]+", r"\1*", text)


def tools_in(run: Path) -> list[tuple[int, str, str]]:
    """Metadata tools alive (not zombies) whose working directory is below ``run``:
    (pid, name, state)."""
    found = []
    for pid in pids_above(0):
        comm = comm_of(pid)
        if comm not in TOOLS:
            continue
        try:
            cwd = str(Path(f"/proc/{pid}/cwd").readlink())
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue  # gone meanwhile, or a zombie
        if state not in ("Z", "X") and (cwd + "/").startswith(f"{run}/"):
            found.append((pid, comm, state))
    return found


def wait_until_no_tools(run: Path, within: float) -> list[tuple[int, str, str]]:
    """Wait until no metadata tool runs below ``run``; the ones still there after ``within``
    seconds."""
    deadline = time.monotonic() + within
    while (left := tools_in(run)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return left


def problems_after_gc(root: Path) -> list[str]:
    """What a crash may not leave behind once the GC has run."""
    problems = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            where = path.relative_to(root).as_posix()
            if names.SWAP in name:
                problems.append(f"swap link {where} survived")
            if name.startswith((names.BUILDING, names.DELETING)):
                problems.append(f"half-built or half-deleted {where} survived")
    pool_dir = root / pool.POOL_DIR
    for directory, _, files in os.walk(pool_dir):
        for name in files:
            path = Path(directory, name)
            mode = stat.S_IMODE(path.lstat().st_mode)
            if Path(directory).name == pool.TMP_DIR:
                problems.append(f"copy leftover {path.relative_to(root)} survived")
            elif mode & 0o222:
                problems.append(f"pool file {path.relative_to(root)} is writable ({mode:o})")
    for area in AREAS:
        link = root / area
        if link.is_symlink():
            target = link.resolve()
            if not (target / ".rollout-manifest.json").is_file():
                problems.append(f"{area} points at {target.name}, not a complete snapshot")
    return problems


def contents(repo: publish.Repository) -> dict[str, list[tuple[int, list[str]]]]:
    """What each area holds: its releases' tickets and files (path and SHA-256)."""
    found = {}
    for area in AREAS:
        held = repo.manifest(areas.Area.parse(area))
        if held is not None:
            found[area] = sorted(
                (r.ticket_id, sorted(f"{f.path} {f.sha256}" for f in r.files))
                for r in held.releases
            )
    return found


def served_writable(root: Path) -> list[str]:
    """Payload files any area serves with a write bit."""
    found = []
    for area in AREAS:
        link = root / area
        if not link.is_symlink():
            continue
        for directory, _, files in os.walk(link.resolve()):
            for name in files:
                st = Path(directory, name).lstat()
                if st.st_nlink > 1 and stat.S_IMODE(st.st_mode) & 0o222:
                    found.append(f"{area}: {Path(directory, name).relative_to(link.resolve())}")
    return found


# ---------------------------------------------------------------- the world the tests share


@dataclass(frozen=True)
class World:
    """Repository states before each operation (copies made at ``run``, the one path every
    publication below uses) and the signing key."""

    base: Path
    key: TestKey

    @property
    def run(self) -> Path:
        return self.base / "run"

    def state(self, name: str) -> Path:
        return self.base / "states" / name

    def reset(self, name: str) -> None:
        """Make ``run`` a copy of state ``name`` (hard links inside it kept: ``cp -a``)."""
        if self.run.exists():
            for directory, dirs, _ in os.walk(self.run):
                for d in dirs:
                    Path(directory, d).chmod(0o755)
            shutil.rmtree(self.run)
        subprocess.run(["cp", "-a", str(self.state(name)), str(self.run)], check=True)

    def save(self, name: str) -> None:
        self.state(name).parent.mkdir(exist_ok=True)
        subprocess.run(["cp", "-a", str(self.run), str(self.state(name))], check=True)

    def settings(self) -> Settings:
        return settings_for(self.run, self.key.home, self.key.fingerprint)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    missing = repo_clients.tools_missing(*TOOLS) + packages.tools_missing()
    if missing:
        pytest.fail(f"install the Debian packages {' '.join(missing)} (scripts/bootstrap)")
    base = tmp_path_factory.mktemp("crash")
    key = repo_clients.make_signing_key(tmp_path_factory.mktemp("gpg") / "k")
    made = World(base=base, key=key)
    work = base / "packages"
    for ticket, short in RELEASES.items():
        scratch = made.run / "scratch" / short
        for built in packages.build_pair(work, f"crash-{short.lower()}", tag=str(ticket)):
            folder = "rpms/noarch" if built.kind == "rpm" else "debs"
            (scratch / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(built.file, scratch / folder / built.file.name)
    repo = steps.repository(made.settings())
    for ticket in (1, 2):  # Alpha reaches production, Beta staged rollout: every area exists
        publish_step(repo, made.run, ticket)
        stage_step(repo, made.run, ticket)
    production_step(repo, made.run, 1)
    for name, operation in OPERATIONS.items():
        made.save(name)  # the state before ``operation``
        operation(repo, made.run, TICKET)
    made.save("done")
    yield made
    key.stop_agent()


# ---------------------------------------------------------------- the tests


@dataclass
class Outcome:
    """What killing one operation at every step found."""

    steps: list[str] = dataclasses.field(default_factory=list)
    kills: int = 0
    caught: dict[str, int] = dataclasses.field(default_factory=dict)
    missed: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)


class Zygote:
    """The ``zygote`` process, started once per test; ``run`` publishes in a fresh fork."""

    def __init__(self, world: World) -> None:
        self.world = world
        code = f"from {__name__} import zygote; zygote()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, operation: str, log: Path, **kill: object) -> int:
        """The exit code of ``operation`` published in a fork (``-SIGKILL`` when killed)."""
        spec = {
            "run": str(self.world.run),
            "log": str(log),
            "key_home": str(self.world.key.home),
            "fingerprint": self.world.key.fingerprint,
            "operation": operation,
            **kill,
        }
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(spec) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise AssertionError(f"the zygote died: {self.process.wait(10)}")
        code = int(answer)
        if code not in (0, -signal.SIGKILL):
            raise AssertionError(f"the publication failed on its own (exit code {code})")
        return code

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(30)
        self.process.stdout.close()


def kill_everywhere(world: World, operation: str) -> Outcome:
    """Kill ``operation`` before each of its steps and during each tool run; check the
    aftermath of every kill."""
    log = world.base / "log"
    world.reset(operation)
    log.unlink(missing_ok=True)
    zygote = Zygote(world)
    try:
        return kill_in(zygote, world, operation, log)
    finally:
        zygote.close()


def kill_in(zygote: Zygote, world: World, operation: str, log: Path) -> Outcome:
    assert zygote.run(operation, log) == 0
    outcome = Outcome(steps=log.read_text().splitlines())
    order = list(OPERATIONS)
    after = order[order.index(operation) + 1] if operation != order[-1] else "done"
    expected = contents(
        publish.Repository(RepositorySettings(root=world.state(after) / "data" / "repo"))
    )
    points = [(n, False) for n in range(1, len(outcome.steps) + 1)]
    points += [(n, True) for n, step in enumerate(outcome.steps, 1) if step.startswith("run ")]
    for n, during in points:
        step = outcome.steps[n - 1]
        where = f"killed {'while' if during else 'before'} step {n} ({step})"
        world.reset(operation)
        log.unlink(missing_ok=True)
        code = zygote.run(operation, log, kill_at=n, during=during)
        said = log.read_text() if log.exists() else ""
        if not during and code != 0 and same_step(said) != same_step(f"killed before {step}\n"):
            outcome.problems.append(f"{where}: the child counted another step: {said.strip()}")
        if code == 0:
            if during and "missed" in said:
                outcome.missed.append(where)
                continue
            outcome.problems.append(f"{where}: the child was not killed ({said.strip()})")
            continue
        outcome.kills += 1
        if during:
            tool = step.split()[1]
            outcome.caught[tool] = outcome.caught.get(tool, 0) + 1
        left = wait_until_no_tools(world.run, TOOL_GONE_WITHIN)
        for pid, comm, state in left:
            outcome.problems.append(f"{where}: {comm} (pid {pid}, state {state}) still runs")
            os.kill(pid, signal.SIGKILL)  # ours: stopped by the child's watcher
        settings = world.settings()
        publish.Repository(settings.repository).collect_garbage()
        outcome.problems += [f"{where}: {p}" for p in problems_after_gc(settings.repository.root)]
        repo = steps.repository(settings)
        OPERATIONS[operation](repo, world.run, TICKET)  # repeating the step finishes it
        if contents(repo) != expected:
            outcome.problems.append(f"{where}: repeating it did not give the expected areas")
        outcome.problems += [
            f"{where}: after repeating, {p} is writable"
            for p in served_writable(settings.repository.root)
        ]
    return outcome


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_sigkill_at_every_step_leaves_nothing_the_gc_does_not_repair(
    world: World, operation: str
) -> None:
    started = time.monotonic()
    outcome = kill_everywhere(world, operation)
    took = time.monotonic() - started

    assert outcome.problems == [], "\n".join(outcome.problems[:40])
    runs = sum(1 for s in outcome.steps if s.startswith("run "))
    assert set(outcome.caught) == set(TOOLS)  # each tool was killed mid-work at least once
    assert len(outcome.missed) <= runs // 4, outcome.missed
    assert outcome.kills == len(outcome.steps) + runs - len(outcome.missed)
    print(
        f"\n{operation}: {len(outcome.steps)} steps ({runs} tool runs), {outcome.kills} SIGKILLs "
        f"in {took:.0f} s; killed mid-run: {outcome.caught}; tool runs that ended before "
        f"the watcher saw them: {len(outcome.missed)}"
    )


WORKER = """
import sys, threading
from pathlib import Path
from repo_daemon.metadata import commands

# As the daemon runs a job: in a worker thread, not the main one.
worker = threading.Thread(
    target=commands.SubprocessRunner(), args=(["sleep", "300"],), kwargs={"cwd": Path(sys.argv[1])}
)
worker.start()
worker.join()
"""


def test_a_tool_started_from_a_worker_thread_dies_when_its_process_is_killed(
    tmp_path: Path,
) -> None:
    process = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)], cwd=ROOT)
    tool = None
    try:
        deadline = time.monotonic() + 30
        while tool is None and time.monotonic() < deadline:
            tool = next(
                (
                    p
                    for p in pids_above(process.pid)
                    if parent_of(p) == process.pid and comm_of(p) == "sleep"
                ),
                None,
            )
        assert tool is not None, "the runner never started the tool"
        process.kill()  # SIGKILL: no cleanup code runs in the process
        assert process.wait(30) == -signal.SIGKILL
        deadline = time.monotonic() + TOOL_GONE_WITHIN
        while alive(tool) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(tool), "the tool outlived the process that ran it"
    finally:
        process.kill()
        process.wait(30)
        if tool is not None and alive(tool):
            os.kill(tool, signal.SIGKILL)  # ours, orphaned: do not leave it behind


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
