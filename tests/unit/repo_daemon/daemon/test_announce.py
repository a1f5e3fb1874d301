"""What the daemon says at start-up about where syncs may go."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from bridge import secrets
from bridge.settings import model as settings_model
from repo_daemon.daemon import assemble


def _settings(*hosts: settings_model.SyncHost) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="https://rt.test/", token=secrets.Secret("t")),
        repository=settings_model.RepositorySettings(sync_hosts=hosts),
    )


def _announce(settings: settings_model.Settings) -> None:
    parts: Any = SimpleNamespace(runner=SimpleNamespace(worker="w"), reconciler=None)
    assemble._announce(settings, parts)


def test_no_allowlist_is_a_warning_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="repo_daemon.daemon.assemble"):
        _announce(_settings())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "no sync_hosts are configured: a ticket's Sync-URL may name any host and port, and the "
        "sync credentials are offered to whichever it names; list the providers' hosts in "
        "sync_hosts (docs/sync.md)"
    ]


def test_an_allowlist_is_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="repo_daemon.daemon.assemble"):
        _announce(_settings(settings_model.SyncHost(host="mirror.example.org")))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
