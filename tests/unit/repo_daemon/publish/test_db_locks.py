"""The advisory lock keys of the repository's PostgreSQL locks and the lock connection's
parameters (pure: nothing connects)."""

from __future__ import annotations

import hashlib

import pytest

from bridge.store import database, event_log
from repo_daemon.publish import areas, db_locks


def test_a_key_is_stable_across_processes_and_versions() -> None:
    # Pinned: another host (or a newer bridge) must compute the very same key.
    assert db_locks.area_lock_key(areas.Area.stagerollout("7")) == 0x524C164404C585C7
    digest = hashlib.sha256(b"production~UMD-5~updates").hexdigest()
    key = db_locks.area_lock_key(areas.Area.parse("production/UMD-5/updates"))
    assert f"{key:016x}" == "524c" + digest[:12]


@pytest.mark.parametrize(
    "path",
    ["stagerollout/7", "unverified/Demo/1.0.0", "production/UMD-5/base", "production/CAs"],
)
def test_every_key_lies_in_the_repository_namespace(path: str) -> None:
    key = db_locks.area_lock_key(areas.Area.parse(path))
    assert key >> 48 == db_locks.NAMESPACE == 0x524C
    assert 0 < key < 2**63  # a positive PostgreSQL bigint


def test_keys_cannot_meet_the_stores_advisory_locks() -> None:
    # bridge.store's own advisory keys are below 2**32; every repository key is above 2**62.
    for store_key in (database._MIGRATION_LOCK, event_log.APPEND_LOCK):
        assert 0 <= store_key < 2**32
    assert db_locks.lock_key("") >= db_locks.NAMESPACE << 48 > 2**62


def test_different_areas_and_the_global_lock_have_different_keys() -> None:
    paths = [f"unverified/Demo{i}/1.0.{j}" for i in range(100) for j in range(10)]
    keys = {db_locks.area_lock_key(areas.Area.parse(p)) for p in paths}
    assert len(keys) == len(paths)
    assert db_locks.GLOBAL_KEY not in keys
    assert db_locks.lock_key(".global") == db_locks.GLOBAL_KEY


@pytest.mark.parametrize(
    ("lease", "idle", "interval", "user_timeout"),
    [(60, 30, 10, 60000), (10, 5, 1, 10000), (0.5, 2, 1, 5000), (7.2, 4, 1, 8000)],
)
def test_the_lease_sets_keepalives_on_both_ends(
    lease: float, idle: int, interval: int, user_timeout: int
) -> None:
    params = db_locks.connection_parameters("postgresql+psycopg://u@db.example.org/rollout", lease)
    assert params["keepalives"] == "1"
    assert (params["keepalives_idle"], params["keepalives_interval"]) == (str(idle), str(interval))
    assert params["keepalives_count"] == str(db_locks.KEEPALIVE_COUNT)
    assert params["tcp_user_timeout"] == str(user_timeout)
    assert params["options"] == (
        f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval}"
        f" -c tcp_keepalives_count=3 -c tcp_user_timeout={user_timeout}"
        " -c idle_session_timeout=0"
    )
    # The probes end within the lease: idle + count × interval.
    assert idle + db_locks.KEEPALIVE_COUNT * interval <= max(db_locks.MIN_LEASE, lease + 1)


def test_the_url_becomes_libpq_parameters_and_keeps_its_own_options() -> None:
    params = db_locks.connection_parameters(
        "postgresql+psycopg://bridge:s3cret@db.example.org:5433/rollout"
        "?sslmode=verify-full&options=-c%20search_path%3Dbridge",
        60,
    )
    assert {k: params[k] for k in ("host", "port", "user", "password", "dbname", "sslmode")} == {
        "host": "db.example.org",
        "port": "5433",
        "user": "bridge",
        "password": "s3cret",
        "dbname": "rollout",
        "sslmode": "verify-full",
    }
    assert params["options"].startswith("-c search_path=bridge -c tcp_keepalives_idle=30")
    assert params["application_name"] == db_locks.APPLICATION_NAME


def test_messages_name_the_database_without_credentials() -> None:
    locks = db_locks.DatabaseLocks("postgresql+psycopg://bridge:s3cret@db.example.org/rollout")
    assert "s3cret" not in locks._shown and "db.example.org" in locks._shown
