"""Readers never see a partial tree, and writers of one area are serialised, on the real file
system: a reader thread walks an area the way a web server or mirror does while releases are
promoted into it, and two processes publish into one area at the same time."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, manifest, names
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support import paths
from tests.support.release_factory import scratch_release

ROOT = paths.ROOT
RELEASES = 50
FILES_PER_RELEASE = 200


def _release(scratch: Path, short: str, version: str, files: int) -> release_model.ReleaseInfo:
    """A release whose every file says which release and path it belongs to."""
    contents = {}
    for i in range(files):
        path = (
            f"rpms/{short}/{version}/pkg-{i:04d}.rpm" if i % 2 else f"noarch/{short}-{version}-{i}"
        )
        contents[path] = f"{short} {version} {path}\n".encode()
    return scratch_release(scratch, short, version, contents)


@dataclass
class ReaderLog:
    passes: int = 0
    overtaken: int = 0  # the snapshot being read was retired by retention mid-pass
    empty: int = 0  # the area did not exist yet
    releases_seen: list[int] = field(default_factory=list)
    snapshots_seen: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _read_pass(area: Path, log: ReaderLog) -> None:
    """One pass as a client makes it: resolve the area once, then list and read below it."""
    snapshot = Path(os.path.realpath(area))
    if snapshot == area or not snapshot.exists():
        log.empty += 1
        return
    try:
        document = json.loads((snapshot / manifest.MANIFEST_NAME).read_bytes())
        expected = {f["path"]: f["sha256"] for f in document["files"]}
        versions = {r["version"] for r in document["releases"]}
        listed = {
            os.path.relpath(f"{d}/{name}", snapshot)
            for d, _, names in os.walk(snapshot)
            for name in names
            if name != manifest.MANIFEST_NAME
        }
        problems = []
        if listed != set(expected):
            problems.append(
                f"{snapshot.name}: {len(listed - set(expected))} files not in its manifest, "
                f"{len(set(expected) - listed)} missing"
            )
        for path, sha in expected.items():
            data = (snapshot / path).read_bytes()
            if hashlib.sha256(data).hexdigest() != sha:
                problems.append(f"{snapshot.name}: {path} has other bytes")
            if data.split()[1].decode() not in versions:
                problems.append(f"{snapshot.name}: {path} belongs to another snapshot's release")
    except FileNotFoundError:
        if not snapshot.exists():  # retention renames a snapshot away before deleting it
            log.overtaken += 1
            return
        raise
    if problems and not snapshot.exists():
        log.overtaken += 1
        return
    log.problems.extend(problems)
    log.passes += 1
    log.releases_seen.append(len(versions))
    log.snapshots_seen.append(names.snapshot_number(snapshot.name) or -1)


def test_readers_never_see_a_partial_tree(tmp_path: Path) -> None:
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "repo", keep_snapshots=2), lock_timeout=60
    )
    releases = []
    for n in range(1, RELEASES + 1):
        scratch = tmp_path / "scratch" / str(n)
        info = _release(scratch, "Dist", f"1.{n}.0", FILES_PER_RELEASE)
        repo.publish_unverified(n, info, scratch)
        releases.append((n, info))
    area = repo.root / "production/7/updates"
    log = ReaderLog()
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                _read_pass(area, log)
        except Exception as exc:  # reported below, not swallowed
            log.problems.append(f"reader crashed: {exc!r}")

    thread = threading.Thread(target=reader, name="reader")
    thread.start()
    started = time.monotonic()
    try:
        for n, info in releases:
            repo.promote_to_production(n, info, "7", "Incremental")
            time.sleep(0.005)  # let the reader in between publications too
    finally:
        stop.set()
        thread.join(timeout=60)
    took = time.monotonic() - started

    assert log.problems == []
    assert log.passes >= 20, (log, took)
    assert log.snapshots_seen == sorted(log.snapshots_seen)  # never an older one after a newer
    assert log.releases_seen == sorted(log.releases_seen)
    final = repo.manifest(areas.Area.parse("production/7/updates"))
    assert final is not None and len(final.releases) == RELEASES
    assert len(final.files()) == RELEASES * FILES_PER_RELEASE
    _read_pass(area, log)
    assert log.problems == [] and log.releases_seen[-1] == RELEASES
    # retention: the live snapshot and the two before it
    assert len(list((repo.root / ".snapshots/production~7~updates").iterdir())) == 3
    print(
        f"\n{RELEASES} promotions in {took:.1f} s; reader: {log.passes} complete passes, "
        f"{log.overtaken} overtaken by retention, {log.empty} before the first publication"
    )


CHILD = """
import json, sys, time
from pathlib import Path
from bridge.settings.model import RepositorySettings
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model

root, events, spec = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
info = release_model.ReleaseInfo(**{
    **spec["info"],
    "iso_date": __import__("datetime").date.fromisoformat(spec["info"]["iso_date"]),
    "keywords": (), "documentation_links": (), "repositories": (),
    "packages": tuple(release_model.PackageFile(**p) for p in spec["info"]["packages"]),
})

def metadata(snapshot, area):
    with events.open("a") as out:
        out.write(f"start {spec['ticket']} {time.monotonic()}\\n")
    time.sleep(0.5)  # a slow metadata step: the other process must wait for the lock
    with events.open("a") as out:
        out.write(f"end {spec['ticket']} {time.monotonic()}\\n")

go = float(spec["go"])
while time.time() < go:
    time.sleep(0.001)
repo = publish.Repository(RepositorySettings(root=root), metadata=metadata, lock_timeout=30)
print(repo.promote_to_stagerollout(spec["ticket"], info, "7").snapshot)
"""


def test_two_processes_publishing_into_one_area_are_serialised(tmp_path: Path) -> None:
    settings = RepositorySettings(root=tmp_path / "repo")
    repo = publish.Repository(settings)
    events = tmp_path / "events"
    go = time.time() + 1.5  # both children start promoting at the same moment
    children = []
    for ticket in (1, 2):
        scratch = tmp_path / "scratch" / str(ticket)
        info = _release(scratch, f"Dist{ticket}", "1.0.0", 20)
        repo.publish_unverified(ticket, info, scratch)
        raw = {
            k: v
            for k, v in vars(info).items()
            if k not in ("keywords", "documentation_links", "repositories", "packages")
        }
        raw["iso_date"] = info.iso_date.isoformat()
        raw["packages"] = [vars(p) for p in info.packages]
        spec = json.dumps({"ticket": ticket, "go": go, "info": raw})
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(settings.root), str(events), spec],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs

    found = repo.manifest(areas.Area.parse("stagerollout/7"))
    assert found is not None
    assert sorted(r.ticket_id for r in found.releases) == [1, 2]
    assert len(found.files()) == 40
    lines = [line.split() for line in events.read_text().splitlines()]
    assert [kind for kind, _, _ in lines] == ["start", "end", "start", "end"]
    first_end, second_start = float(lines[1][2]), float(lines[2][2])
    assert second_start >= first_end
    assert sorted(out.strip() for out, _ in outputs) == sorted(
        p.name for p in (repo.root / ".snapshots/stagerollout~7").iterdir()
    )
