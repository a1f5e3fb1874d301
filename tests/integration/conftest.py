"""Real parts for the integration tests: one sandbox RT 5 per session, with the product's
set-up loaded from the shipped initialdata, and a loopback endpoint its scrip posts to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import Secret, TrackerSettings
from bridge.sandbox import Sandbox, SandboxInfo
from bridge.tracker import TrackerClient
from tests.hook_listener import HookListener


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
