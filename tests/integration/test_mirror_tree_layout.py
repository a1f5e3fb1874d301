"""Mirrors of a tree-layout area (docs/serving.md, "Mirroring an area consistently"): the shipped
``deploy/mirror/rollout-mirror`` against a real ``rsync --daemon`` with the product's rendered
rsyncd.conf, the area built by hand as the layout's spec lays it out (tests/support/tree_layout,
``Publisher`` below: add = link payload, new metadata snapshot, switch ``.meta``; remove =
switch first, then unlink), so nothing here depends on the publish core.

An rsync in front of the real one stops the script at a chosen stage (serial, snapshot copy,
payload adds, payload delete pass, before or after the transfer) so a publication lands exactly
there, or the script is killed there. After every run the mirror's live metadata is checked:
every file its ``index.json`` names is in the mirror, with its size and SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, index
from repo_daemon.publish import repository as publish
from tests.integration.test_mirror_rsync import RsyncDaemon
from tests.integration.test_rsync_access import SECRETS, SecretRsyncDaemon, listing, names
from tests.support import paths, tree_layout
from tests.support.release_factory import scratch_release

AREA = "production/7/updates"
KEY = tree_layout.area_key(AREA)
SCRIPT = paths.ROOT / "deploy" / "mirror" / "rollout-mirror"
STAGES = ("serial", "snapshot", "adds", "adds-done", "delete", "delete-done")


def _release_files(n: int) -> dict[str, bytes]:
    """Release ``n``: files in a directory of its own and in one every release shares."""
    files = {}
    for i in range(6):
        path = f"el9/x86_64/Packages/d{n}/pkg-{i}.rpm" if i % 2 else f"noarch/dist-{n}-{i}.rpm"
        files[path] = f"release {n} file {i}\n".encode() * (1 + i)
    return files


def _entry(path: str, data: bytes) -> dict[str, object]:
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class Publisher:
    """Changes a tree-layout area the way the bridge does, by hand (tests/support/tree_layout):
    add links the payload first, remove switches first and unlinks after; retention keeps
    ``keep`` snapshots besides the live one; links the live snapshot lacks go after a switch."""

    def __init__(self, root: Path, *, keep: int = 2) -> None:
        self.root = root
        self.keep = keep
        self.live: list[int] = []
        self.seq = 0
        self.links: set[str] = set()
        self.tree = tree_layout.tree_dir(root, AREA)

    def _links(self, metadata: dict[str, bytes], payload: set[str]) -> list[str]:
        dirs = {"/".join(p.split("/")[:i]) for p in payload for i in range(1, p.count("/") + 1)}
        dirs |= {
            str(p.relative_to(self.tree))
            for p in self.tree.rglob("*")
            if p.is_dir() and not p.is_symlink()
        } if self.tree.exists() else set()  # fmt: skip
        found = set()
        for path in metadata:
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                rel = "/".join(parts[:i])
                if rel not in dirs:
                    found.add(rel)
                    break
        return sorted(found)

    def _snapshot(self, payload: dict[str, bytes]) -> tuple[str, dict[str, bytes]]:
        self.seq += 1
        name = f"{self.seq:06d}-20261206T{self.seq:06d}Z"
        files = {p: d for n in self.live for p, d in _release_files(n).items()}
        repomd = "".join(f"{e['path']} {e['sha256']}\n" for e in map(_entry, files, files.values()))
        meta = {
            "el9/x86_64/repodata/repomd.xml": repomd.encode(),
            ".rollout-serial": f"{KEY}/{name}\n".encode(),
        }
        links = self._links({**meta, "index.json": b"", ".rollout-manifest.json": b""}, set(files))
        manifest = {
            "format": 2, "layout": "tree", "area": AREA, "snapshot": name,
            "created": "2026-12-06T00:00:00Z",
            "releases": [{"ticket_id": n, "files": len(_release_files(n))} for n in self.live],
            "links": links,
        }  # fmt: skip
        meta[".rollout-manifest.json"] = json.dumps(manifest).encode()
        document = {
            "format": 1, "layout": "tree", "area": AREA, "snapshot": name,
            "serial": f"{KEY}/{name}",
            "releases": [
                {"ticket_id": n, "files": [_entry(p, d) for p, d in _release_files(n).items()]}
                for n in self.live
            ],
            "metadata_files": [_entry(p, d) for p, d in sorted(meta.items())],
        }  # fmt: skip
        meta["index.json"] = json.dumps(document, indent=1).encode()
        tree_layout.build_tree_area(self.root, AREA, payload, meta, name)
        return name, meta

    def _switch(self, name: str, meta: dict[str, bytes]) -> None:
        tree_layout.switch(self.root, AREA, name)
        links = set(json.loads(meta[".rollout-manifest.json"])["links"])
        for stale in sorted(self.links - links, reverse=True):
            (self.tree / stale).unlink(missing_ok=True)
        self.links = links
        snapshots = self.root / ".snapshots" / KEY
        kept = sorted(p.name for p in snapshots.iterdir() if not p.name.startswith("."))
        for old in kept[: max(0, len(kept) - 1 - self.keep)]:
            gone = snapshots / f".deleting-{old}"
            (snapshots / old).rename(gone)
            for d, _, _ in os.walk(gone):
                Path(d).chmod(0o700)  # sealed read-only, as the bridge seals them
            shutil.rmtree(gone)

    def add(self, n: int) -> None:
        self.live.append(n)
        name, meta = self._snapshot(_release_files(n))  # payload linked before the snapshot
        self._switch(name, meta)

    def remove(self, n: int) -> None:
        self.live.remove(n)
        name, meta = self._snapshot({})
        self._switch(name, meta)  # switch first, then unlink what only n brought
        claimed = {p for m in self.live for p in _release_files(m)}
        for path in _release_files(n):
            if path not in claimed:
                (self.tree / path).unlink()
        for d, _, _ in sorted(os.walk(self.tree), key=lambda w: -len(w[0])):
            if Path(d) != self.tree and not any(Path(d).iterdir()):
                Path(d).rmdir()


class SnapshotsPublisher:
    """Releases of one file each promoted into ``AREA`` in the snapshots layout, by the
    publish core (for the tests that run both layouts)."""

    def __init__(self, tmp_path: Path) -> None:
        self.repo = publish.Repository(
            RepositorySettings(root=tmp_path / "repo"), metadata=index.write_index
        )
        self.root = self.repo.root
        self.tmp = tmp_path
        self.live: list[int] = []
        self.seq = 0
        for n in (1, 2):
            self.add(n)

    def add(self, n: int) -> None:
        scratch = self.tmp / f"scratch{n}"
        info = scratch_release(scratch, "Dist", f"{n}.0.0", {f"rpms/dist-{n}.rpm": b"x" * n})
        self.repo.publish_unverified(n, info, scratch)
        self.repo.promote_to_production(n, info, "7", "Incremental")
        self.live.append(n)
        self.seq = int(self.repo.live_snapshot(areas.Area.parse(AREA)).split("-")[0])


def check_mirror(dest: Path, *, finished: bool = True) -> tuple[int, list[int]]:
    """Every file the mirror's live ``index.json`` names is in the mirror with its size and
    SHA-256; after a run that ``finished``, nothing half made is left. Returns (snapshot
    sequence, tickets)."""
    current = dest / "current"
    document = json.loads((current / "index.json").read_bytes())
    files = [f for r in document["releases"] for f in r["files"]] + document["metadata_files"]
    for entry in files:
        data = (current / entry["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), (
            document["snapshot"],
            entry["path"],
        )
    if finished:
        assert not list(dest.glob("*.partial")) and not list(dest.glob(".trash.*"))
    return int(document["snapshot"].split("-")[0]), [r["ticket_id"] for r in document["releases"]]


class Harness:
    """Runs the shipped script through an rsync that can stop at a stage (``STAGES``)."""

    def __init__(self, tmp_path: Path, daemon: RsyncDaemon) -> None:
        self.ctl = tmp_path / "ctl"
        self.ctl.mkdir()
        self.dest = tmp_path / "mirror"
        shim = tmp_path / "bin"
        shim.mkdir()
        real = shutil.which("rsync")
        ctl = self.ctl
        (shim / "rsync").write_text(
            "#!/bin/sh\n"
            'case "$*" in *--delete*--backup*) s=delete ;; *.trees/*) s=adds ;;\n'
            "  *.snapshots/*) s=snapshot ;; *.rollout-serial*) s=serial ;; *) s=other ;; esac\n"
            "hold() {\n"
            f"  [ -e {ctl}/want-$1 ] || return 0\n"
            f"  rm -f {ctl}/want-$1; touch {ctl}/at-$1\n"
            f"  while [ ! -e {ctl}/go ]; do sleep 0.01; done; rm -f {ctl}/go\n"
            "}\n"
            "hold $s\n"
            f'{real} "$@"; rc=$?\n'
            "hold $s-done\n"
            "exit $rc\n"
        )
        (shim / "rsync").chmod(0o755)
        self.env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
        self.argv = ["sh", str(SCRIPT), daemon.url().rstrip("/"), AREA, str(self.dest)]

    def run(
        self,
        stage: str | None = None,
        action: Callable[[], None] | None = None,
        *,
        kill: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """One run; at ``stage`` do ``action`` (or after the run if it never got there) or
        kill the script there (SIGKILL to its process group)."""
        for leftover in self.ctl.iterdir():
            leftover.unlink()
        if stage:
            (self.ctl / f"want-{stage}").touch()
        process = subprocess.Popen(
            self.argv, env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        reached = False
        deadline = time.monotonic() + 60
        while stage and process.poll() is None:
            if (self.ctl / f"at-{stage}").exists():
                reached = True
                break
            assert time.monotonic() < deadline, f"the script never reached {stage}"
            time.sleep(0.01)
        if reached and kill:
            os.killpg(process.pid, signal.SIGKILL)
        elif reached and action:
            action()
        if reached and not kill:
            (self.ctl / "go").touch()
        out, err = process.communicate(timeout=120)
        if action and not reached:
            action()
        return subprocess.CompletedProcess(self.argv, process.returncode, out, err)


@pytest.fixture(
    params=[
        pytest.param(True, id="chroot", marks=pytest.mark.skipif(os.geteuid() != 0, reason="root")),
        pytest.param(False, id="no-chroot"),
    ]
)
def setup(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A tree-layout root served by a real daemon (chrooted as in production, and not)."""
    root = tmp_path / "repo"
    root.mkdir()
    with RsyncDaemon(tmp_path / "rsyncd", root, chroot=request.param) as daemon:
        yield Publisher(root), Harness(tmp_path, daemon), daemon


def test_a_tree_layout_mirror_always_names_only_files_it_has(setup) -> None:  # type: ignore[no-untyped-def]
    """24 publications (every third one removes the oldest live release), each landing at
    another stage of a mirror run; after every run every file the mirror's metadata names is
    there, the mirror never goes back, and the last run has exactly the source's releases."""
    publisher, harness, daemon = setup
    _mirror_during_publications(publisher, harness, daemon)


def test_a_mirror_of_an_area_the_publish_core_changes_names_only_files_it_has(
    tmp_path: Path,
) -> None:
    """The same 24 publications made by ``publish.Repository`` itself in the tree layout (its
    manifests, links, removal order and retention), not by hand."""
    publisher = CorePublisher(tmp_path)
    with RsyncDaemon(tmp_path / "rsyncd", publisher.root, chroot=False) as daemon:
        _mirror_during_publications(publisher, Harness(tmp_path, daemon), daemon)


class CorePublisher:
    """Releases of ``_release_files`` promoted into and removed from ``AREA`` by the publish
    core in the tree layout, with the mirror index as its metadata step."""

    def __init__(self, tmp_path: Path) -> None:
        settings = RepositorySettings(root=tmp_path / "repo", keep_snapshots=2, area_layout="tree")
        self.repo = publish.Repository(settings, metadata=index.write_index, lock_timeout=60)
        self.root = self.repo.root
        self.tmp = tmp_path
        self.live: list[int] = []
        self.seq = 0

    def _changed(self) -> None:
        live = self.repo.live_snapshot(areas.Area.parse(AREA))
        assert live is not None and self.repo.uses_tree(areas.Area.parse(AREA))
        self.seq = int(live.split("-")[0])

    def add(self, n: int) -> None:
        scratch = self.tmp / f"scratch{n}"
        info = scratch_release(scratch, f"Dist{n}", "1.0.0", _release_files(n))
        self.repo.publish_unverified(n, info, scratch)
        self.repo.promote_to_production(n, info, "7", "Incremental")
        self.live.append(n)
        self._changed()

    def remove(self, n: int) -> None:
        self.repo.remove_from(n, [areas.Area.parse(AREA)])
        self.live.remove(n)
        self._changed()


def _mirror_during_publications(publisher, harness, daemon) -> None:  # type: ignore[no-untyped-def]
    publisher.add(1)
    first = harness.run()
    assert first.returncode == 0, first.stderr
    assert (harness.dest / "current").readlink() == Path("tree")
    seen = [check_mirror(harness.dest)]
    added = 1
    outcomes = []
    for op in range(24):
        if op % 3 == 2:
            change: Callable[[], None] = lambda n=publisher.live[0]: publisher.remove(n)  # noqa: E731
        else:
            added += 1
            change = lambda n=added: publisher.add(n)  # noqa: E731
        done = harness.run(STAGES[op % len(STAGES)], change)
        outcomes.append(done.returncode)
        assert done.returncode == 0 or "run again" in done.stderr or "vanished" in done.stderr, (
            done.stderr
        )
        seen.append(check_mirror(harness.dest))
    for _ in range(3):  # a quiet source: the mirror catches up
        done = harness.run()
        assert done.returncode == 0, done.stderr
    seen.append(check_mirror(harness.dest))
    sequences = [s for s, _ in seen]
    assert sequences == sorted(sequences), sequences
    assert seen[-1] == (publisher.seq, publisher.live)
    on_disk = {
        str(p.relative_to(harness.dest / "tree"))
        for p in (harness.dest / "tree").rglob("*")
        if p.is_file() and not p.is_symlink() and ".meta" not in p.parts
    }
    assert on_disk == {p for n in publisher.live for p in _release_files(n)}  # no leftovers
    kept = {p.name for p in harness.dest.iterdir() if p.is_dir() and not p.is_symlink()}
    assert len(kept) <= 3, kept  # tree, the live metadata copy and the previous one
    assert "refusing" not in daemon.log(), daemon.log()
    print(f"{len(outcomes)} runs during publications, exit codes {outcomes}")


@pytest.mark.parametrize("stage", ["snapshot-done", "adds-done", "delete"])
def test_a_mirror_killed_between_stages_stays_consistent_and_the_next_run_completes(
    setup,  # type: ignore[no-untyped-def]
    stage: str,
) -> None:
    publisher, harness, _ = setup
    for n in (1, 2, 3):
        publisher.add(n)
    assert harness.run().returncode == 0
    publisher.remove(2)
    publisher.add(4)
    killed = harness.run(stage, kill=True)
    assert killed.returncode != 0
    sequence, tickets = check_mirror(harness.dest, finished=False)
    if stage != "delete":
        assert tickets == [1, 2, 3]  # not switched: the old metadata, all its files
    again = harness.run()
    assert again.returncode == 0, again.stderr
    assert check_mirror(harness.dest) == (publisher.seq, [1, 3, 4])
    assert sequence <= publisher.seq


def test_a_run_killed_after_a_delete_pass_that_raced_a_removal_is_repaired_by_the_next(
    setup,  # type: ignore[no-untyped-def]
) -> None:
    """The one window a mirror can name a missing file: the source removes a release while
    the delete pass runs and the script dies before it notices. Its set-aside files come back
    at the start of the next run, before anything else."""
    publisher, harness, _ = setup
    for n in (1, 2):
        publisher.add(n)
    assert harness.run().returncode == 0
    publisher.add(3)
    (harness.ctl / "want-delete").touch()
    process = subprocess.Popen(harness.argv, env=harness.env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (harness.ctl / "at-delete").exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        publisher.remove(1)  # the mirror just switched to a snapshot naming release 1
        (harness.ctl / "want-delete-done").touch()
        (harness.ctl / "go").touch()
        while not (harness.ctl / "at-delete-done").exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    trash = list(harness.dest.glob(".trash.*"))
    assert len(trash) == 1 and any(trash[0].rglob("dist-1-*.rpm"))
    for leftover in harness.ctl.iterdir():
        leftover.unlink()
    again = subprocess.run(harness.argv, env=harness.env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert check_mirror(harness.dest) == (publisher.seq, [2, 3])


def test_a_mirror_expecting_the_snapshots_layout_refuses_a_tree_layout_source(setup) -> None:  # type: ignore[no-untyped-def]
    publisher, harness, _ = setup
    publisher.add(1)
    refused = harness.run(env={"ROLLOUT_MIRROR_LAYOUT": "snapshots"})
    assert refused.returncode == 1
    assert "is in the tree layout at the source, expected snapshots" in refused.stderr
    assert sorted(p.name for p in harness.dest.iterdir()) == [".serial.new"]  # nothing copied


def test_a_source_whose_index_and_manifest_disagree_on_the_layout_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    """A snapshot without payload that does not say so in its manifest is never served."""
    publisher, harness, _ = setup
    publisher.add(1)
    snap = next((publisher.root / ".snapshots" / KEY).iterdir())
    manifest = snap / ".rollout-manifest.json"
    snap.chmod(0o755)
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace('"layout": "tree", ', ""))
    refused = harness.run()
    assert refused.returncode == 1
    assert "disagree on the layout" in refused.stderr
    assert not (harness.dest / "current").exists()


def _one_release_in_production(tmp_path: Path) -> publish.Repository:
    """A snapshots-layout repository below ``tmp_path/repo`` with one one-file release in
    ``AREA``, by the publish core."""
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "repo"), metadata=index.write_index
    )
    scratch = tmp_path / "scratch"
    info = scratch_release(scratch, "Dist", "1.0.0", {"rpms/dist-1.0.0.rpm": b"one"})
    repo.publish_unverified(1, info, scratch)
    repo.promote_to_production(1, info, "7", "Incremental")
    return repo


def test_a_mirror_follows_an_area_migrated_from_snapshots_to_tree_and_refuses_by_request(
    tmp_path: Path,
) -> None:
    """The same script copies a snapshots-layout area as before; when the area moves to the
    tree layout, ``current`` moves from the full copy to ``tree`` in one rename. A mirror that
    asks for the tree layout refuses a snapshots-layout source."""
    repo = _one_release_in_production(tmp_path)
    with RsyncDaemon(tmp_path / "rsyncd", repo.root, chroot=os.geteuid() == 0) as daemon:
        harness = Harness(tmp_path, daemon)
        wrong = harness.run(env={"ROLLOUT_MIRROR_LAYOUT": "tree"})
        assert wrong.returncode == 1 and "expected tree" in wrong.stderr
        first = harness.run()
        assert first.returncode == 0, first.stderr
        full = (harness.dest / "current").readlink()
        assert check_mirror(harness.dest)[1] == [1]
        # The source's area moves to the tree layout (by hand: the area link is swapped).
        (repo.root / AREA).unlink()
        publisher = Publisher(repo.root)
        publisher.seq = 100
        publisher.add(7)
        moved = harness.run()
        assert moved.returncode == 0, moved.stderr
        assert (harness.dest / "current").readlink() == Path("tree")
        assert check_mirror(harness.dest) == (101, [7])
        assert (harness.dest / full).is_dir()  # the previous copy, for downloads in flight
        # And back (as a migration to snapshots or a rollback to the kept full snapshot does):
        # the area link points at the full snapshot again.
        link = repo.root / AREA
        swap = link.with_name("updates.swap-0a1b2c3d")
        swap.symlink_to(f"../../.snapshots/{KEY}/{full}")
        swap.replace(link)
        back = harness.run()
        assert back.returncode == 0, back.stderr
        assert (harness.dest / "current").readlink() == full
        assert check_mirror(harness.dest)[1] == [1]
        assert (harness.dest / "tree").is_dir()  # kept one run for downloads in flight
        assert harness.run().returncode == 0  # nothing new
        publisher.add(8)  # tree layout once more (.meta switched, then the area link)
        swap.symlink_to(f"../../.trees/{KEY}")
        swap.replace(link)
        assert harness.run().returncode == 0
        assert check_mirror(harness.dest) == (102, [7, 8])


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to the nobody account")
@pytest.mark.parametrize("layout", ["tree", "snapshots"])
def test_a_mirror_run_by_an_unprivileged_account_removes_its_old_copies(
    tmp_path: Path, layout: str
) -> None:
    """The bridge seals snapshots read-only (directories 0555) and ``rsync -a`` keeps modes: a
    mirror account that is not root could not delete its old copies (nor a failed partial
    one) unless it makes their directories writable first (the script's ``remove``)."""
    (tmp_path / "repo").mkdir()
    publisher: Publisher | SnapshotsPublisher
    if layout == "tree":
        publisher = Publisher(tmp_path / "repo")
        for n in (1, 2):
            publisher.add(n)
    else:
        publisher = SnapshotsPublisher(tmp_path)
    mirror_home = Path(tempfile.mkdtemp(prefix="h-mirror-nobody-"))  # reachable by nobody
    try:
        mirror_home.chmod(0o755)
        dest = mirror_home / "mirror"
        dest.mkdir()
        shutil.chown(dest, "nobody", "nogroup")
        with RsyncDaemon(tmp_path / "rsyncd", publisher.root, chroot=True) as daemon:
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                    "sh", str(SCRIPT), daemon.url().rstrip("/"), AREA, str(dest)]  # fmt: skip
            for step in range(4):
                done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, (step, done.stderr)
                assert check_mirror(dest) == (publisher.seq, publisher.live)
                if step % 2 and isinstance(publisher, Publisher):
                    publisher.remove(publisher.live[0])
                else:
                    publisher.add(3 + step)
        copies = [p.name for p in dest.iterdir() if p.is_dir() and not p.is_symlink()]
        assert len(copies) == (3 if layout == "tree" else 2), copies  # (tree,) live, previous
    finally:
        shutil.rmtree(mirror_home)


def test_a_copy_of_the_previous_script_never_serves_a_tree_layout_area(tmp_path: Path) -> None:
    """The script sites ran before the tree layout (fixtures/rollout_mirror_snapshots_only.sh)
    cannot fetch a tree-layout area's serial (a link): a fresh mirror fails, an existing one
    keeps its last full copy and exits 0 (frozen: docs/serving.md says to update first)."""
    old_script = paths.ROOT / "fixtures" / "rollout_mirror_snapshots_only.sh"
    repo = _one_release_in_production(tmp_path)
    with RsyncDaemon(tmp_path / "rsyncd", repo.root, chroot=os.geteuid() == 0) as daemon:

        def old(dest: Path) -> subprocess.CompletedProcess[str]:
            argv = ["sh", str(old_script), daemon.url().rstrip("/"), AREA, str(dest)]
            return subprocess.run(argv, capture_output=True, text=True, timeout=120)

        assert old(tmp_path / "mirror").returncode == 0
        full = (tmp_path / "mirror/current").readlink()
        (repo.root / AREA).unlink()
        Publisher(repo.root).add(7)  # the area moves to the tree layout
        frozen = old(tmp_path / "mirror")
        assert frozen.returncode == 0, frozen.stderr
        assert (tmp_path / "mirror/current").readlink() == full
        assert check_mirror(tmp_path / "mirror")[1] == [1]
        fresh = old(tmp_path / "fresh")
        assert fresh.returncode != 0
        assert ".serial.new" in fresh.stderr and not (tmp_path / "fresh/current").exists()


def test_the_rsync_module_offers_the_trees_and_hides_their_half_made_names(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    Publisher(root).add(1)
    staged = tree_layout.sample_metadata("stagerollout/7", "000001-x", repomd=b"<repomd/>")
    tree_layout.build_tree_area(
        root, "stagerollout/7", {"el9/x86_64/Packages/s.rpm": b"staged"}, staged, "000001-x"
    )
    tree = tree_layout.tree_dir(root, AREA)
    (tree / ".meta.swap-0a1b2c3d").symlink_to("../../.snapshots")
    (root / ".releases").mkdir()
    (root / ".releases" / f"{'0' * 64}.json").write_text("{}")
    with SecretRsyncDaemon(tmp_path / "rsyncd", root, chroot=os.geteuid() == 0) as daemon:
        public = daemon.module_url("repo")
        assert names(listing(public)) == {".snapshots", ".trees", "production"}
        assert names(listing(public + ".trees/")) == {KEY}
        assert names(listing(public + f".trees/{KEY}/")) == {
            ".meta", ".rollout-manifest.json", ".rollout-serial", "el9", "index.json", "noarch",
        }  # fmt: skip
        assert names(listing(public + f"{AREA}/el9/x86_64/repodata/")) == {"repomd.xml"}
        for hidden in (".releases/", f".trees/{KEY}/.meta.swap-0a1b2c3d/", ".trees/stagerollout~7/",
                       "stagerollout/7/", ".pool/"):  # fmt: skip
            answer = listing(public + hidden)
            assert answer.returncode != 0 or "rpm" not in answer.stdout, hidden
        copy = tmp_path / "serial"
        fetched = subprocess.run(
            ["rsync", "-q", f"{public}{AREA}/.meta/.rollout-serial", str(copy)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr
        assert copy.read_text() == f"{KEY}/000001-20261206T000001Z\n"
        early = daemon.module_url("repo-stagerollout", user="early-adopters")
        secret = SECRETS["early-adopters"]
        assert names(listing(early + ".trees/", secret)) == {"stagerollout~7"}
        assert names(listing(early + "stagerollout/7/el9/x86_64/Packages/", secret)) == {"s.rpm"}
        assert listing(early + f".trees/{KEY}/", secret).returncode != 0
