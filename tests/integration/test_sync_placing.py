"""Only new bytes cross the wire: a release's files already in the repository's pool are placed
in scratch from it (hard links) before the sync, and rsync (a real daemon), SFTP (a real sshd)
and HTTPS fetch only the rest; the pool stays read-only and unchanged through the sync and the
publication."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import index
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from repo_daemon.sync import verify
from tests.support.https_server import HttpsServer
from tests.support.release_factory import release_info
from tests.support.rsync_server import RsyncDaemon
from tests.support.sftp_server import SftpServer, sshd_missing

OLD = {  # the files of release 1.0.0, pooled by its publication
    "debs/a_1.0_all.deb": os.urandom(300_000),
    "debs/b_1.0_all.deb": os.urandom(200_000),
    "rpms/noarch/c-1.0-1.noarch.rpm": os.urandom(250_000),
}
NEW_FILE = "rpms/noarch/d-1.1-1.noarch.rpm"


def _packages(files: dict[str, bytes]) -> list[release_model.PackageFile]:
    return [
        release_model.PackageFile(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest())
        for p, d in files.items()
    ]


@dataclass
class Setup:
    repo: publish.Repository
    provider: Path  # the provider's tree of release 1.1.0
    files: dict[str, bytes]  # release 1.1.0: OLD + one new file
    packages: list[release_model.PackageFile]

    def pooled(self, path: str) -> Path:
        return Path(self.repo.pool.file(hashlib.sha256(self.files[path]).hexdigest()))


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """A repository that published release 1.0.0 (its files are in the pool), and the provider
    tree of release 1.1.0: the same three files (other modification times) and a new one."""
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "repo"), metadata=index.write_index
    )
    first = tmp_path / "scratch-1.0.0"
    _write(first, OLD)
    repo.publish_unverified(1, release_info("umd", "1.0.0", _packages(OLD)), first)
    files = {**OLD, NEW_FILE: os.urandom(100_000)}
    provider = tmp_path / "provider" / "umd-1.1.0"
    _write(provider, files)
    for rel in OLD:  # the provider's copies are newer than the pool's
        os.utime(provider / rel, (time.time() + 3600, time.time() + 3600))
    return Setup(repo=repo, provider=provider, files=files, packages=_packages(files))


def _identity(path: Path) -> tuple[int, int, int, int, int]:
    st = path.lstat()
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns)


def _pool_state(setup: Setup) -> dict[str, tuple[tuple[int, int, int, int, int], bytes]]:
    return {rel: (_identity(setup.pooled(rel)), setup.pooled(rel).read_bytes()) for rel in OLD}


_SENT = re.compile(r"sent (\d+) bytes\s+received \d+ bytes\s+total size (\d+)")


def _sent_by_daemon(daemon: RsyncDaemon, connections: int) -> list[int]:
    """The bytes the rsync daemon says it sent, per connection (its log), once ``connections``
    connections are logged."""
    deadline = time.monotonic() + 10
    while True:
        text = daemon.log_file.read_text() if daemon.log_file.exists() else ""
        found = [int(m[1]) for m in _SENT.finditer(text)]
        if len(found) >= connections or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def daemon(tmp_path: Path, setup: Setup) -> Iterator[RsyncDaemon]:
    with RsyncDaemon(tmp_path / "rsyncd", {"rel": setup.provider}) as server:
        yield server


def test_rsync_transfers_only_the_files_the_pool_lacks(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon
) -> None:
    before = _pool_state(setup)
    dest = tmp_path / "scratch-1.1.0"
    result = sync.sync_and_verify(
        "rsync", daemon.url("rel"), dest, setup.packages, pool=setup.repo.pool
    )
    new_size = len(setup.files[NEW_FILE])
    assert (result.files, result.bytes) == (4, sum(len(d) for d in setup.files.values()))
    assert (result.placed_files, result.placed_bytes) == (3, sum(len(d) for d in OLD.values()))
    assert (result.transferred_files, result.transferred_bytes) == (1, new_size)
    # The daemon's own count: the new file's bytes and rsync's protocol, not the placed ones.
    (sent,) = _sent_by_daemon(daemon, 1)
    assert new_size <= sent < new_size + 20_000
    for rel in OLD:  # placed: the pool's inode, untouched (mode, time, bytes)
        assert (dest / rel).stat().st_ino == setup.pooled(rel).stat().st_ino
    assert _pool_state(setup) == before
    assert (dest / NEW_FILE).read_bytes() == setup.files[NEW_FILE]

    # The publication finds them "already pooled" and leaves the pool as it was.
    area = setup.repo.publish_unverified(2, release_info("umd", "1.1.0", setup.packages), dest)
    assert area.changed
    assert _pool_state(setup) == before
    for rel in OLD:
        assert stat_mode(setup.pooled(rel)) == 0o444
    assert stat_mode(setup.pooled(NEW_FILE)) == 0o444


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_without_a_pool_everything_is_transferred(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon
) -> None:
    result = sync.sync_and_verify("rsync", daemon.url("rel"), tmp_path / "d", setup.packages)
    assert (result.placed_files, result.transferred_files) == (0, 4)
    (sent,) = _sent_by_daemon(daemon, 1)
    assert sent >= sum(len(d) for d in setup.files.values())


def test_a_differing_provider_file_is_refused_although_others_were_placed(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon
) -> None:
    new = bytearray(setup.files[NEW_FILE])
    new[0] ^= 0xFF  # same size, other bytes than release.xml declares
    (setup.provider / NEW_FILE).write_bytes(bytes(new))
    with pytest.raises(verify.ChecksumMismatch) as caught:
        sync.sync_and_verify(
            "rsync", daemon.url("rel"), tmp_path / "d", setup.packages, pool=setup.repo.pool
        )
    assert [(p.kind, p.path) for p in caught.value.problems] == [
        (verify.ProblemKind.WRONG_SHA256, NEW_FILE)
    ]


def test_a_pooled_file_whose_provider_copy_differs_is_taken_from_the_pool(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon
) -> None:
    """The declaration is the promise: a file release.xml declares with a SHA-256 the pool
    holds is the pool's bytes, whatever the provider's copy is (it is not fetched)."""
    rel = "debs/a_1.0_all.deb"
    (setup.provider / rel).write_bytes(b"something else entirely")
    before = _pool_state(setup)
    dest = tmp_path / "d"
    result = sync.sync_and_verify(
        "rsync", daemon.url("rel"), dest, setup.packages, pool=setup.repo.pool
    )
    assert result.placed_files == 3
    assert (dest / rel).read_bytes() == OLD[rel]
    assert _pool_state(setup) == before


def test_extra_provider_files_and_symlinks_are_still_refused_when_files_were_placed(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon
) -> None:
    (setup.provider / "debs" / "junk.txt").write_text("not in release.xml")
    with pytest.raises(verify.ChecksumMismatch) as caught:
        sync.sync_and_verify(
            "rsync", daemon.url("rel"), tmp_path / "d", setup.packages, pool=setup.repo.pool
        )
    assert [(p.kind, p.path) for p in caught.value.problems] == [
        (verify.ProblemKind.EXTRA, "debs/junk.txt")
    ]
    (setup.provider / "debs" / "junk.txt").unlink()
    (setup.provider / "debs" / "passwd.deb").symlink_to("/etc/passwd")
    from repo_daemon.sync import errors as sync_errors

    with pytest.raises(sync_errors.SyncRefused):
        sync.sync_and_verify(
            "rsync", daemon.url("rel"), tmp_path / "e", setup.packages, pool=setup.repo.pool
        )


def test_a_resumed_sync_keeps_the_placed_files_and_the_pool_intact(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon
) -> None:
    """An earlier attempt's download of a pooled file is replaced by the pool's link; a
    second sync into the same scratch places again and changes nothing in the pool."""
    dest = tmp_path / "d"
    rel = "debs/b_1.0_all.deb"
    (dest / "debs").mkdir(parents=True)
    (dest / rel).write_bytes(OLD[rel])  # an earlier attempt's copy, its own inode
    before = _pool_state(setup)
    for _attempt in range(2):
        result = sync.sync_and_verify(
            "rsync", daemon.url("rel"), dest, setup.packages, pool=setup.repo.pool
        )
        assert result.placed_files == 3
        assert (dest / rel).stat().st_ino == setup.pooled(rel).stat().st_ino
    assert _pool_state(setup) == before


def test_sftp_skips_placed_files(tmp_path: Path, setup: Setup) -> None:
    reason = sshd_missing()
    assert reason is None, f"{reason}: apt-get install openssh-server"
    rel = "debs/a_1.0_all.deb"
    other = bytes(len(OLD[rel]))  # same size, other bytes, newer: a download would show
    (setup.provider / rel).write_bytes(other)
    before = _pool_state(setup)
    with SftpServer(tmp_path / "sshd") as server:
        options = sync_records.SyncOptions(
            sftp_key_file=server.client_key,
            sftp_known_hosts=server.known_hosts,
            connect_timeout=10.0,
        )
        dest = tmp_path / "d"
        result = sync.sync_and_verify(
            "sftp", server.url(setup.provider), dest, setup.packages,
            options=options, pool=setup.repo.pool,
        )  # fmt: skip
    assert (result.placed_files, result.transferred_files) == (3, 1)
    for placed in OLD:
        assert (dest / placed).stat().st_ino == setup.pooled(placed).stat().st_ino
    assert (dest / NEW_FILE).read_bytes() == setup.files[NEW_FILE]
    assert _pool_state(setup) == before


def test_https_skips_placed_files(tmp_path: Path, setup: Setup) -> None:
    """The server no longer has the pooled files (it would answer 404): the sync succeeds."""
    served = tmp_path / "served"
    shutil.copytree(setup.provider, served)
    for rel in OLD:
        (served / rel).unlink()
    before = _pool_state(setup)
    with HttpsServer(tmp_path / "https", served) as server:
        dest = tmp_path / "d"
        result = sync.sync_and_verify(
            "https", server.url + "/", dest, setup.packages,
            options=sync_records.SyncOptions(https_ca_file=server.ca.file),
            pool=setup.repo.pool,
        )  # fmt: skip
    assert (result.placed_files, result.transferred_files) == (3, 1)
    assert _pool_state(setup) == before


ODD_NAMES = ["debs/x[1]_1.0_all.deb", "debs/*_1.0_all.deb", "debs/a?b[c_1.0_all.deb",
             "debs/ trailing space .deb", "debs/#hash.deb", "debs/;semi.deb"]  # fmt: skip


def test_names_with_wildcards_and_spaces_are_excluded_exactly(tmp_path: Path) -> None:
    """rsync's exclude patterns match each placed name and nothing else, even names with
    wildcard characters or spaces: each placed file stays the pool's inode although the
    provider's copy is newer (rsync would fetch it again), and the unplaced neighbours a
    wildcard would match still come."""
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "repo"), metadata=index.write_index
    )
    pooled = {name: os.urandom(1000 + i) for i, name in enumerate(ODD_NAMES)}
    first = tmp_path / "scratch-1"
    _write(first, pooled)
    repo.publish_unverified(1, release_info("odd", "1.0.0", _packages(pooled)), first)
    provider = tmp_path / "provider"
    files = {**pooled, "debs/x1_1.0_all.deb": os.urandom(500), "debs/ab_1.0_all.deb": b"n"}
    _write(provider, files)
    for name in ODD_NAMES:  # newer than the pool's: rsync would fetch them again
        os.utime(provider / name, (time.time() + 3600, time.time() + 3600))
    before = {
        n: _identity(Path(repo.pool.file(hashlib.sha256(d).hexdigest()))) for n, d in pooled.items()
    }
    with RsyncDaemon(tmp_path / "rsyncd", {"rel": provider}) as daemon:
        dest = tmp_path / "d"
        result = sync.sync_and_verify(
            "rsync", daemon.url("rel"), dest, _packages(files), pool=repo.pool
        )
    assert (result.placed_files, result.transferred_files) == (len(ODD_NAMES), 2)
    after = {
        n: _identity(Path(repo.pool.file(hashlib.sha256(d).hexdigest()))) for n, d in pooled.items()
    }
    assert after == before
    for name, data in pooled.items():
        pool_file = Path(repo.pool.file(hashlib.sha256(data).hexdigest()))
        assert (dest / name).stat().st_ino == pool_file.stat().st_ino, name
    assert (dest / "debs/ab_1.0_all.deb").read_bytes() == b"n"
    assert stat_mode(dest / "debs/x1_1.0_all.deb") == 0o644


def test_the_daemons_sync_step_places_from_its_repositorys_pool(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon
) -> None:
    """``RepositoryWork.sync_packages`` (what the workflow runs at Submitted → Unverified)
    passes the repository's pool: the step's detail says what was placed and transferred."""
    from typing import Any, cast

    from bridge import records
    from bridge.settings import model as settings_model
    from repo_daemon.workflow import steps
    from repo_daemon.workflow.gather import TicketView

    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt.test/"),
        data_dir=tmp_path / "data",
        repository=settings_model.RepositorySettings(
            root=setup.repo.root, sync_hosts=(settings_model.SyncHost(host="127.0.0.1"),)
        ),
    )
    work = steps.RepositoryWork(settings, cast(Any, None), setup.repo)
    fields = {"RolloutProgress": "Submitted", "Sync-Protocol": "rsync",
              "Sync-URL": daemon.url("rel")}  # fmt: skip
    view = TicketView.of(
        records.Ticket(id=2, queue="sw-rel", subject="umd 1.1.0", status="open",
                       custom_fields={k: (v,) for k, v in fields.items()})
    )  # fmt: skip
    step = work.sync_packages(view, release_info("umd", "1.1.0", setup.packages))
    new_size = len(setup.files[NEW_FILE])
    old_size = sum(len(d) for d in OLD.values())
    assert step.detail.endswith(
        f"(3 files, {old_size} bytes already in the pool; 1 file, {new_size} bytes transferred)"
    )
    assert (work.scratch(2) / "debs/a_1.0_all.deb").stat().st_ino == setup.pooled(
        "debs/a_1.0_all.deb"
    ).stat().st_ino


def test_sync_and_verify_walks_scratch_once(
    tmp_path: Path, setup: Setup, daemon: RsyncDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk that checks the tree after the transfer is the one verification checks
    against (``SyncResult.listing``): scratch is walked once, and the release still passes."""
    from repo_daemon.sync import tree as tree_walk

    walked: list[Path] = []
    real_walk = tree_walk.walk

    def counting(top: Path) -> tree_walk.Listing:
        walked.append(top)
        return real_walk(top)

    monkeypatch.setattr(tree_walk, "walk", counting)
    dest = tmp_path / "d"
    result = sync.sync_and_verify(
        "rsync", daemon.url("rel"), dest, setup.packages, pool=setup.repo.pool
    )
    assert walked == [dest]
    assert result.listing is not None
    assert {e.path for e in result.listing.entries if not e.is_dir} == set(setup.files)
