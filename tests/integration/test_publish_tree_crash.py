"""The tree layout under SIGKILL: a promotion, a removal and a migration from full snapshots,
each killed just before every one of its file-system steps, leave the area serving a
complete old or new state (every file its live manifest and metadata name is there, linked to
the pool; every metadata link resolves into the live snapshot), and the next change and the
GC succeed and leave no leftovers.

Each run forks a child from this test process; an audit hook (``sys.addaudithook``) in the
child numbers every file-system step below the run directory (link, chmod, rename, symlink,
mkdir, unlink, rmdir, opening a file to write) and SIGKILLs the child before step N. One
unkilled run counts the steps. The metadata step is a small fake that writes
``rpms/repodata/repomd.xml`` listing the payload it indexes and a key at the top, so the
metadata links are exercised without the real tools (their crash test is
test_publish_crash.py's).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, fsops, manifest, names, pool, release_entries
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.release_factory import release_info

STAGE = areas.Area.stagerollout("7")
REPOS = (release_model.RepositorySpec(identifier="r", name="R", type="YUM", relative_path="rpms"),)
CHANGES = {"os.link": 1, "os.rename": 1, "os.symlink": 1, "os.chmod": 0, "os.mkdir": 0,
           "os.remove": 0, "os.rmdir": 0, "os.truncate": 0, "os.utime": 0}  # fmt: skip
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def fake_metadata(
    snapshot_dir: Path, contents: manifest.AreaManifest, *, payload_dir: Path | None = None
) -> None:
    files = "\n".join(f"{f.path} {f.sha256}" for f in contents.files())
    (snapshot_dir / "rpms" / "repodata").mkdir(parents=True, exist_ok=True)
    (snapshot_dir / "rpms" / "repodata" / "repomd.xml").write_text(files)
    (snapshot_dir / "KEY").write_text("key")


def release(scratch: Path, ticket: int) -> release_model.ReleaseInfo:
    short = f"R{ticket}"
    files = {f"rpms/{short}/p{n}.rpm": f"{short}-{n}".encode() for n in range(3)}
    files["rpms/shared.rpm"] = b"shared by every release"
    packages = []
    for path, data in files.items():
        target = scratch / short / path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        packages.append(release_model.PackageFile(path=path, size=len(data), sha256=sha))
    return release_info(short, "1.0.0", packages, repositories=REPOS)


def repository(run: Path, layout: str = "tree") -> publish.Repository:
    settings = RepositorySettings(root=run / "repo", keep_snapshots=1, area_layout=layout)
    return publish.Repository(settings, metadata=fake_metadata, lock_timeout=5)


def promote(repo: publish.Repository, run: Path) -> None:
    info = release(run / "scratch", 3)
    repo.publish_unverified(3, info, run / "scratch" / "R3")
    repo.promote_to_stagerollout(3, info, "7")


def remove(repo: publish.Repository, run: Path) -> None:
    repo.remove_release(1, release(run / "scratch", 1), "7")


OPERATIONS: dict[str, tuple[str, Callable[[publish.Repository, Path], None]]] = {
    "promotion": ("tree", promote),
    "removal": ("tree", remove),
    "migration": ("snapshots", promote),  # the area was published with full snapshots
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per starting layout, a run directory where tickets 1 and 2 are in stagerollout/7."""
    found = {}
    for layout in ("tree", "snapshots"):
        run = tmp_path_factory.mktemp(f"prepared-{layout}")
        repo = repository(run, layout)
        for ticket in (1, 2):
            info = release(run / "scratch", ticket)
            repo.publish_unverified(ticket, info, run / "scratch" / f"R{ticket}")
            repo.promote_to_stagerollout(ticket, info, "7")
        release(run / "scratch", 3)
        found[layout] = run
    return found


def run_killed(run: Path, operation: str, kill_at: int | None) -> list[str]:
    """Run ``operation`` in a forked child, SIGKILLed before its ``kill_at``-th step; the
    steps it saw (all of them when not killed)."""
    log = run / "steps.json"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            seen: list[str] = []
            prefix = str(run) + "/"

            def hook(event: str, args: tuple[Any, ...]) -> None:
                step = describe(event, args, prefix)
                if step is None:
                    return
                seen.append(step)
                if len(seen) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

            sys.addaudithook(hook)
            OPERATIONS[operation][1](repository(run, "tree"), run)
            log.write_text(json.dumps(seen))
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if kill_at is None:
        assert code == 0, f"the unkilled {operation} failed"
        return list(json.loads(log.read_text()))
    assert code in (-signal.SIGKILL, 0), f"{operation} killed at {kill_at} ended with {code}"
    return []


def describe(event: str, args: tuple[Any, ...], prefix: str) -> str | None:
    if event == "open":
        path, _, flags = args
        if not isinstance(flags, int) or not flags & WRITING:
            return None
    elif event in CHANGES:
        path = args[CHANGES[event]]
    else:
        return None
    if isinstance(path, int):
        return f"{event} <fd>"
    text = os.fsdecode(path)
    return f"{event} {text.removeprefix(prefix)}" if text.startswith(prefix) else None


def serving_problems(root: Path) -> list[str]:
    """What a reader of stagerollout/7 would trip on: a file the live manifest or metadata
    names that is missing or not the pool's inode, a metadata link that does not resolve
    into the live snapshot."""
    area = root / STAGE.path
    problems: list[str] = []
    snapshot = Path(os.path.realpath(area / manifest.MANIFEST_NAME)).parent
    if snapshot.parent.name != STAGE.key:
        return [f"the manifest resolves to {snapshot}, not a snapshot of the area"]
    full = release_entries.read_any(root, STAGE.path, snapshot)
    the_pool = pool.Pool(root)
    for f in full.files():
        try:
            st = (area / f.path).stat()
        except FileNotFoundError:
            problems.append(f"{f.path} is named but missing")
            continue
        if st.st_ino != the_pool.path(f.sha256).stat().st_ino:
            problems.append(f"{f.path} is not the pool's file")
    listed = (area / "rpms/repodata/repomd.xml").read_text().split("\n")
    if listed != [f"{f.path} {f.sha256}" for f in full.files()]:
        problems.append("the metadata names other files than the manifest")
    for link in release_entries.snapshot_links(snapshot, STAGE.path):
        if not os.path.realpath(area / link).startswith(str(snapshot) + "/"):
            problems.append(f"the metadata link {link} does not lead into the live snapshot")
    return problems


def leftovers(root: Path) -> list[str]:
    found = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            if names.SWAP in name or name.startswith((names.BUILDING, names.DELETING, ".tmp-")):
                found.append(str(Path(directory, name).relative_to(root)))
    return found


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_tree_change_killed_at_every_step_leaves_a_complete_state(
    operation: str, prepared: dict[str, Path], tmp_path: Path
) -> None:
    start = prepared[OPERATIONS[operation][0]]
    counting = tmp_path / "count"
    copy(start, counting)
    steps = run_killed(counting, operation, None)
    assert len(steps) > 10, steps
    expected = served_tickets(counting)
    old = served_tickets(start)
    failures: list[str] = []
    for n in range(1, len(steps) + 1):
        run = tmp_path / f"kill-{n}"
        copy(start, run)
        run_killed(run, operation, n)
        root = run / "repo"
        where = f"killed before step {n} ({steps[n - 1]})"
        problems = serving_problems(root)
        state = served_tickets(run)
        if state not in (old, expected):
            problems.append(f"serves tickets {state}, neither {old} nor {expected}")
        repo = repository(run, "tree")
        OPERATIONS[operation][1](repo, run)  # the next change (the retry) succeeds
        repo.collect_garbage()
        problems += serving_problems(root) + [f"left {x}" for x in leftovers(root)]
        if served_tickets(run) != expected:
            problems.append(f"after the retry serves {served_tickets(run)}, not {expected}")
        failures += [f"{where}: {p}" for p in problems]
        fsops.delete_tree(run)
    assert not failures, "\n".join(failures)


def copy(source: Path, target: Path) -> None:
    """A copy of a run directory with its hard links kept (``cp -a``)."""
    subprocess.run(["cp", "-a", "--", str(source), str(target)], check=True)


def served_tickets(run: Path) -> list[int]:
    snapshot = Path(os.path.realpath(run / "repo" / STAGE.path / manifest.MANIFEST_NAME)).parent
    full = release_entries.read_any(run / "repo", STAGE.path, snapshot)
    return sorted(r.ticket_id for r in full.releases)


def test_the_check_sees_a_missing_file_and_a_dangling_metadata_link(
    prepared: dict[str, Path], tmp_path: Path
) -> None:
    run = tmp_path / "broken"
    copy(prepared["tree"], run)
    root = run / "repo"
    assert serving_problems(root) == []
    tree = root / names.TREES_DIR / STAGE.key
    (tree / "rpms/R1/p0.rpm").unlink()
    (tree / "KEY").unlink()
    (tree / "KEY").symlink_to("../elsewhere")
    assert serving_problems(root) == [
        "rpms/R1/p0.rpm is named but missing",
        "the metadata link KEY does not lead into the live snapshot",
    ]
