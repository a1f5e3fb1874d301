"""The choice of the repository's locks from the settings, and the ``flock`` locks kept for
SQLite: one exclusive lock per area, different areas at once, the global lock shared by
publishers and exclusive for the GC, a hold that needs no verification."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bridge.secrets import Secret
from bridge.settings import model as settings_model
from repo_daemon.publish import areas, db_locks, errors, locks

STAGE = areas.Area.stagerollout("7")
OTHER = areas.Area.stagerollout("8")


def _settings(tmp_path: Path, url: str | None) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="https://rt.example.org/"),
        data_dir=tmp_path,
        database_url=Secret(url) if url else None,
        repository=settings_model.RepositorySettings(root=tmp_path / "repo", lock_lease=42),
    )


def test_sqlite_chooses_flock_files_below_the_root(tmp_path: Path) -> None:
    chosen = locks.chosen(_settings(tmp_path, None), timeout=7)
    assert isinstance(chosen, locks.FileLocks)
    assert (chosen.dir, chosen.timeout) == (tmp_path / "repo" / locks.LOCK_DIR, 7)


def test_postgresql_chooses_advisory_locks_with_the_configured_lease(tmp_path: Path) -> None:
    url = "postgresql+psycopg://bridge:pw@db.example.org:5433/rollout"
    chosen = locks.chosen(_settings(tmp_path, url), timeout=7)  # connects to nothing yet
    assert isinstance(chosen, db_locks.DatabaseLocks)
    assert (chosen.lease, chosen.timeout) == (42, 7)
    assert not (tmp_path / "repo").exists()


def test_an_area_is_held_by_one_holder_at_a_time(tmp_path: Path) -> None:
    one, two = locks.FileLocks(tmp_path, timeout=0.1), locks.FileLocks(tmp_path, timeout=0.1)
    with one.area(STAGE) as held:
        held.verify()  # an flock lasts as long as its file: nothing to ask
        busy_lock = r"\.locks/stagerollout~7\.lock"
        with pytest.raises(errors.AreaBusy, match=busy_lock) as busy, two.area(STAGE):
            pass
        assert busy.value.transient
        with two.area(OTHER):  # another area publishes meanwhile
            pass
    with two.area(STAGE):
        pass
    assert (tmp_path / ".locks" / "stagerollout~7.lock").exists()  # never deleted


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    shared = locks.FileLocks(tmp_path, timeout=0.1)
    failures: list[BaseException] = []

    def other_thread() -> None:
        try:
            with shared.area(STAGE):
                pass
        except errors.AreaBusy as exc:
            failures.append(exc)

    with shared.area(STAGE):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(failures) == 1


def test_the_global_lock_is_shared_by_publishers_and_exclusive_for_the_gc(
    tmp_path: Path,
) -> None:
    publisher, gc = locks.FileLocks(tmp_path, timeout=0.1), locks.FileLocks(tmp_path, timeout=0.1)
    with (
        publisher.area(STAGE),
        publisher.area(OTHER),  # both hold the global lock shared
        pytest.raises(errors.AreaBusy, match="global"),
        gc.everything(),
    ):
        pass
    with gc.everything() as held:
        held.verify()
        with pytest.raises(errors.AreaBusy, match="global"), publisher.area(STAGE):
            pass


def test_a_wait_backs_off_until_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(locks.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(locks.time, "sleep", sleep)
    with pytest.raises(errors.AreaBusy, match="the lock still taken after 2 s"):
        locks.poll(lambda: False, "the lock", 2.0)
    assert pauses[:6] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.25]
    assert max(pauses) == 0.25 and sum(pauses) == pytest.approx(2.0)
