"""Real parts for the integration tests: one sandbox RT 5 per session, with the product's
set-up loaded from the shipped initialdata, and a loopback endpoint its scrip posts to."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from bridge.rt_setup.sandbox import Sandbox, SandboxInfo
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.store import database, queue
from bridge.tracker.client import TrackerClient
from tests.support.hook_listener import HookListener
from tests.support.pg_server import PostgresServer


@pytest.fixture(scope="session")
def hook_listener() -> Iterator[HookListener]:
    listener = HookListener()
    yield listener
    listener.close()


@pytest.fixture(scope="session")
def rt_sandbox(
    tmp_path_factory: pytest.TempPathFactory, hook_listener: HookListener
) -> Iterator[SandboxInfo]:
    root: Path = tmp_path_factory.mktemp("rt-sandbox")
    box = Sandbox(root, bridge_url=hook_listener.url)
    info = box.up()
    yield info
    box.down()


@pytest.fixture
def hooks(hook_listener: HookListener) -> Iterator[HookListener]:
    hook_listener.drain()
    hook_listener.mode = "ok"
    yield hook_listener
    hook_listener.mode = "ok"


@pytest.fixture
def bridge_client(rt_sandbox: SandboxInfo) -> Iterator[TrackerClient]:
    """The bridge's own account (a token, not a superuser), as the daemon uses it."""
    settings = TrackerSettings(url=rt_sandbox.web_url, token=Secret(rt_sandbox.bridge_token()))
    with TrackerClient(settings) as client:
        yield client


@pytest.fixture
def manager_client(rt_sandbox: SandboxInfo) -> Iterator[TrackerClient]:
    """RT's root account, acting as the provider and the release managers."""
    settings = TrackerSettings(
        url=rt_sandbox.web_url,
        user=rt_sandbox.root_user,
        password=Secret(rt_sandbox.root_password),
    )
    with TrackerClient(settings) as client:
        yield client


# -- databases: SQLite always, and a real PostgreSQL the session starts itself ----------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="rollout-pg-"))  # not under pytest's 0700 tmp dirs
    server = PostgresServer(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend."""
    if request.param == "sqlite":
        url = database.default_url(tmp_path)
        engine = database.create_engine(url)
        database.migrate(engine)
        engine.dispose()
        yield url
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"test_{os.getpid()}_{next(_db_counter)}"
    with DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=name):
        url = server.url(name)
        engine = database.create_engine(url)
        database.migrate(engine)
        engine.dispose()
        yield url


@pytest.fixture
def make_queue(db_url: str) -> Iterator[Callable[..., queue.Queue]]:
    """Queues on the test's database (several may share it, like several daemons)."""
    engines: list[Any] = []

    def make(**kwargs: Any) -> queue.Queue:
        engine = database.create_engine(db_url)
        engines.append(engine)
        return queue.Queue(engine, **kwargs)

    yield make
    for engine in engines:
        engine.dispose()
