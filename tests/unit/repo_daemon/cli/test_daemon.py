"""``rollout daemon``, ``serve`` and ``run``: what they hand to ``assemble``, short of running
it (tests/integration/test_daemon.py runs them as processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.settings import model as settings_model
from repo_daemon import cli
from repo_daemon.daemon import assemble


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Replaces ``assemble.run_*`` by recorders of (command, settings, keyword arguments)."""
    monkeypatch.setenv("ROLLOUT_RT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", "1-2-unused")
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    calls: list[tuple[str, Any]] = []
    for name in ("run_daemon", "run_serve", "run_all"):

        def record(settings: settings_model.Settings, _name: str = name, **kwargs: Any) -> None:
            calls.append((_name, (settings, kwargs)))

        monkeypatch.setattr(assemble, name, record)
    return calls


def test_daemon_and_run_run_the_workflow_and_may_skip_reconciliation(
    started: list[tuple[str, Any]],
) -> None:
    assert cli.main(["daemon"]) == 0
    assert cli.main(["run", "--no-reconcile"]) == 0
    assert [(name, kwargs) for name, (_, kwargs) in started] == [
        ("run_daemon", {"reconcile_changes": True}),
        ("run_all", {"reconcile_changes": False}),
    ]


@pytest.mark.parametrize("command", ["daemon", "run"])
def test_there_is_no_processor_option(
    command: str, started: list[tuple[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--processor", "tests.support.daemon_helpers:x"]) == 2
    assert "No such option '--processor'" in capsys.readouterr().err
    assert started == []


@pytest.mark.parametrize("command", ["serve", "run"])
def test_host_and_port_override_the_listen_settings(
    command: str, started: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_LISTEN_HOST", "127.0.0.2")
    monkeypatch.setenv("ROLLOUT_LISTEN_PORT", "8000")
    assert cli.main([command]) == 0
    assert cli.main([command, "--host", "127.0.0.3", "--port", "9876"]) == 0
    (_, (from_env, _)), (_, (from_flags, _)) = started
    assert (from_env.receiver.host, from_env.receiver.port) == ("127.0.0.2", 8000)
    assert (from_flags.receiver.host, from_flags.receiver.port) == ("127.0.0.3", 9876)


def test_serve_without_a_hook_secret_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["serve", "--port", "9"]) == 2
    assert "hook_secret is not set (ROLLOUT_HOOK_SECRET" in capsys.readouterr().err
