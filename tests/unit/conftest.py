"""The unit tier needs nothing but Python: no subprocess, no network, no database file.

An autouse guard makes starting a process (``subprocess.Popen``, and so ``run`` and
asyncio's subprocesses), connecting a socket to anything but a Unix socket, and opening an
SQLite database that is not in memory fail the test. The call raises ``OutsideUnitTier``; the
test fails at teardown too, even if the code under test caught the error. A test that needs
one of these belongs in tests/integration/.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


class OutsideUnitTier(AssertionError):
    """A unit test reached for a process, the network or a database file."""


def _in_memory(database: Any, uri: bool) -> bool:
    name = str(database)
    return name in (":memory:", "") or (uri and "mode=memory" in name) or name == "file::memory:"


@pytest.fixture(autouse=True)
def unit_tier_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The guard; yields the list of what it refused (its own tests clear it)."""
    seen: list[str] = []

    def refuse(what: str) -> OutsideUnitTier:
        message = f"a unit test {what}; it belongs in tests/integration/"
        seen.append(message)
        return OutsideUnitTier(message)

    def no_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        raise refuse(f"started a process: {args!r}")

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if self.family != socket.AF_UNIX:
            raise refuse(f"connected a socket to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family != socket.AF_UNIX:
            raise refuse(f"connected a socket to {address!r}")
        return real_connect_ex(self, address)

    real_sqlite = sqlite3.connect

    def sqlite_connect(database: Any, *args: Any, **kw: Any) -> sqlite3.Connection:
        if not _in_memory(database, bool(kw.get("uri"))):
            raise refuse(f"opened the SQLite database file {database!r}")
        return real_sqlite(database, *args, **kw)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", no_child)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(sqlite3, "connect", sqlite_connect)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", sqlite_connect)  # what SQLAlchemy calls
    yield seen
    if seen:
        pytest.fail("\n".join(dict.fromkeys(seen)), pytrace=False)
