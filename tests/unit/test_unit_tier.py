"""The unit tier's guard refuses processes, network connections and SQLite files."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.unit.conftest import OutsideUnitTier


def test_a_subprocess_is_refused(unit_tier_guard: list[str]) -> None:
    with pytest.raises(OutsideUnitTier, match="started a process"):
        subprocess.run(["true"], check=False)
    unit_tier_guard.clear()


def test_a_network_connection_is_refused(unit_tier_guard: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OutsideUnitTier, match="connected a socket"):
            sock.connect(("127.0.0.1", 9))
        with pytest.raises(OutsideUnitTier, match="connected a socket"):
            sock.connect_ex(("127.0.0.1", 9))
    unit_tier_guard.clear()


def test_a_caught_refusal_still_fails_the_test(unit_tier_guard: list[str]) -> None:
    with contextlib.suppress(OutsideUnitTier):  # as code under test that swallows errors would
        subprocess.run(["true"], check=False)
    assert len(unit_tier_guard) == 1
    unit_tier_guard.clear()


def test_an_sqlite_file_is_refused_but_memory_is_fine(
    tmp_path: Path, unit_tier_guard: list[str]
) -> None:
    with pytest.raises(OutsideUnitTier, match="SQLite database file"):
        sqlite3.connect(tmp_path / "bridge.db")
    unit_tier_guard.clear()
    sqlite3.connect(":memory:").close()


def test_unix_socket_pairs_are_fine() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
