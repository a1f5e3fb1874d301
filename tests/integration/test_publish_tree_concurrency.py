"""Two processes promoting into one tree-layout area at once, with the flock files (SQLite's
default) and with the PostgreSQL advisory locks of the session's real server: the metadata
snapshots are numbered consecutively, each is the one before plus exactly one release, and no
release is lost from the live area or its payload tree."""

from __future__ import annotations

import hashlib
import itertools
import os
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, db_locks, locks, manifest, names, release_entries
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.pg_server import PostgresServer
from tests.support.release_factory import release_info

AREA = areas.Area.stagerollout("7")
COUNT = 12
_names = itertools.count()


def metadata(
    snapshot_dir: Path, contents: manifest.AreaManifest, *, payload_dir: Path | None = None
) -> None:
    (snapshot_dir / "repodata").mkdir()
    (snapshot_dir / "repodata" / "list").write_text("\n".join(f.path for f in contents.files()))


@pytest.fixture(params=["flock", "postgresql"])
def lock_kind(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "flock":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"treelocks_{os.getpid()}_{next(_names)}"
    with DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=name):
        yield server.url(name)


def repository(root: Path, url: str | None) -> publish.Repository:
    settings = RepositorySettings(root=root, keep_snapshots=10_000, area_layout="tree")
    chosen: locks.Locks = (
        locks.FileLocks(root, timeout=60) if url is None
        else db_locks.DatabaseLocks(url, lease=10.0, timeout=60)
    )  # fmt: skip
    return publish.Repository(settings, metadata=metadata, area_locks=chosen)


def promote_many(root: Path, url: str | None, scratch: Path, first: int, go: int) -> None:
    os.read(go, 1)  # both children start together
    repo = repository(root, url)
    for ticket in range(first, first + COUNT):
        data = f"ticket {ticket}".encode()
        top = scratch / str(ticket)
        (top / "rpms").mkdir(parents=True)
        (top / "rpms" / f"{ticket}.rpm").write_bytes(data)
        package = release_model.PackageFile(
            path=f"rpms/{ticket}.rpm", size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        info = release_info(f"T{ticket}", "1.0.0", [package])
        repo.publish_unverified(ticket, info, top)
        repo.promote_to_stagerollout(ticket, info, "7")


def test_two_processes_promoting_into_one_tree_area_lose_nothing(
    lock_kind: str | None, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    go_read, go_write = os.pipe()
    children = []
    for first in (1000, 2000):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                promote_many(root, lock_kind, tmp_path / f"scratch-{first}", first, go_read)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    os.write(go_write, b"gg")
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

    snaps = root / ".snapshots" / AREA.key
    numbered = sorted(
        (n, p) for p in snaps.iterdir() if (n := names.snapshot_number(p.name)) is not None
    )
    assert [n for n, _ in numbered] == list(range(1, 2 * COUNT + 1))  # consecutive
    chain = [
        {r.ticket_id for r in release_entries.read_any(root, AREA.path, p).releases}
        for _, p in numbered
    ]
    assert [len(c) for c in chain] == list(range(1, 2 * COUNT + 1))
    assert all(a < b for a, b in itertools.pairwise(chain))  # one more release each time
    expected = set(range(1000, 1000 + COUNT)) | set(range(2000, 2000 + COUNT))
    assert chain[-1] == expected
    served = {p.name for p in (root / AREA.path / "rpms").iterdir() if p.suffix == ".rpm"}
    assert served == {f"{t}.rpm" for t in expected}
    listed = (root / AREA.path / "repodata" / "list").read_text().split("\n")
    assert sorted(listed) == sorted(f"rpms/{t}.rpm" for t in expected)
